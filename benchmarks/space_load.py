"""Load test of the Space: concurrent `gradio_client` clients against the app on 127.0.0.1, with the detection API
called in-process on the same requests as the baseline.

    python benchmarks/space_load.py [--model FOLDER] [--clients 20] [--seconds 30] [--rounds 3] [--concurrency 2]
                                    [--threads 1]

The app runs in a subprocess (`space/app.py`, queue of `--concurrency` workers and room for every client). Each client
uploads one of three recordings (espeak-ng speech of about 4 s and 14 s, the long one scored as several windows and
plotted, and a 2 s stereo 44.1 kHz clip), waits for the verdict and sends the next, until `--seconds` (at most 60)
have passed; requests in flight then finish. Every request must be answered: the script exits with status 1 if any
is lost or fails.

Before the load, one client sends each recording three times, one request at a time: the app's service time.
Baseline, in the same run, after the load phase: the same requests (same files, same order) through
`read_recording` + `Nes2NetDetector.detect` in this process, `--concurrency` at a time with the same torch threads:
the model and decoding work without HTTP, uploads, the queue, the verdict text and the timeline figure. The table
gives requests per second and latency percentiles of both, and their ratios. Under load, app latency is mostly
queueing (`clients / throughput`); the throughput ratio is the cost of the app layer.

The load is repeated `--rounds` times against the same app: after each round the app's resident memory (RSS, from
/proc) and the uploads left on its disk are printed, with the memory ratio to the first round, then the ratio of the
last round to the first: flat memory and no uploads left mean the app keeps nothing per request (the app returns
what a request freed to the system, `space/nes2net_space/memory.py`).

Without `--model` the embedded default model is used when installed, else a Nes2Net-X on the default spectrogram
front-end with random weights (timings only; its verdicts mean nothing).
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "space")]  # run as a script from anywhere

from gradio_client import Client, handle_file
from nes2net_space.harness import start_space, write_speech, write_stereo_clip
from nes2net_space.inputs import Limits, read_recording
from nes2net_space.models import DEFAULT_CHOICE, display_name

from modeling_nes2net import Nes2NetConfig, Nes2NetForAudioClassification, save_model_folder
from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.model_loading import DEFAULT_MODEL_DIR

MAX_SECONDS = 60.0
SEQUENTIAL_ROUNDS = 3


def request_files(folder: Path) -> list[Path]:
    """Speech of about 4 s, speech of about 14 s (several windows and a timeline), and a 2 s stereo 44.1 kHz FLAC
    (resampled and downmixed by the app)."""
    return [write_speech(folder / "short.wav", 4), write_speech(folder / "long.wav", 14),
            write_stereo_clip(folder / "stereo.flac")]


def random_spectrogram_model(folder: Path) -> str:
    torch.manual_seed(0)
    model = Nes2NetForAudioClassification(Nes2NetConfig(frontend_type="spectrogram")).eval()
    return str(save_model_folder(model, folder / "random-spectrogram-nes2net-x"))


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    p50, p90, p99 = np.percentile(np.asarray(latencies), [50, 90, 99])
    return float(p50), float(p90), float(p99)


def sequential_phase(url: str, model_choice: str, files: list[Path], rounds: int) -> list[float]:
    """Latencies of one client sending every file `rounds` times, one request at a time: the app's service time."""
    client = Client(url, verbose=False, download_files=False)
    latencies = []
    for path in files * rounds:
        started = time.perf_counter()
        client.predict(handle_file(path), model_choice, "mean", api_name="/detect")
        latencies.append(time.perf_counter() - started)
    return latencies


def load_phase(url: str, model_choice: str, files: list[Path], clients: int, seconds: float) -> dict:
    """`clients` threads, each with its own client, sending requests back to back until `seconds` have passed."""
    sent, answered, failed, lost = [], [], [], []
    lock = threading.Lock()
    start_barrier = threading.Barrier(clients + 1)
    deadline = [0.0]

    def run_client(index: int) -> None:
        client = Client(url, verbose=False, download_files=False)
        start_barrier.wait()
        count = index  # clients start at different files
        while time.monotonic() < deadline[0]:
            path = files[count % len(files)]
            count += 1
            with lock:
                sent.append(path)
            started = time.perf_counter()
            try:
                _, _, details = client.predict(handle_file(path), model_choice, "mean", api_name="/detect")
            except Exception as error:  # an answer with an error (AppError) or a lost request
                with lock:
                    (failed if type(error).__name__ == "AppError" else lost).append(repr(error))
                continue
            with lock:
                answered.append((path, time.perf_counter() - started, details["label"]))

    threads = [threading.Thread(target=run_client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + seconds  # set before the clients are released, so none reads it unset
    start_barrier.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    return {"sent": sent, "answered": answered, "failed": failed, "lost": lost, "elapsed": elapsed}


def in_process_phase(model: str, files_in_order: list[Path], concurrency: int) -> dict:
    """The same requests through the detection API in this process, `concurrency` at a time."""
    detector = Nes2NetDetector.from_pretrained(None if model == DEFAULT_CHOICE else model, device="cpu")
    limits = Limits()

    def one(path: Path) -> float:
        started = time.perf_counter()
        detector.detect(read_recording(path, limits, detector.sampling_rate))
        return time.perf_counter() - started

    one(files_in_order[0])  # warm-up, as the app's first request was
    began = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, files_in_order))
    return {"latencies": latencies, "elapsed": time.monotonic() - began}


def resident_mib(pid: int) -> float:
    """The resident memory of process `pid`, MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def uploads_left(server, files: list[Path]) -> int:
    """Files named like the uploaded recordings still in the app's TMPDIR (its Gradio cache)."""
    names = {path.name for path in files}
    return sum(1 for path in server.tmpdir.rglob("*") if path.is_file() and path.name in names
               and "examples" not in path.parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: embedded, else random)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0, help=f"load duration, at most {MAX_SECONDS:g}")
    parser.add_argument("--rounds", type=int, default=3, help="load rounds against the same app (memory per round)")
    parser.add_argument("--concurrency", type=int, default=2, help="the app's default_concurrency_limit")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker, app and baseline")
    args = parser.parse_args(argv)
    seconds = min(args.seconds, MAX_SECONDS)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="nes2net-space-load-") as work:
        work = Path(work)
        files = request_files(work)
        durations = {path.name: read_recording(path, Limits(), 16_000).data.size / 16_000 for path in files}
        if args.model is not None:
            model, model_choice, described = args.model, display_name(args.model), args.model
        elif (DEFAULT_MODEL_DIR / "config.json").is_file():
            model, model_choice, described = DEFAULT_CHOICE, DEFAULT_CHOICE, "embedded default model"
        else:
            model = random_spectrogram_model(work)
            model_choice = display_name(model)
            described = "Nes2Net-X on the spectrogram front-end, random weights (timing only)"
        app_args = ["--concurrency", str(args.concurrency), "--queue-size", str(max(64, 2 * args.clients)),
                    "--threads", str(args.threads), "--device", "cpu"]
        if model != DEFAULT_CHOICE:
            app_args = ["--model", model, *app_args]
        server = start_space(work / "app", app_args)
        try:
            warm = Client(server.url, verbose=False, download_files=False)
            warm.predict(handle_file(files[1]), model_choice, "mean", api_name="/detect")  # load + first plot
            sequential = sequential_phase(server.url, model_choice, files, SEQUENTIAL_ROUNDS)
            rounds = []
            for _ in range(args.rounds):
                rounds.append(load_phase(server.url, model_choice, files, args.clients, seconds))
                rounds[-1]["rss"] = resident_mib(server.process.pid)
                rounds[-1]["uploads_left"] = uploads_left(server, files)
            load = rounds[0]
        finally:
            server.stop(signal.SIGINT)
        baseline = in_process_phase(model, load["sent"], args.concurrency)

    answered = load["answered"]
    app_latencies = [latency for _, latency, _ in answered]
    app_rate = len(answered) / load["elapsed"]
    base_rate = len(baseline["latencies"]) / baseline["elapsed"]
    app_p, base_p = percentiles(app_latencies or [float("nan")]), percentiles(baseline["latencies"])
    print(f"Space load test: {args.clients} clients for {seconds:g} s against space/app.py on 127.0.0.1; "
          f"model: {described}")
    print(f"app: concurrency {args.concurrency}, torch threads {args.threads}, CPU; recordings: "
          + ", ".join(f"{name} {duration:.1f} s" for name, duration in durations.items()))
    print()
    print(f"{'':34} {'requests':>8} {'answered':>8} {'errors':>6} {'lost':>5} {'req/s':>7} "
          f"{'p50 s':>7} {'p90 s':>7} {'p99 s':>7}")
    seq_p = percentiles(sequential)
    print(f"{'app, 1 client, sequential':34} {len(sequential):>8} {len(sequential):>8} {0:>6} {0:>5} "
          f"{len(sequential) / sum(sequential):>7.2f} {seq_p[0]:>7.3f} {seq_p[1]:>7.3f} {seq_p[2]:>7.3f}")
    print(f"{f'app, {args.clients} clients':34} {len(load['sent']):>8} {len(answered):>8} {len(load['failed']):>6} "
          f"{len(load['lost']):>5} {app_rate:>7.2f} {app_p[0]:>7.3f} {app_p[1]:>7.3f} {app_p[2]:>7.3f}")
    print(f"{f'detection API in-process, {args.concurrency} threads':34} {len(baseline['latencies']):>8} "
          f"{len(baseline['latencies']):>8} {0:>6} {0:>5} {base_rate:>7.2f} "
          f"{base_p[0]:>7.3f} {base_p[1]:>7.3f} {base_p[2]:>7.3f}")
    print(f"{'ratio app / in-process':34} {'':>8} {'':>8} {'':>6} {'':>5} {app_rate / base_rate:>6.2f}x "
          + " ".join(f"{a / b:>6.1f}x" for a, b in zip(app_p, base_p)))
    print()
    print(f"median service time: {statistics.median(sequential):.3f} s through the app (1 client), "
          f"{statistics.median(baseline['latencies']):.3f} s in-process; "
          f"app latency under load is mostly queueing ({args.clients} clients / {app_rate:.2f} req/s "
          f"= {args.clients / app_rate if app_rate else float('nan'):.1f} s)")
    print()
    print(f"{'load round':>10} {'requests':>8} {'answered':>8} {'req/s':>7} {'app RSS MiB':>11} {'vs round 1':>10} "
          f"{'uploads left':>12}")
    for index, phase in enumerate(rounds, 1):
        print(f"{index:>10} {len(phase['sent']):>8} {len(phase['answered']):>8} "
              f"{len(phase['answered']) / phase['elapsed']:>7.2f} {phase['rss']:>11.1f} "
              f"{phase['rss'] / rounds[0]['rss']:>9.3f}x {phase['uploads_left']:>12}")
    print(f"app RSS, last round / first: {rounds[-1]['rss'] / rounds[0]['rss']:.3f}x "
          f"({rounds[0]['rss']:.0f} -> {rounds[-1]['rss']:.0f} MiB over {len(rounds)} rounds; goal: ~1, flat)")
    for message in [message for phase in rounds for message in phase["failed"] + phase["lost"]][:5]:
        print(f"  failure: {message}")
    complete = all(len(phase["answered"]) == len(phase["sent"]) and not phase["lost"] for phase in rounds)
    print(f"every request answered: {'yes' if complete else 'NO'}")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
