"""RawBoost throughput: `training.augmentation.rawboost.RawBoost` against the authors' code, in seconds of audio
processed per second of wall time.

The authors' code runs only with numpy < 2, so it is timed in its own interpreter: `--authors FOLDER` holds their
`RawBoost.py` and `process_rawboost.py` (assembled as `tests/training/golden/README.md` says) and `--authors-python`
is a Python with numpy < 2 and scipy. Without them only the package is timed. Faithfulness is not measured here:
`tests/training/test_rawboost.py` compares the output with the authors' for the same seeds.

Writes the rows, the machine and its load to `--output` (default: `rawboost.json` next to this script;
`benchmarks/render.py` renders it into the README); the authors' columns are null when their code was not run.

Run: `python benchmarks/rawboost.py [--clips 20] [--repeats 3] [--authors DIR --authors-python PYTHON] [--output FILE]`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import machine_record, write_results  # noqa: E402
from modeling_nes2net.examples import speech_like  # noqa: E402
from training.augmentation.rawboost import RawBoost  # noqa: E402

SAMPLE_RATE = 16_000
ALGORITHMS = (2, 3, 4, 8)
GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "training" / "golden"

# Run by the authors' interpreter: times their process_Rawboost_feature with their defaults, one line per algorithm.
AUTHORS_TIMER = """
import sys, time, types
import numpy as np
authors, golden, clips_file, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path[:0] = [authors, golden]
import process_rawboost
from make_rawboost_reference import DEFAULTS
clips = np.load(clips_file)
for algorithm in map(int, sys.argv[5:]):
    best = float("inf")
    for repeat in range(repeats):
        start = time.perf_counter()
        for index, clip in enumerate(clips):
            np.random.seed(index)
            process_rawboost.process_Rawboost_feature(clip.copy(), 16000, types.SimpleNamespace(**DEFAULTS), algorithm)
        best = min(best, time.perf_counter() - start)
    print(clips.size / 16000 / best)
"""


def throughput(augment: RawBoost, clips: np.ndarray, repeats: int) -> float:
    """Best-of-`repeats` seconds of audio processed per second of wall time; `clips` `(count, samples)`."""
    best = float("inf")
    for repeat in range(repeats):
        start = time.perf_counter()
        for index, clip in enumerate(clips):
            augment(clip, SAMPLE_RATE, np.random.default_rng([repeat, index]))
        best = min(best, time.perf_counter() - start)
    return clips.size / SAMPLE_RATE / best


def authors_throughput(authors: str, python: str, clips: np.ndarray, repeats: int) -> list[float]:
    """`throughput` of the authors' code for each of `ALGORITHMS`, timed in the interpreter `python`."""
    with tempfile.TemporaryDirectory(prefix="nes2net-rawboost.") as folder:
        clips_file = str(Path(folder) / "clips.npy")
        np.save(clips_file, clips)
        command = [python, "-c", AUTHORS_TIMER, authors, str(GOLDEN), clips_file, str(repeats), *map(str, ALGORITHMS)]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return [float(line) for line in output.split()]


def measure(clips: np.ndarray, repeats: int, authors: str | None, authors_python: str | None) -> list[dict]:
    """One row per algorithm: the package's throughput and, when the authors' code is given, theirs and the ratio."""
    ours = [throughput(RawBoost(algorithm=algorithm), clips, repeats) for algorithm in ALGORITHMS]
    theirs = authors_throughput(authors, authors_python, clips, repeats) if authors else [None] * len(ALGORITHMS)
    return [{"algorithm": algorithm, "audio_seconds_per_second": mine, "authors_audio_seconds_per_second": their,
             "speedup": mine / their if their else None}
            for algorithm, mine, their in zip(ALGORITHMS, ours, theirs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="CPU only, no --device: RawBoost is numpy / scipy filtering, run in the CPU data loader when training.")
    parser.add_argument("--clips", type=int, default=20, help="clips per timing run")
    parser.add_argument("--repeats", type=int, default=3, help="timing runs; the best is reported")
    parser.add_argument("--seconds", type=float, default=4.0, help="clip length in seconds")
    parser.add_argument("--authors", help="folder with the authors' RawBoost.py and process_rawboost.py")
    parser.add_argument("--authors-python", help="a Python with numpy < 2 and scipy, to run the authors' code")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("rawboost.json"))
    args = parser.parse_args(argv)
    if bool(args.authors) != bool(args.authors_python):
        parser.error("--authors and --authors-python go together")

    machine = machine_record("cpu", 1) | {"numpy": np.__version__}
    clips = np.stack([speech_like(args.seconds, SAMPLE_RATE, seed=index) for index in range(args.clips)])
    rows = measure(clips, args.repeats, args.authors, args.authors_python)
    print(f"RawBoost on {args.clips} clips of {args.seconds:g} s at {SAMPLE_RATE} Hz, best of {args.repeats}")
    for row in rows:
        print(row)
    write_results(args.output, "rawboost", machine, rows,
                  {"clips": args.clips, "seconds": args.seconds, "repeats": args.repeats})
    return 0


if __name__ == "__main__":
    sys.exit(main())
