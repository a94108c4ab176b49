"""The shipped demo model (`modeling_nes2net/default_model`): inference throughput and size on disk.

    python benchmarks/demo_model.py [--model DIR] [--threads 2] [--seconds 4.04] [--batch 16] [--repeats 10]
                                    [--device cuda] [--output FILE]

Throughput is audio seconds scored per wall-clock second, in eval mode under `torch.inference_mode`, on random
waveforms of `--seconds` (the model's cost does not depend on the content): batch 1 (the baseline) against one
batch of `--batch` clips, the two run alternately so that load from other processes falls on both alike; median
of `--repeats` timed runs after 2 warm-up runs. Then every file of the folder and the total against the 25 MB limit.
Writes the throughput rows, the machine and its load to `--output` (default: `demo_model.json` next to this script).
`--device cuda` runs the model on the GPU; on a machine without CUDA it prints one line and exits.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from modeling_nes2net import Nes2NetForAudioClassification
from modeling_nes2net.model_loading import DEFAULT_MODEL_DIR

from benchmarks.results import add_device_argument, cuda_missing, machine_record, synchronize, write_results

SAMPLING_RATE = 16_000
SIZE_LIMIT_BYTES = 25 * 1000**2
WARMUP = 2


def median_seconds(
    model: torch.nn.Module, inputs: dict[str, torch.Tensor], repeats: int, device: str = "cpu"
) -> dict[str, float]:
    """Median wall-clock seconds of one forward of each named input, the inputs run alternately."""
    times: dict[str, list[float]] = {name: [] for name in inputs}
    with torch.inference_mode():
        for step in range(WARMUP + repeats):
            for name, batch in inputs.items():
                synchronize(device)
                start = time.perf_counter()
                model(batch)
                synchronize(device)
                if step >= WARMUP:
                    times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def folder_sizes(folder: Path) -> list[tuple[str, int]]:
    """`(relative path, bytes)` of every file under `folder`, sorted by path."""
    return sorted((path.relative_to(folder).as_posix(), path.stat().st_size) for path in folder.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="model folder (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--seconds", type=float, default=4.0375, help="clip length (default: 64,600 samples)")
    parser.add_argument("--batch", type=int, default=16, help="clips per batch in the batched run")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("demo_model.json"))
    add_device_argument(parser)
    args = parser.parse_args()
    if cuda_missing(args.device):
        return
    if not (args.model / "config.json").is_file():
        raise SystemExit(f"no model folder at {args.model}: run `python -m training.default_model` first")
    torch.set_num_threads(args.threads)
    machine = machine_record(args.device, args.threads)
    model = Nes2NetForAudioClassification.from_pretrained(args.model).eval().to(args.device)
    samples = round(args.seconds * SAMPLING_RATE)
    generator = torch.Generator().manual_seed(0)
    inputs = {
        "batch 1": (torch.rand(1, samples, generator=generator) * 0.2 - 0.1).to(args.device),
        f"batch {args.batch}": (torch.rand(args.batch, samples, generator=generator) * 0.2 - 0.1).to(args.device),
    }
    seconds = median_seconds(model, inputs, args.repeats, args.device)
    baseline = samples / SAMPLING_RATE / seconds["batch 1"]
    print(f"{args.model} on {args.device}, {args.threads} threads, "
          f"{samples} samples ({samples / SAMPLING_RATE:.2f} s) per clip")
    print(f"{'run':<12} {'ms / forward':>12} {'audio s / s':>12} {'vs batch 1':>10}")
    rows = []
    for name, batch in inputs.items():
        throughput = batch.shape[0] * samples / SAMPLING_RATE / seconds[name]
        print(f"{name:<12} {1000 * seconds[name]:>12.1f} {throughput:>12.1f} {throughput / baseline:>9.2f}x")
        rows.append({"run": name, "batch": batch.shape[0], "samples": samples, "repeats": args.repeats,
                     "ms": 1000 * seconds[name], "audio_seconds_per_second": throughput,
                     "vs_batch_1": throughput / baseline})
    print()
    sizes = folder_sizes(args.model)
    print(f"{'file':<60} {'bytes':>12}")
    for path, size in sizes:
        print(f"{path:<60} {size:>12,}")
    total = sum(size for _, size in sizes)
    print(f"{'total':<60} {total:>12,}  ({total / 1e6:.2f} MB, {100 * total / SIZE_LIMIT_BYTES:.1f}% of the 25 MB limit)")
    parameters = sum(parameter.numel() for parameter in model.parameters())
    print(f"parameters: {parameters:,}")
    write_results(args.output, "demo_model", machine | {"model": args.model.name, "model_bytes": total,
                                                        "parameters": parameters}, rows)


if __name__ == "__main__":
    main()
