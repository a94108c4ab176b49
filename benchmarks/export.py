"""End-to-end CPU speed of `detect` on an XLS-R-300M-sized model: PyTorch fp32 / bf16 / int8, ONNX Runtime fp32 /
int8 / fp16 and a truncated front-end, against the authors' inference loop (one file at a time, full length, fp32).

    python benchmarks/export.py            # --quick: XLS-R 300M widths with 4 of its 24 layers, short audio
    python benchmarks/export.py --full     # all 24 layers, clips of 4-20 s and one 10-minute file (hours, 16 GB)
    python benchmarks/export.py --device cuda [--output FILE]

The model has XLS-R 300M's widths (hidden 1024, 16 heads, feed-forward 4096, stable layer norm, 7 conv layers) and
random weights, built offline from a transformers config; `--quick` keeps the first 4 transformer layers so that the
default run takes minutes on 2 shared cores; `--full` takes hours there (projected 2.5-3 h on 2 loaded cores: the
authors' loop attends over the 10-minute file's 30,000 frames in every layer, about an hour alone) and the authors'
loop holds that file whole (14 GB peak, measured with one layer). Inputs: a folder of clips of 4-20 s and one long
file (`--quick`: 3 clips, one 60 s file; `--full`: 8 clips, one 600 s file), speech-like synthetic audio
(`examples.speech_like`: speed does not depend on the content, and `detect` refuses tones and noise).

For each path the table prints the real-time factor (wall seconds per second of audio, lower is faster), the speed-up
over the authors' loop on the same input, and the max |log-odds difference| of the recordings' verdicts from PyTorch
fp32 `detect` (the same windows). `detect` scores 4.04 s windows (hop 2.02 s, batch 8); the authors' loop scores each
file whole, so on long files it also pays attention over the whole length. The truncated row keeps half the
front-end's layers (`frontend_num_layers`, the deeper ones neither built nor run): its drift is what dropping layers
costs, not rounding; the convolutional feature encoder and the positional convolution run whole either way.
Writes the rows, the model, the export's drift and the machine and its load to `--output` (default: `export.json`
next to this script; `benchmarks/render.py` renders it into the README). `--device cuda` runs the authors' loop and
the PyTorch fp32 / bf16 / truncated paths on the GPU (int8 dynamic quantisation and ONNX Runtime run on the CPU and
are left out); on a machine without CUDA it prints one line and exits. Every timed call ends in Python floats, which
waits for the device, so the wall clock measures the work.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import soundfile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from modeling_nes2net import Nes2NetConfig, Nes2NetForAudioClassification, save_model_folder
from modeling_nes2net.configuration_nes2net import XLSR_300M_FRONTEND
from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.onnx_export import export_onnx
from modeling_nes2net.decision import log_odds
from modeling_nes2net.examples import speech_like
from modeling_nes2net.scorer import DetectionFailure
from benchmarks.render import export_table
from benchmarks.results import add_device_argument, cuda_missing, machine_record, write_results

SIZES = {
    "quick": {"layers": 4, "clips": (4.0, 9.0, 20.0), "long": 60.0},
    "full": {"layers": 24, "clips": (4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 18.0, 20.0), "long": 600.0},
}
RATE = 16_000
BASELINE = "the authors' inference loop as we transcribe it: each file read whole and scored in one fp32 forward pass"
CPU_ONLY_PATHS = ("PyTorch int8", "ONNX Runtime fp32", "ONNX Runtime int8", "ONNX Runtime fp16")


def write_inputs(folder: Path, clip_seconds: tuple[float, ...], long_seconds: float) -> tuple[list[Path], Path]:
    """Clips of `clip_seconds` in `folder/clips` and one `long_seconds` file: 16 kHz `examples.speech_like` audio
    (a tone or noise is refused by `detect`'s input check, so the paths would time refusals)."""
    (folder / "clips").mkdir(parents=True)
    clips = []
    for index, seconds in enumerate(clip_seconds):
        clips.append(folder / "clips" / f"clip{index}.wav")
        soundfile.write(clips[-1], speech_like(seconds, RATE, seed=index), RATE, subtype="FLOAT")
    long_file = folder / "long.wav"
    soundfile.write(long_file, speech_like(long_seconds, RATE, seed=len(clip_seconds)), RATE, subtype="FLOAT")
    return clips, long_file


@torch.inference_mode()
def authors_loop(model: Nes2NetForAudioClassification, files: list[Path]) -> tuple[float, list[float]]:
    """The authors' inference: each file read whole and scored in one fp32 forward pass. Seconds, log-odds."""
    start, odds = time.perf_counter(), []
    for file in files:
        waveform = torch.from_numpy(soundfile.read(file, dtype="float32")[0])[None].to(model.device)
        odds.append(float(log_odds(model(input_values=waveform).logits)[0]))
    return time.perf_counter() - start, odds


def timed_detect(detector: Nes2NetDetector, files: list[Path]) -> tuple[float, list[float]]:
    """Seconds of `detect_many` over `files`, and each recording's log-odds; a refused file stops the run by name."""
    start = time.perf_counter()
    results = list(detector.detect_many(files))
    elapsed = time.perf_counter() - start
    refused = [result.error for result in results if isinstance(result, DetectionFailure)]
    if refused:
        raise SystemExit(f"detect refused an input, so its time would not be a scoring time: {refused[0]}")
    return elapsed, [result.log_odds for result in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick", help="the default")
    size.add_argument("--full", dest="size", action="store_const", const="full")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("export.json"))
    add_device_argument(parser)
    args = parser.parse_args()
    if cuda_missing(args.device):
        return
    sizes = SIZES[args.size or "quick"]
    torch.set_num_threads(args.threads)
    machine = machine_record(args.device, args.threads)
    work = Path(tempfile.mkdtemp(prefix="nes2net-export-bench-"))
    clips, long_file = write_inputs(work / "audio", sizes["clips"], sizes["long"])
    inputs = {"clips": clips, "long file": [long_file]}
    seconds = {name: sum(soundfile.info(file).duration for file in files) for name, files in inputs.items()}

    torch.manual_seed(0)
    frontend = {**XLSR_300M_FRONTEND, "num_hidden_layers": sizes["layers"]}
    model = Nes2NetForAudioClassification(Nes2NetConfig(frontend_config=frontend)).eval()
    model_dir = save_model_folder(model, work / "model")
    export_drift = {}
    if args.device == "cpu":
        export = export_onnx(model, work / "onnx", parity_audio=[soundfile.read(clips[0], dtype="float32")[0]],
                             variants=("int8", "fp16"))
        export_drift = export.max_log_odds_difference
    drifts = ", ".join(f"{variant} {drift:.1e}" for variant, drift in export_drift.items()) or "not exported"
    print(f"XLS-R 300M widths, {sizes['layers']} transformer layers, random weights; {args.threads} threads; "
          f"ONNX export max |log-odds diff| {drifts}")
    print(f"inputs: {len(clips)} clips ({seconds['clips']:.0f} s), one file of {seconds['long file']:.0f} s")

    options = dict(device=args.device, batch_size=8)
    kept = max(1, sizes["layers"] // 2)
    paths = {
        "PyTorch fp32": lambda: Nes2NetDetector(Nes2NetForAudioClassification.from_pretrained(model_dir), **options),
        "PyTorch bf16": lambda: Nes2NetDetector(
            Nes2NetForAudioClassification.from_pretrained(model_dir), quantize="bf16", **options),
        "PyTorch int8": lambda: Nes2NetDetector(
            Nes2NetForAudioClassification.from_pretrained(model_dir), quantize="int8", **options),
        "ONNX Runtime fp32": lambda: Nes2NetDetector.from_pretrained(work / "onnx", runtime="onnx", **options),
        "ONNX Runtime int8": lambda: Nes2NetDetector.from_pretrained(
            work / "onnx", runtime="onnx", quantize="int8", **options),
        "ONNX Runtime fp16": lambda: Nes2NetDetector.from_pretrained(
            work / "onnx", runtime="onnx", quantize="fp16", **options),
        f"truncated, {kept} of {sizes['layers']} layers": lambda: Nes2NetDetector(
            Nes2NetForAudioClassification.from_pretrained(model_dir, frontend_num_layers=kept), **options),
    }
    paths = {name: build for name, build in paths.items() if args.device == "cpu" or name not in CPU_ONLY_PATHS}
    truncated = Nes2NetForAudioClassification.from_pretrained(model_dir, frontend_num_layers=kept)
    print(f"truncated model: {len(truncated.nes2net.frontend.encoder.layers)} of {sizes['layers']} transformer layers "
          f"built, {truncated.num_parameters() / 1e6:.0f} M of {model.num_parameters() / 1e6:.0f} M parameters")
    del truncated
    model.to(args.device)
    rows = []

    def add_row(path_name: str, input_name: str, elapsed: float, baseline: float, drift: float | None) -> None:
        rows.append({"path": path_name, "input": input_name, "audio_seconds": seconds[input_name],
                     "rtf": elapsed / seconds[input_name], "speedup": baseline / elapsed, "max_log_odds_drift": drift})
        print(f"  {path_name}, {input_name}: RTF {rows[-1]['rtf']:.3f}", flush=True)

    for input_name, files in inputs.items():
        baseline, _ = authors_loop(model, files)
        add_row("authors' loop, fp32", input_name, baseline, baseline, None)
        reference = None
        for path_name, build in paths.items():
            detector = build()
            elapsed, odds = timed_detect(detector, files)
            reference = odds if reference is None else reference
            add_row(path_name, input_name, elapsed, baseline, max(abs(a - b) for a, b in zip(odds, reference)))
            del detector
            gc.collect()
    descriptions = {"clips": f"{len(clips)} clips ({seconds['clips']:.0f} s)",
                    "long file": f"{seconds['long file']:.0f} s file"}
    model_line = (f"XLS-R 300M widths with {sizes['layers']} of its 24 transformer layers, random weights; `detect` "
                  "scores 4.04 s windows (hop 2.02 s, batch 8)")
    record = write_results(args.output, "export", machine | {"model": model_line, "baseline": BASELINE,
                                                             "inputs": descriptions, "onnx_export_drift": export_drift},
                           rows)
    print(f"\n{export_table(record)}")


if __name__ == "__main__":
    main()
