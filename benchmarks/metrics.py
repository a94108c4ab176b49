"""Benchmark: exact O(n log n) EER / minDCF / actDCF / CLLR against a per-threshold O(n^2) loop.

The baseline is the pattern of the authors' In-the-Wild scoring script: sort the scores, then for every
threshold count the misses and false alarms over all scores. It is run at sizes it can finish, with the same
EER rule, so both must agree exactly; the authors' own rule (linear interpolation at the first sign change of
P_fa - P_miss) is shown next to it for reference. Run: `python benchmarks/metrics.py [--trials 1000000]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from training.metrics import compute_eer, compute_metrics


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1_000_000, help="trials for the large vectorised run")
    parser.add_argument("--loop-sizes", type=int, nargs="+", default=[2_000, 10_000, 50_000, 100_000, 200_000])
    parser.add_argument("--repeats", type=int, default=5, help="best of this many runs for the vectorised code")
    args = parser.parse_args()

    print(f"numpy {np.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPU(s) {platform.machine()}")
    print("\nExact EER: per-threshold loop (baseline) vs vectorised, same trials, 10% bona fide")
    header = (
        f"{'trials':>9} | {'loop EER s':>10} | {'vectorised EER s':>16} | {'speed-up':>9} | "
        f"{'max |dEER| same rule':>20} | {'|dEER| vs authors interp.':>25}"
    )
    print(header)
    print("-" * len(header))
    max_difference = 0.0
    for size in args.loop_sizes:
        bonafide, spoof = trials(size, seed=size)
        start = time.perf_counter()
        loop_value, interpolated = loop_eer(bonafide, spoof)
        loop_seconds = time.perf_counter() - start
        vectorised_seconds = best_time(lambda: compute_eer(bonafide, spoof), args.repeats)
        difference = abs(compute_eer(bonafide, spoof).eer - loop_value)
        max_difference = max(max_difference, difference)
        print(
            f"{size:>9,} | {loop_seconds:>10.3f} | {vectorised_seconds:>16.5f} | "
            f"{loop_seconds / vectorised_seconds:>8.0f}x | {difference:>20.2e} | "
            f"{abs(loop_value - interpolated):>25.2e}"
        )
    print(f"max |EER difference| between the loop and the vectorised code: {max_difference:.2e}")
    largest = args.loop_sizes[-1]
    extrapolated = loop_seconds * (args.trials / largest) ** 2
    print(f"(the loop on {args.trials:,} trials: ~{extrapolated / 60:.0f} min, n^2 extrapolated from {largest:,})")

    bonafide, spoof = trials(args.trials, seed=0)
    scores = np.concatenate((bonafide, spoof))
    labels = np.r_[np.ones(bonafide.size, np.int64), np.zeros(spoof.size, np.int64)]
    eer_seconds = best_time(lambda: compute_eer(bonafide, spoof), args.repeats)
    all_seconds = best_time(lambda: compute_metrics(scores, labels), args.repeats)
    metrics = compute_metrics(scores, labels)
    print(f"\nVectorised on {args.trials:,} trials (best of {args.repeats})")
    print(f"{'metrics':>34} | {'seconds':>8}")
    print("-" * 45)
    print(f"{'EER':>34} | {eer_seconds:>8.3f}")
    print(f"{'EER + minDCF + actDCF + CLLR':>34} | {all_seconds:>8.3f}")
    print("  " + ", ".join(f"{name} {value:.4f}" for name, value in metrics.items()))


if __name__ == "__main__":
    main()
