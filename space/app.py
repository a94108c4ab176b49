"""Nes2Net deepfake speech detection: the Gradio app of the Hugging Face Space, a thin layer over
`modeling_nes2net.detection`.

    python space/app.py [--model FOLDER_OR_HUB_ID]... [--host 127.0.0.1] [--port 7860]

Every option has an environment variable (see `--help`), so a Space is configured with variables, not code. Visitors
choose among the models the operator lists (`--allow-any-model` lets them type any folder or Hub id). Uploads are
bounded per request and per visitor (`nes2net_space.uploads`) and deleted when the request that used them ends; the
rest of Gradio's cache (result files, uploads no request used) is swept while the app runs, and everything the app
wrote is removed when it stops (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import atexit
import functools
import html
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if (REPO_ROOT / "modeling_nes2net").is_dir() and str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # a checkout runs the repository's package; a Space installs it

SCRATCH_DIR = Path(tempfile.mkdtemp(prefix="nes2net-space-"))
atexit.register(shutil.rmtree, SCRATCH_DIR, ignore_errors=True)
os.environ.setdefault("GRADIO_TEMP_DIR", str(SCRATCH_DIR / "gradio"))  # read when gradio is imported

import gradio as gr
import torch
from starlette.middleware import Middleware
from gradio.utils import get_upload_folder
from nes2net_space.live import LiveSession, read_live_chunk
from nes2net_space.memory import release_freed_memory, release_idle_memory
from nes2net_space.uploads import UploadGuard, UploadLedger, UploadLimits
from nes2net_space.explain import (
    batch_summary,
    live_markdown,
    model_markdown,
    model_problem_markdown,
    verdict_markdown,
)
from nes2net_space.inputs import (
    BATCH_COLUMNS,
    InputLimitError,
    Limits,
    batch_rows,
    read_recording,
    score_batch,
    write_batch_csv,
)
from nes2net_space.models import DEFAULT_CHOICE, ModelLoadError, ModelRegistry, default_model_problem

from modeling_nes2net import examples as example_speech
from modeling_nes2net.audio import AudioInputError
from modeling_nes2net.plotting import plot_timeline
from modeling_nes2net.quantization import QUANTIZATIONS

logger = logging.getLogger("nes2net.space")

CACHE_SWEEP_SECONDS = 60  # Gradio's sweep of its cache: result files, and uploads the ledger has not deleted
CACHE_MAX_AGE_SECONDS = 600
LIVE_CHUNK_SECONDS = 0.5  # how often the browser sends microphone audio while recording
SCORING_QUEUE = "scoring"  # the events that run a model share the --concurrency workers of this queue
MODELS_FILE = Path(__file__).with_name("models.txt")  # the models of a Space built by `nes2net space`
USER_ERRORS = (AudioInputError, InputLimitError, ModelLoadError)
AGGREGATION_CHOICES = [("mean of the windows", "mean"), ("most spoof-like window", "any")]
# The app's plain options: flag -> (type, environment variable read when the flag is not given, default, help).
ENVIRONMENT_OPTIONS = {
    "--device": (str, "NES2NET_DEVICE", "auto", "auto, cpu or cuda"),
    "--threads": (int, "NES2NET_THREADS", 0, "torch CPU threads, 0 for torch's default"),
    "--max-seconds": (float, "NES2NET_MAX_SECONDS", 300, "longest recording accepted, seconds"),
    "--max-file-mb": (float, "NES2NET_MAX_FILE_MB", 50, "largest upload, MiB"),
    "--max-batch-files": (int, "NES2NET_MAX_BATCH_FILES", 20, "most files per batch"),
    "--max-batch-seconds": (float, "NES2NET_MAX_BATCH_SECONDS", 900, "most audio per batch, seconds"),
    "--max-client-files": (int, "NES2NET_MAX_CLIENT_FILES", 40,
                           "most uploads one visitor may have waiting on the server"),
    "--max-client-mb": (float, "NES2NET_MAX_CLIENT_MB", 400,
                        "most uploaded MiB one visitor may have waiting or being received"),
    "--max-total-mb": (float, "NES2NET_MAX_TOTAL_MB", 2048,
                       "most uploaded MiB all visitors together may have waiting or being received"),
    "--upload-max-age": (float, "NES2NET_UPLOAD_MAX_AGE", 300, "seconds an upload no request uses is kept"),
    "--live-seconds": (float, "NES2NET_LIVE_SECONDS", 120, "longest live microphone session, seconds"),
    "--concurrency": (int, "NES2NET_CONCURRENCY", 2, "requests scored at the same time"),
    "--queue-size": (int, "NES2NET_QUEUE_SIZE", 32, "requests waiting at most; more are refused with a message"),
}

INTRO = """# Nes2Net deepfake speech detector

Upload a recording or record one with the microphone: a Nes2Net model says whether the speech sounds genuine
(**bona fide**) or synthetic / manipulated (**spoof**), how sure it is, and, for recordings longer than about
4 seconds, *where*: each 4-second window is scored and suspicious stretches are marked on a timeline.
The batch tab scores several files and exports a CSV; the live tab scores the microphone while you speak.
Limits: {max_seconds:g} s and {max_file_mb:g} MB per recording. An upload is deleted from the server as soon as
it is scored (one never scored, within {upload_minutes:g} minutes); nothing is stored, and no run history is kept
in your browser.
"""


def environment_flag(name: str, fallback: bool) -> bool:
    value = os.environ.get(name)
    return fallback if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Nes2Net deepfake speech detection demo (Gradio).")
    parser.add_argument(
        "--model", action="append", default=None, metavar="FOLDER_OR_HUB_ID",
        help="a model to offer besides the embedded default (repeat for several); the first is preselected "
             "(env NES2NET_MODEL, comma-separated; else the lines of models.txt next to app.py)",
    )
    parser.add_argument(
        "--host", default=os.environ.get("NES2NET_HOST", os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")),
        help="address to listen on (env NES2NET_HOST or GRADIO_SERVER_NAME; default 127.0.0.1)",
    )
    parser.add_argument(
        "--port", type=int, default=os.environ.get("NES2NET_PORT", os.environ.get("GRADIO_SERVER_PORT", 7860)),
        help="port (env NES2NET_PORT or GRADIO_SERVER_PORT; default 7860)",
    )
    parser.add_argument(
        "--allow-any-model", action=argparse.BooleanOptionalAction,
        default=environment_flag("NES2NET_ALLOW_ANY_MODEL", False),
        help="let visitors type any model folder or Hub id on this server, not only the listed ones "
             "(env NES2NET_ALLOW_ANY_MODEL; default off)",
    )
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default=os.environ.get("NES2NET_QUANTIZE"),
                        help="opt-in fast path of the detection API: int8 (CPU) or bf16 (env NES2NET_QUANTIZE)")
    parser.add_argument(
        "--trust-proxy", action=argparse.BooleanOptionalAction,
        default=environment_flag("NES2NET_TRUST_PROXY", "SPACE_ID" in os.environ),
        help="tell visitors apart by the X-Forwarded-For address of the proxy in front of the app "
             "(env NES2NET_TRUST_PROXY; default on on a Space, off elsewhere)",
    )
    for flag, (kind, variable, default, text) in ENVIRONMENT_OPTIONS.items():
        parser.add_argument(flag, type=kind, default=os.environ.get(variable, default), help=f"{text} (env {variable})")
    args = parser.parse_args(argv)
    if args.model is None:
        args.model = [name.strip() for name in os.environ.get("NES2NET_MODEL", "").split(",") if name.strip()]
    if not args.model and MODELS_FILE.is_file():  # a Space assembled by `nes2net space`
        lines = filter(None, (line.strip() for line in MODELS_FILE.read_text(encoding="utf-8").splitlines()))
        args.model = [str(MODELS_FILE.parent / line) if (MODELS_FILE.parent / line).is_dir() else line
                      for line in lines]
    return args


def make_examples(directory: Path) -> list[tuple[Path, str]]:
    """`(path, label)` of example clips spoken by espeak-ng into `directory` (none without espeak-ng): one per
    voice, and the three joined into one longer recording that shows the timeline."""
    if not example_speech.espeak_available():
        logger.info("espeak-ng is not installed: no example clips")
        return []
    directory.mkdir(parents=True, exist_ok=True)
    clips = []
    for index, (sentence, voice) in enumerate(zip(example_speech.SENTENCES, example_speech.VOICES)):
        path = example_speech.synthesize_speech(sentence, directory / f"espeak_{voice}_{index}.wav", voice)
        clips.append((path, f"espeak-ng, voice {voice}: synthetic"))
    joined = example_speech.splice([path for path, _ in clips], directory / "espeak_three_sentences.wav")
    clips.append((joined, "three espeak-ng sentences: synthetic, with a timeline"))
    return clips


def shown_to_user(function):
    """Turn the errors a visitor can cause into one-line messages in the page; log anything else."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except gr.Error:
            raise
        except USER_ERRORS as error:
            raise gr.Error(html.escape(str(error)), title="Cannot check this", print_exception=False) from None
        except Exception as error:
            logger.exception("unexpected error in %s", function.__name__)
            raise gr.Error(
                f"Unexpected error ({type(error).__name__}); it has been logged on the server. Try another file.",
                title="Something went wrong",
                print_exception=False,
            ) from None

    return wrapper


def build_demo(
    registry: ModelRegistry,
    limits: Limits,
    examples: list[tuple[Path, str]],
    ledger: UploadLedger,
    live_seconds: float = 120.0,
) -> gr.Blocks:
    """The page: one-recording, batch and live-microphone tabs over a shared model choice, and what the page says
    about the model. Each request's uploads are released to `ledger` (deleted) when it ends, and the memory it
    freed is returned to the system (`nes2net_space.memory`)."""

    @shown_to_user
    def detect(recording: str | None, model_choice: str, aggregation: str):
        try:
            if not recording:
                raise gr.Error("No recording yet: upload an audio file or record one with the microphone.",
                               title="Nothing to check", print_exception=False)
            detector, info = registry.get(model_choice, aggregation)
            result = detector.detect(read_recording(recording, limits, detector.sampling_rate))
        finally:
            ledger.release([recording])
            release_freed_memory()
        figure = plot_timeline(result) if len(result.segments) > 1 else None
        return verdict_markdown(result, info), gr.Plot(value=figure, visible=figure is not None), result.to_dict()

    @shown_to_user
    def detect_batch(paths: list[str] | None, model_choice: str, aggregation: str):
        try:
            if not paths:
                raise gr.Error("No files yet: add one or more audio files.", title="Nothing to check",
                               print_exception=False)
            detector, _ = registry.get(model_choice, aggregation)
            outcomes = score_batch(detector, paths, limits)
        finally:
            ledger.release(paths or [])
            release_freed_memory()
        rows = batch_rows(outcomes)
        cache = Path(get_upload_folder())
        cache.mkdir(parents=True, exist_ok=True)  # written inside Gradio's cache, so its clean-up covers it
        csv_path = write_batch_csv(rows, cache)
        return batch_summary(outcomes, detector.threshold), rows, str(csv_path)

    @shown_to_user
    def listen(chunk: str | None, session: LiveSession | None, model_choice: str, aggregation: str):
        if chunk is None:
            return session, gr.skip(), gr.skip()
        try:
            detector, _ = registry.get(model_choice, aggregation)
            session = session or LiveSession(detector.sampling_rate, live_seconds)
            if session.full:
                raise gr.Error(f"Live sessions stop after {live_seconds:g} s; press record again for a new one.",
                               title="Session over", print_exception=False)
            samples, rate = read_live_chunk(chunk)
        finally:
            ledger.release_stream_chunk(chunk)
        scored = session.add(rate, samples, detector)
        if scored:
            release_freed_memory()
        result = session.result(detector)
        figure = gr.Plot(value=plot_timeline(result), visible=True) if scored else gr.skip()
        return session, live_markdown(result, session.seconds), figure

    def describe(model_choice: str) -> str:
        try:
            _, info = registry.get(model_choice)
        except ModelLoadError as error:
            return model_problem_markdown(str(error))
        return model_markdown(info)

    intro = INTRO.format(max_seconds=limits.max_seconds, max_file_mb=limits.max_file_mb,
                         upload_minutes=ledger.limits.max_age_seconds / 60)
    with gr.Blocks(
        title="Nes2Net deepfake speech detector",
        analytics_enabled=False,
        delete_cache=(CACHE_SWEEP_SECONDS, CACHE_MAX_AGE_SECONDS),
    ) as demo:
        gr.Markdown(intro)
        problem = default_model_problem()
        if problem and registry.initial_choice == DEFAULT_CHOICE:
            gr.Markdown(model_problem_markdown(problem), elem_id="model-warning")
        with gr.Row():
            model = gr.Dropdown(
                registry.menu(), value=registry.initial_choice, label="Model", allow_custom_value=registry.allow_any,
                info="a model folder or Hub id can be typed in" if registry.allow_any else None,
            )
            aggregation = gr.Radio(AGGREGATION_CHOICES, value="mean", label="Verdict for long recordings")
        with gr.Tab("One recording"):
            with gr.Row():
                with gr.Column():
                    recording = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Recording",
                                         buttons=["download"], elem_id="recording")
                    check = gr.Button("Check this recording", variant="primary", elem_id="check")
                    if examples:
                        gr.Examples([[str(path)] for path, _ in examples], inputs=recording,
                                    example_labels=[label for _, label in examples],
                                    label="Examples, made here with espeak-ng (all synthetic speech)")
                with gr.Column():
                    verdict = gr.Markdown(elem_id="verdict")
            # shown, the label would cover the figure's own title (file, verdict, protocol)
            timeline = gr.Plot(label="Timeline: score of each window and every 10 ms, suspicious stretches in red",
                               show_label=False, visible=False, elem_id="timeline")
            with gr.Accordion("Raw scores (JSON)", open=False):
                details = gr.JSON(label="Result")
        with gr.Tab("Batch"):
            files = gr.File(file_count="multiple", label=f"Audio files (at most {limits.max_batch_files})",
                            elem_id="batch-files")
            check_all = gr.Button("Check all files", variant="primary", elem_id="check-all")
            summary = gr.Markdown(elem_id="batch-summary")
            table = gr.Dataframe(headers=list(BATCH_COLUMNS), interactive=False, label="Results")
            csv_file = gr.File(label="Results as CSV", elem_id="batch-csv")
        with gr.Tab("Live microphone"):
            live_input = gr.Audio(sources=["microphone"], streaming=True, type="filepath", label="Microphone",
                                  elem_id="live-microphone")
            live_verdict = gr.Markdown("Press record and speak: every 4-second window is scored as you go.",
                                       elem_id="live-verdict")
            live_timeline = gr.Plot(label="Live timeline", visible=False, elem_id="live-timeline")
            live_session = gr.State(None)
        with gr.Accordion("About this model", open=True):
            about = gr.Markdown(elem_id="about")

        check.click(detect, [recording, model, aggregation], [verdict, timeline, details], api_name="detect",
                    concurrency_id=SCORING_QUEUE)
        check_all.click(detect_batch, [files, model, aggregation], [summary, table, csv_file], api_name="detect_batch",
                        concurrency_id=SCORING_QUEUE)
        live_input.stop_recording(lambda: None, None, live_session, api_name=False)  # the next recording starts anew
        live_input.stream(listen, [live_input, live_session, model, aggregation],
                          [live_session, live_verdict, live_timeline], stream_every=LIVE_CHUNK_SECONDS,
                          time_limit=live_seconds, api_name="listen", show_progress="hidden",
                          concurrency_id=SCORING_QUEUE)
        model.change(describe, model, about, api_name="describe_model")
        demo.load(describe, model, about, api_name=False)
    return demo


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt  # Gradio closes its server on Ctrl-C; SIGTERM (a Space stopping) takes the same path


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    limits = Limits(args.max_seconds, args.max_file_mb, args.max_batch_files, args.max_batch_seconds)
    registry = ModelRegistry(args.model, allow_any=args.allow_any_model, device=args.device, quantize=args.quantize)
    try:
        registry.get(None)  # load the preselected model now, not on the first visitor's request
    except ModelLoadError as error:
        logger.warning("%s", error)
    upload_limits = UploadLimits(
        max_request_files=args.max_batch_files,
        max_request_mb=args.max_batch_files * args.max_file_mb + 1,  # + the multipart headers
        max_client_files=args.max_client_files,
        max_client_mb=args.max_client_mb,
        max_total_mb=args.max_total_mb,
        max_age_seconds=args.upload_max_age,
    )
    demo: gr.Blocks | None = None
    ledger = UploadLedger(upload_limits, on_delete=lambda path: demo.upload_file_set.discard(path))
    demo = build_demo(registry, limits, make_examples(SCRATCH_DIR / "examples"), ledger, args.live_seconds)
    demo.queue(default_concurrency_limit=args.concurrency, max_size=args.queue_size)
    signal.signal(signal.SIGTERM, _stop)
    sweeping = threading.Event()
    threading.Thread(target=_sweep, args=(ledger, sweeping), daemon=True).start()
    try:
        demo.launch(
            server_name=args.host,
            server_port=args.port,
            max_file_size=int(args.max_file_mb * 2**20),
            show_error=True,
            run_history=False,
            footer_links=["api"],
            app_kwargs={"middleware": [Middleware(UploadGuard, ledger=ledger, trust_proxy=args.trust_proxy,
                                                  spool_dir=str(SCRATCH_DIR))]},
        )
    finally:
        sweeping.set()


def _sweep(ledger: UploadLedger, stop: threading.Event) -> None:
    """Every few seconds until `stop` is set: delete uploads no request has used, and free what requests left to
    the cycle collector and return it to the system (`release_idle_memory`)."""
    interval = min(30.0, ledger.limits.max_age_seconds / 4)
    while not stop.wait(interval):
        ledger.expire()
        release_idle_memory()


if __name__ == "__main__":
    main()
