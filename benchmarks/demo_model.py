"""The shipped default model (`modeling_nes2net/default_model`) next to the model it replaced: inference throughput
by precision and runtime, and size on disk.

    python benchmarks/demo_model.py [--model DIR] [--replaced REV | --no-replaced] [--threads 2] [--seconds 4.04]
                                    [--batch 16] [--repeats 10] [--device cuda] [--output FILE]

Throughput is audio seconds scored per wall-clock second, in eval mode under `torch.inference_mode`, on random
waveforms of `--seconds` (the model's cost does not depend on the content), at batch 1 and in one batch of `--batch`
clips, for PyTorch float32 (the baseline: batch 1), PyTorch bfloat16 (`quantize="bf16"`, what `detect --quantize bf16`
runs) and the ONNX Runtime export, float32 and int8 (`modeling_nes2net.onnx_export`, what `detect --runtime onnx`
runs). All runs of a model alternate, so that load from other processes falls on them alike; median of `--repeats`
timed runs after 2 warm-up runs. The replaced model is the default folder as it was before the last commit that
changed its weights (`--replaced REV` picks another revision), extracted from git and measured the same way.
Writes the rows, the models' sizes and the machine and its load to `--output` (default: `demo_model.json` next to
this script; `benchmarks/render.py` renders it into the README). `--device cuda` runs the PyTorch paths on the GPU
(ONNX Runtime runs on the CPU and is left out); on a machine without CUDA it prints one line and exits.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from modeling_nes2net import Nes2NetForAudioClassification
from modeling_nes2net.model_loading import DEFAULT_MODEL_DIR
from modeling_nes2net.onnx_export import export_onnx
from modeling_nes2net.onnx_runtime import Nes2NetOnnxModel
from modeling_nes2net.quantization import quantize_for_inference

from benchmarks.results import (
    REPO_ROOT,
    add_device_argument,
    alternating_medians,
    cuda_missing,
    git_archive,
    machine_record,
    write_results,
)

SAMPLING_RATE = 16_000
SIZE_LIMIT_BYTES = 25 * 1000**2
WEIGHTS = "modeling_nes2net/default_model/model.safetensors"


def replaced_revision() -> str:
    """The parent of the last commit that changed the shipped default's weights: the model it replaced."""
    last = subprocess.run(["git", "rev-list", "-1", "HEAD", "--", WEIGHTS], cwd=REPO_ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    if not last:
        raise SystemExit(f"--replaced: git knows no commit of {WEIGHTS}; pass --no-replaced")
    return f"{last}^"


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under `folder`."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def inference_paths(model: Nes2NetForAudioClassification, device: str, threads: int, scratch: Path) -> dict:
    """`{path name: (waveforms (batch, samples) -> logits, input dtype)}`: PyTorch float32 and bfloat16, and on the
    CPU the model's ONNX Runtime export in float32 and int8."""
    paths = {"PyTorch fp32": (model, torch.float32),
             "PyTorch bf16": (quantize_for_inference(copy.deepcopy(model), "bf16", torch.device(device)),
                              torch.bfloat16)}
    if device == "cpu":
        parity = torch.rand(SAMPLING_RATE * 4, generator=torch.Generator().manual_seed(1)).numpy() * 0.2 - 0.1
        export_onnx(model, scratch / "onnx", parity_audio=[parity], variants=("int8",))
        for variant in ("fp32", "int8"):
            paths[f"ONNX Runtime {variant}"] = (Nes2NetOnnxModel(scratch / "onnx", variant, threads), torch.float32)
    return paths


def measure(folder: Path, label: str, args: argparse.Namespace, scratch: Path) -> list[dict]:
    """One row per inference path and batch size of the model in `folder`."""
    model = Nes2NetForAudioClassification.from_pretrained(folder).eval().to(args.device)
    samples = round(args.seconds * SAMPLING_RATE)
    generator = torch.Generator().manual_seed(0)
    batches = {size: (torch.rand(size, samples, generator=generator) * 0.2 - 0.1).to(args.device)
               for size in (1, args.batch)}
    paths = inference_paths(model, args.device, args.threads, scratch / label)
    runs = {(path, size): (function, batch.to(dtype))
            for path, (function, dtype) in paths.items() for size, batch in batches.items()}
    seconds = alternating_medians(runs, args.repeats, args.device, warmup=2)
    baseline = samples / SAMPLING_RATE / seconds[("PyTorch fp32", 1)].wall
    rows = []
    for (path, size), timing in seconds.items():
        elapsed = timing.wall
        throughput = size * samples / SAMPLING_RATE / elapsed
        rows.append({"model": label, "folder": folder.name, "frontend": model.config.frontend_type, "path": path,
                     "batch": size, "samples": samples, "repeats": args.repeats, "ms": 1000 * elapsed,
                     "cpu_ms": 1000 * timing.cpu,                     "audio_seconds_per_second": throughput, "vs_fp32_batch_1": throughput / baseline,
                     "parameters": model.num_parameters(), "model_bytes": folder_bytes(folder)})
        print(f"{label:<10} {path:<18} {size:>5} {1000 * elapsed:>12.1f} {throughput:>12.1f} "
              f"{throughput / baseline:>9.2f}x")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="model folder (default: the shipped one)")
    replaced = parser.add_mutually_exclusive_group()
    replaced.add_argument("--replaced", metavar="REV", help="git revision of the replaced default (default: found)")
    replaced.add_argument("--no-replaced", action="store_true", help="measure --model only")
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime intra-op threads")
    parser.add_argument("--seconds", type=float, default=4.0375, help="clip length (default: 64,600 samples)")
    parser.add_argument("--batch", type=int, default=16, help="clips per batch in the batched run")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("demo_model.json"))
    add_device_argument(parser)
    args = parser.parse_args()
    if cuda_missing(args.device):
        return
    if not (args.model / "config.json").is_file():
        raise SystemExit(f"--model: no model folder at {args.model}; run `python -m training.default_model` first")
    torch.set_num_threads(args.threads)
    machine = machine_record(args.device, args.threads)
    print(f"{args.device}, {args.threads} threads, {args.seconds:.2f} s clips, median of {args.repeats} runs")
    print(f"{'model':<10} {'path':<18} {'batch':>5} {'ms / forward':>12} {'audio s / s':>12} {'vs fp32 b1':>10}")
    with tempfile.TemporaryDirectory(prefix="nes2net-demo-bench-") as scratch:
        scratch = Path(scratch)
        rows = measure(args.model, "shipped", args, scratch)
        if not args.no_replaced:
            revision = args.replaced or replaced_revision()
            git_archive(revision, "modeling_nes2net/default_model", scratch / "replaced")
            rows += measure(scratch / "replaced" / "modeling_nes2net" / "default_model", "replaced", args, scratch)
            machine["replaced_revision"] = subprocess.run(["git", "rev-parse", "--short", revision], cwd=REPO_ROOT,
                                                          capture_output=True, text=True).stdout.strip()
    size = rows[0]["model_bytes"]
    print(f"shipped model folder: {size / 1e6:.2f} MB, {100 * size / SIZE_LIMIT_BYTES:.1f}% of the 25 MB limit")
    write_results(args.output, "demo_model", machine | {"size_limit_bytes": SIZE_LIMIT_BYTES}, rows)


if __name__ == "__main__":
    main()
