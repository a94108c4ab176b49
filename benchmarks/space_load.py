"""Load test of the Space: concurrent `gradio_client` clients against the app on 127.0.0.1, with the detection API
called in-process on the same requests as the baseline.

    python benchmarks/space_load.py [--model FOLDER] [--clients 20] [--seconds 30] [--rounds 3] [--idle 40]
                                    [--concurrency 2] [--threads 1] [--no-baseline] [--device cuda] [--output FILE.json]

The app runs in a subprocess (`space/app.py`, queue of `--concurrency` workers and room for every client). Each client
uploads one of three recordings of synthetic speech (`modeling_nes2net.examples.speech_like`: 4 s, 14 s, scored as
several windows and plotted, and a 2 s stereo 44.1 kHz clip), waits for the verdict and sends the next, until
`--seconds` (at most 60) have passed; requests in flight then finish. Every request must be answered: the script exits
with status 1 if any is lost or fails.

Before the load, one client sends each recording three times, one request at a time: the app's service time.
Baseline, in the same run, after the load phase (unless `--no-baseline`): the same requests (same files, same order)
through `read_recording` + `Nes2NetDetector.detect` in this process, `--concurrency` at a time with the same torch
threads: the model and decoding work without HTTP, uploads, the queue, the verdict text and the timeline figure. The
table gives requests per second and latency percentiles of both, and their ratios. Under load, app latency is mostly
queueing (`clients / throughput`); the throughput ratio is the cost of the app layer.

The load is repeated `--rounds` times against the same app: after each round the app's resident memory (RSS, from
/proc), its latency percentiles and the uploads left on its disk are recorded; after the last round the app sits
idle for `--idle` seconds and its RSS is read again. The app returns what a request freed when it ends and, with its
upload sweep every few seconds, collects what only the cycle collector frees (`space/nes2net_space/memory.py`): the
RSS after idle, next to the RSS right after the rounds in the same run, shows what that sweep gives back. Goal: after
idle, within 10 % of the first round's RSS. `--output` (default `benchmarks/space_load.json`, which
`benchmarks/render.py` renders into space/README.md) gets everything measured (`measure` returns it).

Without `--model` the embedded default model is used when installed, else a Nes2Net-X on the default spectrogram
front-end with random weights (timings only; its verdicts mean nothing). `--device cuda` runs the app's models and the
baseline's on the GPU; on a machine without CUDA it prints one line and exits.
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
import soundfile
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "space")]  # run as a script from anywhere

from gradio_client import Client, handle_file
from nes2net_space.harness import start_space, write_stereo_clip
from nes2net_space.inputs import Limits, read_recording
from nes2net_space.models import DEFAULT_CHOICE, display_name

from modeling_nes2net import Nes2NetConfig, Nes2NetForAudioClassification, save_model_folder
from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.examples import speech_like
from modeling_nes2net.model_loading import DEFAULT_MODEL_DIR
from benchmarks.results import add_device_argument, cuda_missing, machine_record, write_results

MAX_SECONDS = 60.0
SEQUENTIAL_ROUNDS = 3
IDLE_SWEEP_SECONDS = 5.0  # the app's upload sweep (and idle memory release) every this often: --upload-max-age / 4


def request_files(folder: Path) -> list[Path]:
    """Synthetic speech of 4 s and of 14 s (several windows and a timeline) at 16 kHz, and a 2 s stereo 44.1 kHz FLAC
    (resampled and downmixed by the app)."""
    files = []
    for name, seconds in (("short.wav", 4.0), ("long.wav", 14.0)):
        soundfile.write(folder / name, speech_like(seconds), 16_000, subtype="PCM_16")
        files.append(folder / name)
    return [*files, write_stereo_clip(folder / "stereo.flac")]


def random_spectrogram_model(folder: Path) -> str:
    torch.manual_seed(0)
    model = Nes2NetForAudioClassification(Nes2NetConfig(frontend_type="spectrogram")).eval()
    return str(save_model_folder(model, folder / "random-spectrogram-nes2net-x"))


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    """p50, p90 and p99 of `latencies` (NaN when there are none)."""
    if not latencies:
        return float("nan"), float("nan"), float("nan")
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
        try:
            client = Client(url, verbose=False, download_files=False)
        except Exception as error:  # no connection: counted, and the other clients are still released
            client = None
            with lock:
                lost.append(f"connecting: {error!r}")
        start_barrier.wait()
        if client is None:
            return
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


def in_process_phase(model: str, files_in_order: list[Path], concurrency: int, device: str = "cpu") -> dict:
    """The same requests through the detection API in this process on `device`, `concurrency` at a time."""
    detector = Nes2NetDetector.from_pretrained(None if model == DEFAULT_CHOICE else model, device=device)
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


def measure(model: str | None = None, clients: int = 20, seconds: float = 30.0, rounds: int = 3,
            idle_seconds: float = 40.0, concurrency: int = 2, threads: int = 1, baseline: bool = True,
            device: str = "cpu") -> dict:
    """Run the app, the sequential phase, `rounds` load rounds, the idle wait and (with `baseline`) the in-process
    baseline, models on `device`; return everything measured as a JSON-ready dict (latencies in s, memory in MiB)."""
    seconds = min(seconds, MAX_SECONDS)
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="nes2net-space-load-") as work:
        work = Path(work)
        files = request_files(work)
        durations = {path.name: read_recording(path, Limits(), 16_000).data.size / 16_000 for path in files}
        if model is not None:
            model_choice, described = display_name(model), model
        elif (DEFAULT_MODEL_DIR / "config.json").is_file():
            model, model_choice, described = DEFAULT_CHOICE, DEFAULT_CHOICE, "embedded default model"
        else:
            model = random_spectrogram_model(work)
            model_choice = display_name(model)
            described = "Nes2Net-X on the spectrogram front-end, random weights (timing only)"
        app_args = ["--concurrency", str(concurrency), "--queue-size", str(max(64, 2 * clients)),
                    "--threads", str(threads), "--device", device, "--upload-max-age", str(4 * IDLE_SWEEP_SECONDS)]
        if model != DEFAULT_CHOICE:
            app_args = ["--model", model, *app_args]
        server = start_space(work / "app", app_args)
        try:
            started_mib = resident_mib(server.process.pid)
            warm = Client(server.url, verbose=False, download_files=False)
            warm.predict(handle_file(files[1]), model_choice, "mean", api_name="/detect")  # load + first plot
            sequential = sequential_phase(server.url, model_choice, files, SEQUENTIAL_ROUNDS)
            load_rounds = []
            for _ in range(rounds):
                phase = load_phase(server.url, model_choice, files, clients, seconds)
                phase["rss_mib"] = resident_mib(server.process.pid)
                phase["uploads_left"] = uploads_left(server, files)
                load_rounds.append(phase)
            time.sleep(idle_seconds)
            idle_mib = resident_mib(server.process.pid)
        finally:
            server.stop(signal.SIGINT)
        in_process = in_process_phase(model, load_rounds[0]["sent"], concurrency, device) if baseline else None

    def summary(phase: dict) -> dict:
        latencies = [latency for _, latency, _ in phase["answered"]]
        p50, p90, p99 = percentiles(latencies)
        return {"sent": len(phase["sent"]), "answered": len(phase["answered"]), "failed": len(phase["failed"]),
                "lost": len(phase["lost"]), "requests_per_second": len(phase["answered"]) / phase["elapsed"],
                "p50_s": p50, "p90_s": p90, "p99_s": p99, "rss_mib": phase["rss_mib"],
                "uploads_left": phase["uploads_left"], "failures": (phase["failed"] + phase["lost"])[:5]}

    report = {
        "model": described, "clients": clients, "seconds": seconds, "concurrency": concurrency, "threads": threads,
        "device": device,
        "recordings_s": durations,
        "sequential": dict(zip(("p50_s", "p90_s", "p99_s"), percentiles(sequential)), requests=len(sequential),
                           requests_per_second=len(sequential) / sum(sequential),
                           median_s=statistics.median(sequential)),
        "rounds": [summary(phase) for phase in load_rounds],
        "rss_started_mib": started_mib, "idle_seconds": idle_seconds, "rss_after_idle_mib": idle_mib,
    }
    if in_process is not None:
        report["in_process"] = dict(zip(("p50_s", "p90_s", "p99_s"), percentiles(in_process["latencies"])),
                                    requests=len(in_process["latencies"]),
                                    requests_per_second=len(in_process["latencies"]) / in_process["elapsed"],
                                    median_s=statistics.median(in_process["latencies"]))
    first = report["rounds"][0]["rss_mib"]
    report["rss_last_round_vs_first"] = report["rounds"][-1]["rss_mib"] / first
    report["rss_after_idle_vs_first"] = idle_mib / first
    report["every_request_answered"] = all(r["answered"] == r["sent"] and not r["lost"] for r in report["rounds"])
    return report


def print_report(report: dict) -> None:
    rounds, sequential, baseline = report["rounds"], report["sequential"], report.get("in_process")
    print(f"Space load test: {report['clients']} clients for {report['seconds']:g} s, {len(rounds)} rounds, against "
          f"space/app.py on 127.0.0.1; model: {report['model']}")
    print(f"app: concurrency {report['concurrency']}, torch threads {report['threads']}, {report['device']}; "
          "recordings: " + ", ".join(f"{name} {duration:.1f} s" for name, duration in report["recordings_s"].items()))
    print()
    print(f"{'':34} {'requests':>8} {'answered':>8} {'errors':>6} {'lost':>5} {'req/s':>7} "
          f"{'p50 s':>7} {'p90 s':>7} {'p99 s':>7}")
    count = sequential["requests"]
    print(f"{'app, 1 client, sequential':34} {count:>8} {count:>8} {0:>6} {0:>5} "
          f"{sequential['requests_per_second']:>7.2f} {sequential['p50_s']:>7.3f} {sequential['p90_s']:>7.3f} "
          f"{sequential['p99_s']:>7.3f}")
    for index, phase in enumerate(rounds, 1):
        label = f"app, {report['clients']} clients, round {index}"
        print(f"{label:34} {phase['sent']:>8} {phase['answered']:>8} "
              f"{phase['failed']:>6} {phase['lost']:>5} {phase['requests_per_second']:>7.2f} {phase['p50_s']:>7.3f} "
              f"{phase['p90_s']:>7.3f} {phase['p99_s']:>7.3f}")
    if baseline is not None:
        label = f"detection API in-process, {report['concurrency']} threads"
        print(f"{label:34} {baseline['requests']:>8} "
              f"{baseline['requests']:>8} {0:>6} {0:>5} {baseline['requests_per_second']:>7.2f} "
              f"{baseline['p50_s']:>7.3f} {baseline['p90_s']:>7.3f} {baseline['p99_s']:>7.3f}")
        print(f"{'ratio app round 1 / in-process':34} {'':>8} {'':>8} {'':>6} {'':>5} "
              f"{rounds[0]['requests_per_second'] / baseline['requests_per_second']:>6.2f}x "
              + " ".join(f"{rounds[0][key] / baseline[key]:>6.1f}x" for key in ("p50_s", "p90_s", "p99_s")))
    print()
    print(f"{'':34} {'app RSS MiB':>11} {'vs round 1':>10} {'uploads left':>12}")
    print(f"{'started':34} {report['rss_started_mib']:>11.1f}")
    for index, phase in enumerate(rounds, 1):
        print(f"{f'after round {index}':34} {phase['rss_mib']:>11.1f} {phase['rss_mib'] / rounds[0]['rss_mib']:>9.3f}x "
              f"{phase['uploads_left']:>12}")
    label = f"after {report['idle_seconds']:g} s idle"
    print(f"{label:34} {report['rss_after_idle_mib']:>11.1f} "
          f"{report['rss_after_idle_vs_first']:>9.3f}x")
    print(f"app RSS after idle / first round: {report['rss_after_idle_vs_first']:.3f}x (goal: within 10 %); "
          f"last round / first: {report['rss_last_round_vs_first']:.3f}x")
    for message in [message for phase in rounds for message in phase["failures"]][:5]:
        print(f"  failure: {message}")
    print(f"every request answered: {'yes' if report['every_request_answered'] else 'NO'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: embedded, else random)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0, help=f"load duration, at most {MAX_SECONDS:g}")
    parser.add_argument("--rounds", type=int, default=3, help="load rounds against the same app (memory per round)")
    parser.add_argument("--idle", type=float, default=40.0, help="seconds the app sits idle before its last RSS")
    parser.add_argument("--concurrency", type=int, default=2, help="the app's default_concurrency_limit")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker, app and baseline")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the in-process baseline")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("space_load.json"),
                        help="the JSON file the measurements are written to (space/README.md is rendered from it)")
    add_device_argument(parser)
    args = parser.parse_args(argv)
    if cuda_missing(args.device):
        return 0
    machine = machine_record(args.device, args.threads)
    report = measure(args.model, args.clients, args.seconds, args.rounds, args.idle, args.concurrency, args.threads,
                     args.baseline, args.device)
    print_report(report)
    details = {key: value for key, value in report.items() if key != "rounds"}  # the rounds are the rows
    write_results(args.output, "space_load", machine, report["rounds"], details)
    return 0 if report["every_request_answered"] else 1


if __name__ == "__main__":
    sys.exit(main())
