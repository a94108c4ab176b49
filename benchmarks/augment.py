"""RawBoost throughput: `training.augment.RawBoost` against a direct transcription of the reference code.

The baseline, `tests.oracles.rawboost.ReferenceRawBoost`, follows the structure of the RawBoost reference (Tak et
al., 2022) and the Nes2Net authors' algorithms 9-11 step by step, making the same random draws as `RawBoost`.
With the same seed both produce the same output up to float64 rounding; the benchmark checks that, and checks
with independent seeds that the output distributions agree (two-sample Kolmogorov-Smirnov tests).

Run: `python benchmarks/augment.py [--clips 20] [--repeats 3]`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import scipy.stats

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # threadpoolctl comes with scikit-learn (the dev extra)
    threadpool_limits = None

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.oracles.rawboost import ReferenceRawBoost  # noqa: E402
from training.augment import RawBoost  # noqa: E402

SAMPLE_RATE = 16_000


def speech_like_clips(count: int, seconds: float, seed: int = 0) -> list[np.ndarray]:
    """Deterministic test clips: a syllable-rate modulated harmonic tone plus noise, peak 0.8."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    clips = []
    for _ in range(count):
        pitch = rng.uniform(90, 250)
        voiced = sum(np.sin(2 * np.pi * k * pitch * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 15))
        envelope = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(3, 6) * t))
        clip = envelope * voiced + 0.05 * rng.standard_normal(t.size)
        clips.append(0.8 * clip / np.abs(clip).max())
    return clips


def throughput(augment, clips: list[np.ndarray], repeats: int) -> float:
    """Best-of-`repeats` seconds of audio processed per second of wall time."""
    audio_seconds = sum(clip.size for clip in clips) / SAMPLE_RATE
    best = float("inf")
    for repeat in range(repeats):
        start = time.perf_counter()
        for index, clip in enumerate(clips):
            augment(clip, SAMPLE_RATE, np.random.default_rng([repeat, index]))
        best = min(best, time.perf_counter() - start)
    return audio_seconds / best


def max_difference_same_draws(algorithm: int, clips: list[np.ndarray]) -> float:
    """Largest |RawBoost - reference| over the clips, both fed the same seed per clip."""
    fast, reference = RawBoost(algorithm=algorithm), ReferenceRawBoost(algorithm=algorithm)
    differences = [
        fast(clip, SAMPLE_RATE, np.random.default_rng(seed)) - reference(clip, SAMPLE_RATE, np.random.default_rng(seed))
        for seed, clip in enumerate(clips)
    ]
    return max(float(np.abs(difference).max()) for difference in differences)


def distribution_p_value(algorithm: int, clips: list[np.ndarray]) -> float:
    """KS-test p-value that the distortion level `10 log10(|x|^2 / |y - x|^2)` of the two implementations,
    run with independent seeds, comes from one distribution."""

    def levels(augment, seed_offset: int) -> list[float]:
        out = []
        for index, clip in enumerate(clips):
            y = augment(clip, SAMPLE_RATE, np.random.default_rng(seed_offset + index))
            out.append(10 * np.log10(np.sum(clip**2) / np.sum((y - clip) ** 2)))
        return out

    fast = levels(RawBoost(algorithm=algorithm), 10_000)
    reference = levels(ReferenceRawBoost(algorithm=algorithm), 20_000)
    return float(scipy.stats.ks_2samp(fast, reference).pvalue)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20, help="4 s clips per timing run")
    parser.add_argument("--repeats", type=int, default=3, help="timing runs; the best is reported")
    parser.add_argument("--seconds", type=float, default=4.0, help="clip length in seconds")
    parser.add_argument("--stat-clips", type=int, default=40, help="clips per side in the distribution test")
    args = parser.parse_args(argv)

    clips = speech_like_clips(args.clips, args.seconds)
    # One BLAS thread for both sides: the reference's np.linalg.norm otherwise pays for waking BLAS threads,
    # which on a busy machine costs milliseconds per call and would flatter the speed-up.
    def single_blas():
        return threadpool_limits(limits=1, user_api="blas") if threadpool_limits else contextlib.nullcontext()

    blas_note = "1 BLAS thread" if threadpool_limits else "default BLAS threads (threadpoolctl missing)"
    clip_note = f"{args.clips} clips of {args.seconds:g} s at {SAMPLE_RATE} Hz"
    print(f"RawBoost on {clip_note}, best of {args.repeats}, {blas_note}")
    print("| algorithm | reference (s audio / s) | nes2net (s audio / s) | speed-up | max abs diff, same draws |")
    print("|---|---|---|---|---|")
    for algorithm in (4, 8):
        with single_blas():
            reference = throughput(ReferenceRawBoost(algorithm=algorithm), clips, args.repeats)
            fast = throughput(RawBoost(algorithm=algorithm), clips, args.repeats)
        difference = max_difference_same_draws(algorithm, clips)
        print(f"| {algorithm} | {reference:.0f} | {fast:.0f} | {fast / reference:.1f}x | {difference:.1e} |")

    print()
    print("Agreement: same seed -> same draws in both; independent seeds -> KS test on the distortion level")
    print("| algorithm | max abs diff, same draws | KS p-value, independent draws |")
    print("|---|---|---|")
    short_clips = speech_like_clips(6, 1.0, seed=1)
    stat_clips = speech_like_clips(args.stat_clips, 1.0, seed=2)
    worst = 0.0
    for algorithm in range(12):
        difference = max_difference_same_draws(algorithm, short_clips)
        worst = max(worst, difference)
        p_value = f"{distribution_p_value(algorithm, stat_clips):.2f}" if algorithm in (1, 2, 3, 4, 8) else "-"
        print(f"| {algorithm} | {difference:.1e} | {p_value} |")
    print(f"all algorithms agree with the reference to {worst:.1e} ({'ok' if worst < 1e-5 else 'MISMATCH'})")
    return 0 if worst < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
