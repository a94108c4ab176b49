"""Benchmark: exact O(n log n) EER / minDCF / actDCF / CLLR against a per-threshold O(n^2) loop.

The baseline is the pattern of the authors' In-the-Wild scoring script: sort the scores, then for every
threshold count the misses and false alarms over all scores. It is run at sizes it can finish, with the same
EER rule, so both must agree exactly; the authors' own rule (linear interpolation at the first sign change of
P_fa - P_miss) is shown next to it for reference. Writes the rows, the machine and its load to `--output`
(default: `metrics.json` next to this script; `benchmarks/render.py` renders it into the README).
Run: `python benchmarks/metrics.py [--trials 1000000] [--loop-sizes 2000 10000 50000] [--output FILE]`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from benchmarks.results import machine_record, write_results  # noqa: E402
from training.metrics import compute_eer, compute_metrics  # noqa: E402


def loop_det_curve(bonafide: np.ndarray, spoof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P_miss, P_fa) at every sorted score, then reject-all: one pass over all scores per threshold."""
    miss_rates, false_alarm_rates = [], []
    for threshold in np.sort(np.concatenate((bonafide, spoof))):
        miss_rates.append(np.count_nonzero(bonafide < threshold) / bonafide.size)
        false_alarm_rates.append(np.count_nonzero(spoof >= threshold) / spoof.size)
    return np.array(miss_rates + [1.0]), np.array(false_alarm_rates + [0.0])


def loop_eer(bonafide: np.ndarray, spoof: np.ndarray) -> tuple[float, float]:
    """(EER with the ASVspoof rule, EER with the authors' interpolation) from the loop's curve."""
    miss, false_alarm = loop_det_curve(bonafide, spoof)
    index = np.argmin(np.abs(miss - false_alarm))
    asvspoof_rule = 0.5 * (miss[index] + false_alarm[index])
    difference = false_alarm - miss
    sign_changes = np.flatnonzero(np.diff(np.sign(difference)) != 0)
    if sign_changes.size == 0:
        return asvspoof_rule, asvspoof_rule
    i = sign_changes[0]
    weight = abs(difference[i]) / (abs(difference[i]) + abs(difference[i + 1]))
    return asvspoof_rule, miss[i] + weight * (miss[i + 1] - miss[i])


def trials(n_trials: int, seed: int, bonafide_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Bona fide logits ~ N(2, 1.2), spoof ~ N(-2, 1.5), as float32 like model outputs."""
    rng = np.random.default_rng(seed)
    n_bonafide = int(n_trials * bonafide_fraction)
    bonafide = rng.normal(2.0, 1.2, n_bonafide).astype(np.float32)
    spoof = rng.normal(-2.0, 1.5, n_trials - n_bonafide).astype(np.float32)
    return bonafide, spoof


def best_time(function: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def loop_rows(sizes: list[int], repeats: int) -> list[dict]:
    """One row per trial count: the loop's seconds (one run) against the vectorised EER's (best of `repeats`), and
    how far apart the two EERs are, same rule and the authors' interpolation."""
    rows = []
    for size in sizes:
        bonafide, spoof = trials(size, seed=size)
        start = time.perf_counter()
        loop_value, interpolated = loop_eer(bonafide, spoof)
        loop_seconds = time.perf_counter() - start
        vectorised_seconds = best_time(lambda: compute_eer(bonafide, spoof), repeats)
        rows.append({"trials": size, "loop_s": loop_seconds, "vectorised_s": vectorised_seconds,
                     "speedup": loop_seconds / vectorised_seconds,
                     "eer_difference": abs(compute_eer(bonafide, spoof).eer - loop_value),
                     "interpolation_difference": abs(loop_value - interpolated)})
    return rows


def large_run(n_trials: int, repeats: int) -> dict:
    """Best-of-`repeats` seconds of the vectorised EER alone and of all four metrics on `n_trials` trials."""
    bonafide, spoof = trials(n_trials, seed=0)
    scores = np.concatenate((bonafide, spoof))
    labels = np.r_[np.ones(bonafide.size, np.int64), np.zeros(spoof.size, np.int64)]
    return {"trials": n_trials, "repeats": repeats,
            "eer_s": best_time(lambda: compute_eer(bonafide, spoof), repeats),
            "all_metrics_s": best_time(lambda: compute_metrics(scores, labels), repeats),
            "metrics": {name: float(value) for name, value in compute_metrics(scores, labels).items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="CPU only, no --device: the metrics are numpy on score arrays; no model runs.")
    parser.add_argument("--trials", type=int, default=1_000_000, help="trials for the large vectorised run")
    parser.add_argument("--loop-sizes", type=int, nargs="+", default=[2_000, 10_000, 50_000, 100_000, 200_000])
    parser.add_argument("--repeats", type=int, default=5, help="best of this many runs for the vectorised code")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("metrics.json"))
    args = parser.parse_args(argv)
    machine = machine_record("cpu", 1) | {"numpy": np.__version__}
    rows = loop_rows(args.loop_sizes, args.repeats)
    large = large_run(args.trials, args.repeats)
    print("| trials | loop s | vectorised EER s | speed-up | |dEER| same rule | |dEER| vs authors' interpolation |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['trials']:,} | {row['loop_s']:.3f} | {row['vectorised_s']:.5f} | {row['speedup']:.0f}x | "
              f"{row['eer_difference']:.2e} | {row['interpolation_difference']:.2e} |")
    metrics = ", ".join(f"{name} {value:.4f}" for name, value in large["metrics"].items())
    print(f"\n{args.trials:,} trials: EER {large['eer_s']:.3f} s, EER + minDCF + actDCF + CLLR "
          f"{large['all_metrics_s']:.3f} s; {metrics}")
    write_results(args.output, "metrics", machine, rows, {"large": large})


if __name__ == "__main__":
    main()
