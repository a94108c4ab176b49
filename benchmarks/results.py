"""What every benchmark records next to its figures, and the `--device` option they share.

A result file is JSON: `{"benchmark", "command", "machine": {...}, "rows": [...]}`, where `machine` names the CPU,
its core count, the torch version, the device and intra-op threads, and the 1-minute load average before and after the
run (`os.getloadavg`), so a figure measured on a loaded machine says so. `benchmarks/render.py` turns the rows into
the README's tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run (default: cpu)")


def cuda_missing(device: str) -> bool:
    """True, after one line on stdout, when `device` is cuda and torch sees no CUDA device: the caller exits 0."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        print("skipped: --device cuda, but torch sees no CUDA device on this machine")
        return True
    return False


def train_on(device: str) -> None:
    """Make `nes2net train`'s Trainer train on `device`: Accelerate takes a visible GPU unless `ACCELERATE_USE_CPU`
    is set, and on CUDA `torch.use_deterministic_algorithms` (which the training benchmarks set) needs cuBLAS's fixed
    workspace. Call before the first `Accelerator` is made."""
    if device == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "true"
    else:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def synchronize(device: str) -> None:
    """Wait for `device`'s queued work, so a wall-clock timer around a forward measures the forward."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


@dataclass(frozen=True)
class Timing:
    """Median seconds of one call: `wall` (wall clock) and `cpu` (this process's CPU time, all its threads: less
    sensitive to other processes' load than the wall clock, though not immune to it)."""

    wall: float
    cpu: float


def alternating_medians(
    runs: dict[Any, tuple[Callable[[Any], Any], Any]], repeats: int, device: str = "cpu", warmup: int = 3
) -> dict[Any, Timing]:
    """The median `Timing` of `function(argument)` for each named run, the runs interleaved step by step so that load
    from other processes falls on all of them alike; `warmup` untimed steps first. On CUDA the device is synchronised
    before and after each call, so the timer measures the work, not its launch."""
    import torch

    walls: dict[Any, list[float]] = {name: [] for name in runs}
    cpus: dict[Any, list[float]] = {name: [] for name in runs}
    with torch.inference_mode():
        for step in range(warmup + repeats):
            for name, (function, argument) in runs.items():
                synchronize(device)
                start, start_cpu = time.perf_counter(), time.process_time()
                function(argument)
                synchronize(device)
                if step >= warmup:
                    walls[name].append(time.perf_counter() - start)
                    cpus[name].append(time.process_time() - start_cpu)
    return {name: Timing(statistics.median(walls[name]), statistics.median(cpus[name])) for name in runs}


def git_archive(revision: str, path: str, target: Path) -> None:
    """Extract `path` (a file or folder of this repository) as it was at git `revision` into `target`."""
    archive = subprocess.run(["git", "archive", revision, path], cwd=REPO_ROOT, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_record(device: str, threads: int) -> dict:
    """The run's context, with `load_before`; `write_results` adds `load_after`."""
    import torch

    return {
        "cpu": _cpu_name(),
        "cpu_cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
        "device": device,
        "threads": threads,
        "torch": torch.__version__,
        "load_before": round(os.getloadavg()[0], 2),
    }


def write_results(path: Path, benchmark: str, machine: dict, rows: list[dict], details: dict | None = None) -> dict:
    """Write the result file (`machine` gains `load_after`; `details`, what a benchmark measures besides its rows,
    are kept at the top level) and return its record; a folder is refused by name."""
    path = Path(path)
    if path.is_dir():
        raise SystemExit(f"--output: {path} is a folder, expected a .json file path")
    machine = machine | {"load_after": round(os.getloadavg()[0], 2)}
    record = {"benchmark": benchmark, "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
              "machine": machine, "rows": rows, **(details or {})}
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")
    return record
