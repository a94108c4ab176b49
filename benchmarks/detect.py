"""Benchmark: `nes2net detect` throughput (audio seconds per wall second) and peak memory.

Every case runs in a fresh subprocess started from this light parent (no torch imported here: `ru_maxrss` is
inherited across exec), so its peak RSS (interpreter, torch, model, decoding, batches) is its own:
- a folder of short clips (0.5-3 s FLAC, 16 and 44.1 kHz) scored one file at a time (`detector.detect` in a loop, batch
  size 1: the baseline) and batched (`detector.detect_many`, padded batches grouped by length), fast path off / on;
- one long recording of 1 min, 30 min and 2 h under `--protocol windows` and `--protocol full`, to show that peak
  memory does not grow with duration (the 1-minute run of the same protocol is the baseline): windows stream, and
  `full` holds a recording whole only up to its limit (`max_full_seconds`, 600 s), refusing longer ones early. The
  table splits each peak into `loaded` (the peak before the case: interpreter, torch, transformers, the model and a
  warm-up) and what scoring adds;
- the two fast paths (`--quantize int8`: dynamic int8 Linear layers; `--quantize bf16`) on an XLS-R 300M
  sized random front-end (hidden 1024, 24 layers, stable layer norm), constructed once (in a subprocess) and saved
  for the cases, with the drift it costs: max |difference| of the bona fide probability against float32.

The tiny model has the test models' widths (hidden 64, 2 layers) and XLS-R's 20 ms frame rate (seven conv layers
of 16 channels, strides 5,2,2,2,2,2,2): its compute is small, so its cases measure the pipeline (decoding, batching,
bookkeeping) more than the network. Tiny cases report the best of `--repeats` runs (the machine may be shared).
Goals: batched short clips >= 2x the one-file loop (tiny model); fast path >= 1.8x (XLS-R sized); peak memory
independent of the recording's length. Batching windows of equal length gains little on a CPU (the network is
compute-bound there); its value is GPU utilisation.

    python benchmarks/detect.py [--skip-xlsr] [--threads N] [--device cuda] [--output FILE]

One torch thread by default, so the ratios hold on a shared machine. Writes the rows, the machine and its load to
`--output` (default: `detect.json` next to this script; `benchmarks/render.py` renders it into the README).
`--device cuda` scores on the GPU (int8 dynamic quantisation runs on the CPU and is left out); on a machine without
CUDA it prints one line and exits. Every timed case ends in Python floats, which waits for the device.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))  # run as a script from anywhere

from benchmarks.render import detect_table  # noqa: E402
from benchmarks.results import add_device_argument, cuda_missing, machine_record, write_results  # noqa: E402

TINY_FRONTEND = {
    "model_type": "wav2vec2",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "conv_dim": (16,) * 7,
    "feat_extract_norm": "layer",
    "do_stable_layer_norm": True,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
}


@dataclass(frozen=True)
class Case:
    name: str
    model: str  # "tiny" or "xlsr"
    inputs: str  # key of the input sets written by `write_inputs`
    batch_size: int
    loop: bool = False  # one `detect` call per file instead of `detect_many`
    quantize: str | None = None
    repeats: int = 1  # the best wall time of this many runs is reported
    protocol: str = "windows"




def build_model(kind: str, output_dir: str, seed: int = 0) -> None:
    """In a subprocess: construct a random model of `kind` once and save it as a model folder."""
    import torch

    from modeling_nes2net import Nes2NetConfig, Nes2NetForAudioClassification, save_model_folder
    from modeling_nes2net.configuration_nes2net import XLSR_300M_FRONTEND

    torch.manual_seed(seed)
    ratios = {"outer_ratio": 4, "inner_ratio": 4} if kind == "tiny" else {}
    frontend = TINY_FRONTEND if kind == "tiny" else XLSR_300M_FRONTEND  # XLS-R 300M sized, random weights
    config = Nes2NetConfig(frontend_config=dict(frontend), **ratios)
    save_model_folder(Nes2NetForAudioClassification(config).eval(), output_dir)


def synthetic_speech(seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """`examples.speech_like` with a seed drawn from `rng` (a tone or noise is refused as not speech-like)."""
    from modeling_nes2net.examples import speech_like

    return speech_like(seconds, rate, seed=int(rng.integers(2**31)))


def write_long_wav(path: Path, seconds: float, rng: np.random.Generator) -> Path:
    with soundfile.SoundFile(path, "w", 16_000, 1, "PCM_16") as sound_file:
        for start in range(0, round(seconds), 60):
            sound_file.write(synthetic_speech(min(60, seconds - start), 16_000, rng))
    return path


def write_inputs(folder: Path, clips: int, xlsr_clips: int, long_minutes: Sequence[float]) -> dict[str, list[str]]:
    """Audio files for every case: `clips` short clips, `xlsr_clips` 4 s clips, one long WAV per `long_minutes`."""
    rng = np.random.default_rng(0)
    inputs: dict[str, list[str]] = {"clips": [], "xlsr_clips": []}
    for index in range(clips):
        rate = (16_000, 44_100)[index % 2]
        path = folder / f"clip{index:03d}.flac"
        soundfile.write(path, synthetic_speech(rng.uniform(0.5, 3.0), rate, rng), rate)
        inputs["clips"].append(str(path))
    for index in range(xlsr_clips):
        path = folder / f"xlsr{index:02d}.wav"
        soundfile.write(path, synthetic_speech(4.0, 16_000, rng), 16_000)
        inputs["xlsr_clips"].append(str(path))
    for minutes in long_minutes:
        inputs[f"long{minutes:g}"] = [str(write_long_wav(folder / f"long{minutes:g}min.wav", minutes * 60, rng))]
    return inputs


def run_case(case: Case, model_dir: str, files: list[str], threads: int, device: str) -> dict:
    """In the subprocess: load the detector, warm it up, time the case, report throughput and peak RSS."""
    import torch

    from modeling_nes2net.detection import Nes2NetDetector

    torch.set_num_threads(threads)
    from modeling_nes2net.scorer import DetectionFailure

    detector = Nes2NetDetector.from_pretrained(model_dir, device=device, batch_size=case.batch_size,
                                               quantize=case.quantize, protocol=case.protocol)
    detector.detect(synthetic_speech(2.0, 16_000, np.random.default_rng(1)), sampling_rate=16_000)
    loaded_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # interpreter, torch, model, warm-up
    wall = float("inf")
    for _ in range(case.repeats):
        start = time.perf_counter()
        if case.loop:
            results = [detector.detect(path) for path in files]
        else:
            results = list(detector.detect_many(files))
        wall = min(wall, time.perf_counter() - start)
    refused = [result.error for result in results if isinstance(result, DetectionFailure)]
    results = [result for result in results if not isinstance(result, DetectionFailure)]
    return {
        "wall": wall,
        "refused": refused,
        "audio": sum(result.duration for result in results),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loaded_mb": loaded_mb,
        "probabilities": [result.bonafide_probability for result in results],
        "torch": torch.__version__,
    }


def in_subprocess(*arguments: str) -> str:
    """Run this script with `arguments` in a fresh interpreter (the repository importable); its last stdout line."""
    path = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    completed = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True,
                               env=dict(os.environ, PYTHONPATH=path))
    if completed.returncode != 0:
        raise RuntimeError(f"{arguments[:2]} failed:\n{completed.stderr[-3000:]}")
    return completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=96, help="short clips in the folder")
    parser.add_argument("--long-minutes", type=float, nargs="+", default=(1.0, 30.0, 120.0),
                        help="the long recordings' lengths; the first is the memory baseline")
    parser.add_argument("--xlsr-clips", type=int, default=4, help="4 s clips for the XLS-R sized cases")
    parser.add_argument("--skip-xlsr", action="store_true", help="skip the XLS-R sized cases")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each tiny-model case; the best is kept")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("detect.json"))
    add_device_argument(parser)
    parser.add_argument("--run-case", help=argparse.SUPPRESS)
    parser.add_argument("--build", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build_model(*args.build)
        return
    if args.run_case:
        request = json.loads(args.run_case)
        print(json.dumps(run_case(Case(**request["case"]), request["model_dir"], request["files"], request["threads"],
                                  request["device"])))
        return
    if cuda_missing(args.device):
        return
    machine = machine_record(args.device, args.threads)

    short, long_ = "clips", f"long{args.long_minutes[0]:g}"
    repeats = args.repeats
    cases = [
        Case("short clips, one file at a time", "tiny", short, 1, loop=True, repeats=repeats),
        Case("short clips, batched", "tiny", short, 16, repeats=repeats),
        Case("short clips, batched, int8", "tiny", short, 16, quantize="int8", repeats=repeats),
        Case(f"{args.long_minutes[0]:g} min recording, batch 1", "tiny", long_, 1, repeats=repeats),
    ]
    long_cases = [Case(f"{minutes:g} min recording, {protocol}", "tiny", f"long{minutes:g}", 16, protocol=protocol)
                  for protocol in ("windows", "full") for minutes in args.long_minutes]
    cases += long_cases
    if not args.skip_xlsr:
        cases += [
            Case("4 s clips, float32", "xlsr", "xlsr_clips", 2),
            Case("4 s clips, --quantize int8", "xlsr", "xlsr_clips", 2, quantize="int8"),
            Case("4 s clips, --quantize bf16", "xlsr", "xlsr_clips", 2, quantize="bf16"),
        ]
    if args.device != "cpu":  # dynamic int8 quantisation runs on the CPU only
        cases = [case for case in cases if case.quantize != "int8"]
    with tempfile.TemporaryDirectory(prefix="nes2net-bench-detect-") as scratch:
        scratch = Path(scratch)
        inputs = write_inputs(scratch, args.clips, 0 if args.skip_xlsr else args.xlsr_clips, args.long_minutes)
        model_dirs = {}
        for kind in sorted({case.model for case in cases}):
            start = time.perf_counter()
            model_dirs[kind] = str(scratch / kind)
            in_subprocess("--build", kind, model_dirs[kind])
            print(f"{kind} random model built and saved once in {time.perf_counter() - start:.1f} s", flush=True)
        measured = {}
        for case in cases:
            request = {"case": asdict(case), "model_dir": model_dirs[case.model], "files": inputs[case.inputs],
                       "threads": args.threads, "device": args.device}
            measured[case.name] = json.loads(in_subprocess("--run-case", json.dumps(request)))
            print(f"  ran {case.name}: {measured[case.name]['wall']:.2f} s", flush=True)

    loop_case, long_baseline = "short clips, one file at a time", f"{args.long_minutes[0]:g} min recording, batch 1"
    baselines = {short: loop_case, long_: long_baseline, "xlsr_clips": "4 s clips, float32"}
    rows = []
    for case in cases:
        result = measured[case.name]
        if case in long_cases:
            baseline = measured[f"{args.long_minutes[0]:g} min recording, {case.protocol}"]
            outcome = ("refused: " + result["refused"][0].split(": ", 1)[1].split(",")[0] if result["refused"]
                       else f"scored {result['audio']:.0f} s ({result['audio'] / result['wall']:.0f} audio s/s)")
            rows.append({"kind": "memory", "case": case.name, "protocol": case.protocol,
                         "minutes": float(case.name.split(" min")[0]), "outcome": outcome, "wall": result["wall"],
                         "rss_mb": result["rss_mb"], "loaded_mb": result["loaded_mb"],
                         "ratio": result["rss_mb"] / baseline["rss_mb"]})
            continue
        baseline = measured[baselines[case.inputs]]
        throughput = result["audio"] / result["wall"]
        row = {"kind": "throughput", "case": case.name, "model": case.model, "batch": case.batch_size,
               "quantize": case.quantize, "audio": result["audio"], "wall": result["wall"],
               "audio_seconds_per_second": throughput, "baseline": baselines[case.inputs],
               "ratio": throughput / (baseline["audio"] / baseline["wall"]), "rss_mb": result["rss_mb"]}
        if case.model == "xlsr" and case.quantize:
            row["max_probability_drift"] = float(np.max(np.abs(np.subtract(result["probabilities"],
                                                                            baseline["probabilities"]))))
        rows.append(row)

    record = write_results(args.output, "detect", machine, rows)
    print(f"\n{detect_table(record)}")
    print("\ngoals: batched short clips >= 2x the loop; fast paths >= 1.8x float32; peak RSS ~1x, whatever the length")

if __name__ == "__main__":
    main()
