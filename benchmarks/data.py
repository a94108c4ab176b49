"""Data pipeline: build time, and load + decode + crop throughput against a plain soundfile loop.

    python benchmarks/data.py [--num-files 1000] [--seconds 4] [--repeats 3] [--output FILE]

Writes `num_files` synthetic 16 kHz FLAC files in the generic layout and times building them with
`build_dataset` against `Dataset.from_generator` + `to_parquet` (wall clock). Then measures, in one process
and one thread, the same files read back and cropped by:
- baseline: a plain loop of `soundfile.read(path)` + numpy random crop / tiling (files on disk);
- nes2net: `load_training_dataset` items (stored FLAC bytes, soundfile seek to the window);
- datasets default: `Audio(sampling_rate=16000)` decoding (torchcodec) of the same built dataset + the same crop.
Each throughput is the best of `repeats` passes, per CPU-second of this process (one thread);
samples/s counts the cropped output samples. Build and load times are wall-clock. Writes the rows, the machine and
its load to `--output` (default: `data.json` next to this script; `benchmarks/render.py` renders it into the README).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import soundfile
import torch
from datasets import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from benchmarks.results import machine_record, write_results
from training.data import build_dataset, corpus_features, crop_waveform, load_built_dataset, load_training_dataset
from training.data.synthetic import make_synthetic_corpus

T = TypeVar("T")


def baseline_crop(waveform: np.ndarray, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """What training scripts usually write: tile a short file, else cut a random window."""
    if len(waveform) < num_samples:
        return np.tile(waveform, num_samples // len(waveform) + 1)[:num_samples]
    start = rng.integers(0, len(waveform) - num_samples + 1)
    return waveform[start : start + num_samples]


def best_rates(passes: dict[str, Callable[[], int]], repeats: int) -> dict[str, float]:
    """Highest output samples per CPU-second of each pass (a callable returning the samples it made) over
    `repeats` rounds. CPU time of this process, not wall time: the passes are single-threaded and the
    machine may be shared, so CPU time is what stays comparable between passes and runs."""
    rates: dict[str, float] = dict.fromkeys(passes, 0.0)
    for _ in range(repeats):
        for name, run_pass in passes.items():
            start = time.process_time()
            samples = run_pass()
            rates[name] = max(rates[name], samples / (time.process_time() - start))
    return rates


def timed(step: Callable[[], T]) -> tuple[float, T]:
    """Wall-clock seconds of one call of `step`, and what it returned."""
    start = time.perf_counter()
    result = step()
    return time.perf_counter() - start, result


def generator_build(files: list[Path], out_dir: Path, cache_dir: str) -> None:
    """The build most scripts would write: rows from a generator into an Arrow cache, then one Parquet file."""

    def rows():
        for path in files:
            label = int(path.parent.name == "bonafide")
            yield {
                "audio": {"bytes": path.read_bytes(), "path": path.name},
                "label": label,
                "utt_id": path.stem,
                "speaker": None,
                "attack": "bonafide" if label else "unknown",
            }

    dataset = Dataset.from_generator(rows, features=corpus_features(), cache_dir=cache_dir)
    out_dir.mkdir(parents=True)
    dataset.to_parquet(out_dir / "train.parquet")


def reader_passes(
    files: list[Path], training: Dataset, stored: Dataset, num_samples: int, rng: np.random.Generator
) -> dict[str, Callable[[], int]]:
    """One pass over every file for each reader; each returns the number of output samples it made."""

    def baseline() -> int:
        return sum(len(baseline_crop(soundfile.read(path, dtype="float32")[0], num_samples, rng)) for path in files)

    def nes2net() -> int:
        return sum(len(training[index]["input_values"]) for index in range(len(training)))

    def datasets_default() -> int:
        return sum(
            len(crop_waveform(stored[index]["audio"].get_all_samples().data[0].numpy(), num_samples))
            for index in range(len(stored))
        )

    return {
        READ_BASELINE: baseline,
        "nes2net load_training_dataset": nes2net,
        "datasets Audio(16 kHz) decode + crop": datasets_default,
    }


BUILD_BASELINE = "baseline: Dataset.from_generator + to_parquet"
READ_BASELINE = "baseline: soundfile.read + numpy crop"


def measure(num_files: int, seconds: float, repeats: int, workdir: Path) -> tuple[list[dict], float]:
    """Rows of build steps (wall-clock seconds against `BUILD_BASELINE`) and readers (output samples per CPU-second
    against `READ_BASELINE`) on `num_files` synthetic FLAC files of `seconds` written under `workdir`; and the
    corpus' size in bytes."""
    rng = np.random.default_rng(0)
    corpus = make_synthetic_corpus(workdir / "corpus", num_files, seconds)
    files = sorted(corpus.rglob("*.flac"))
    built, cache_dir = workdir / "built", str(workdir / "cache")
    steps = {
        "read every file's bytes (I/O floor)": timed(lambda: [path.read_bytes() for path in files])[0],
        BUILD_BASELINE: timed(lambda: generator_build(files, workdir / "generator", cache_dir))[0],
        "nes2net build_dataset (check + write shards)": timed(
            lambda: build_dataset("generic", corpus, built, progress=False)
        )[0],
    }
    load_seconds, stored = timed(lambda: load_built_dataset(built, "train", cache_dir=cache_dir))
    steps["nes2net load_built_dataset (Parquet -> Arrow)"] = load_seconds
    rows = [{"kind": "build", "step": name, "seconds": value, "files_per_second": len(files) / value,
             "vs_baseline": steps[BUILD_BASELINE] / value} for name, value in steps.items()]
    for num_samples in (64600, round(seconds * 16000) // 2):
        training = load_training_dataset(built, "train", num_samples=num_samples, cache_dir=cache_dir)
        rates = best_rates(reader_passes(files, training, stored, num_samples, rng), repeats)
        rows += [{"kind": "read", "reader": name, "crop_samples": num_samples, "samples_per_second": rate,
                  "files_per_second": rate / num_samples, "vs_baseline": rate / rates[READ_BASELINE]}
                 for name, rate in rates.items()]
    return rows, sum(path.stat().st_size for path in files)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="CPU only, no --device: it times building, decoding and cropping files, the data loader's CPU work.")
    parser.add_argument("--num-files", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("data.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    machine = machine_record("cpu", 1)
    with tempfile.TemporaryDirectory() as workdir:
        rows, corpus_bytes = measure(args.num_files, args.seconds, args.repeats, Path(workdir))
    for row in rows:
        print(row)
    write_results(args.output, "data", machine, rows, {"num_files": args.num_files, "seconds": args.seconds,
                                                       "corpus_bytes": corpus_bytes, "repeats": args.repeats})


if __name__ == "__main__":
    main()
