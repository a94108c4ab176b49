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
independent of the recording's length. Run: `python benchmarks/detect.py [--skip-xlsr] [--threads N]`; one torch
thread by default, so the ratios hold on a shared machine.

Measured on a shared 2-core AMD EPYC VM (AVX512-BF16), 1 thread: batched short clips 2.3-2.8x the loop; XLS-R
sized int8 3.6x (max |diff p| 0.013), bf16 4.1x (0.004). Batching windows of equal length gains nothing on a CPU
(the network is compute-bound there); its value is GPU utilisation. Peak RSS against 1 min, three runs under load
(another session training on the CPU): windows 0.99-1.05x at 30 min and 1.00-1.04x at 2 h (491-518 MB; 1.09x / 1.09x
before decoding was held to a batch ahead), full 0.98x (refused over 600 s). Of a ~500 MB peak, 406 MB is loaded
before scoring; scoring adds 84-113 MB, mostly one forward pass over 16 windows (batch 1 adds about 19 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def run_case(case: Case, model_dir: str, files: list[str], threads: int) -> dict:
    """In the subprocess: load the detector, warm it up, time the case, report throughput and peak RSS."""
    import torch

    from modeling_nes2net.detection import Nes2NetDetector

    torch.set_num_threads(threads)
    from modeling_nes2net.scorer import DetectionFailure

    detector = Nes2NetDetector.from_pretrained(model_dir, device="cpu", batch_size=case.batch_size,
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
    parser.add_argument("--run-case", help=argparse.SUPPRESS)
    parser.add_argument("--build", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build_model(*args.build)
        return
    if args.run_case:
        request = json.loads(args.run_case)
        print(json.dumps(run_case(Case(**request["case"]), request["model_dir"], request["files"], request["threads"])))
        return

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
                       "threads": args.threads}
            measured[case.name] = json.loads(in_subprocess("--run-case", json.dumps(request)))
            print(f"  ran {case.name}: {measured[case.name]['wall']:.2f} s", flush=True)

    baselines = {short: cases[0].name, long_: cases[3].name, "xlsr_clips": "4 s clips, float32"}
    print(f"\nnes2net detect on CPU ({platform.processor() or platform.machine()}, {args.threads} torch threads, "
          f"torch {measured[cases[0].name]['torch']})")
    header = (f"{'case':<34} {'model':<5} {'batch':>5} {'audio s':>8} {'wall s':>7} {'audio s/s':>10} {'ratio':>6} "
              f"{'peak RSS MB':>12}")
    print(header + "\n" + "-" * len(header))
    for case in cases:
        if case in long_cases:
            continue
        result = measured[case.name]
        throughput = result["audio"] / result["wall"]
        baseline = measured[baselines[case.inputs]]
        ratio = throughput / (baseline["audio"] / baseline["wall"])
        print(f"{case.name:<34} {case.model:<5} {case.batch_size:>5} {result['audio']:>8.1f} {result['wall']:>7.2f} "
              f"{throughput:>10.1f} {ratio:>5.2f}x {result['rss_mb']:>12.0f}")

    print(f"\npeak memory against the recording's length (tiny model, batch 16; baseline: "
          f"{args.long_minutes[0]:g} min under the same protocol)")
    header = (f"{'protocol':<8} {'length':>8} {'outcome':<46} {'wall s':>7} {'peak RSS MB':>12} {'vs baseline':>12} "
              f"{'loaded MB':>10} {'scoring adds':>12}")
    print(header + "\n" + "-" * len(header))
    for case in long_cases:
        result = measured[case.name]
        baseline = measured[f"{args.long_minutes[0]:g} min recording, {case.protocol}"]
        outcome = ("refused: " + result["refused"][0].split(": ", 1)[1].split(",")[0] if result["refused"]
                   else f"scored {result['audio']:.0f} s ({result['audio'] / result['wall']:.0f} audio s/s)")
        print(f"{case.protocol:<8} {case.name.split(' min')[0] + ' min':>8} {outcome:<46} {result['wall']:>7.1f} "
              f"{result['rss_mb']:>12.0f} {result['rss_mb'] / baseline['rss_mb']:>11.2f}x {result['loaded_mb']:>10.0f} "
              f"{result['rss_mb'] - result['loaded_mb']:>12.0f}")

    print("\ngoals:")
    batched = measured[cases[1].name]["audio"] / measured[cases[1].name]["wall"]
    looped = measured[cases[0].name]["audio"] / measured[cases[0].name]["wall"]
    print(f"  batched short clips vs one-file loop (tiny): {batched / looped:.2f}x (goal >= 2x)")
    for protocol in ("windows", "full"):
        ratios = [measured[case.name]["rss_mb"] / measured[long_cases[0 if protocol == "windows" else
                                                                      len(args.long_minutes)].name]["rss_mb"]
                  for case in long_cases if case.protocol == protocol]
        print(f"  peak RSS {protocol}, longest / {args.long_minutes[0]:g} min: {ratios[-1]:.2f} "
              f"(max {max(ratios):.2f}; goal: ~1, independent of length)")
    if not args.skip_xlsr:
        exact = measured["4 s clips, float32"]
        for quantize in ("int8", "bf16"):
            fast = measured[f"4 s clips, --quantize {quantize}"]
            drift = np.max(np.abs(np.subtract(fast["probabilities"], exact["probabilities"])))
            print(f"  fast path {quantize} vs float32 (XLS-R sized): {exact['wall'] / fast['wall']:.2f}x "
                  f"(goal >= 1.8x), max |diff p(bona fide)| = {drift:.4f} over {len(exact['probabilities'])} clips")


if __name__ == "__main__":
    main()
