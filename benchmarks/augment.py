"""RawBoost throughput: `training.augment.RawBoost` against a direct transcription of the reference code.

The baseline, `ReferenceRawBoost`, follows the structure of the RawBoost reference (Tak et al., 2022) and the
Nes2Net authors' algorithms 9-11 step by step: band filters designed one by one with `scipy.signal.firwin`,
cascaded with `np.convolve`, normalised with `scipy.signal.freqz`, applied with a zero-padded `lfilter`, and a
Python loop over the powers of the LnL sum. It differs from the reference only so that it runs on numpy 2 and
makes the same random draws as `RawBoost`: every draw comes from the `numpy.random.Generator` passed in, in the
reference's order, and ISD positions use `Generator.choice` (see the module docstring of `training.augment`).
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
import scipy.signal
import scipy.stats

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # threadpoolctl comes with scikit-learn (the dev extra)
    threadpool_limits = None

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.augment import RawBoost, RawBoostConfig  # noqa: E402

SAMPLE_RATE = 16_000


class ReferenceRawBoost:
    """The reference RawBoost algorithm `algorithm` (0-11), transcribed loop for loop; same call as `RawBoost`."""

    def __init__(self, config: RawBoostConfig | None = None, algorithm: int = 4) -> None:
        self.config = config or RawBoostConfig()
        self.algorithm = algorithm

    def __call__(self, waveform: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        x = np.asarray(waveform, dtype=np.float64)
        c = self.config
        lnl = lambda signal: self.linear_nonlinear_noise(signal, sample_rate, rng)  # noqa: E731
        isd = lambda signal: self.impulsive_noise(signal, rng)  # noqa: E731
        ssi = lambda signal: self.stationary_noise(signal, sample_rate, rng)  # noqa: E731
        if self.algorithm == 1:
            x = lnl(x)
        elif self.algorithm == 2:
            x = isd(x)
        elif self.algorithm == 3:
            x = ssi(x)
        elif self.algorithm == 4:
            x = ssi(isd(lnl(x)))
        elif self.algorithm == 5:
            x = isd(lnl(x))
        elif self.algorithm == 6:
            x = ssi(lnl(x))
        elif self.algorithm == 7:
            x = ssi(isd(x))
        elif self.algorithm == 8:
            first = lnl(x)
            second = isd(x)
            x = normalise(first + second, always=False)
        elif self.algorithm == 9:
            first = lnl(x)
            second = isd(x)
            third = ssi(x)
            x = normalise(first + second + third, always=False)
        elif self.algorithm == 10:
            use_lnl = rng.random() < c.lnl_probability
            use_isd = rng.random() < c.isd_probability
            if use_lnl and use_isd:
                first = lnl(x)
                second = isd(x)
                x = normalise(first + second, always=False)
            elif use_lnl:
                x = lnl(x)
            elif use_isd:
                x = isd(x)
        elif self.algorithm == 11:
            use_lnl = rng.random() < c.lnl_probability
            use_isd = rng.random() < c.isd_probability
            use_ssi = rng.random() < c.ssi_probability
            if use_lnl:
                x = lnl(x)
            if use_isd:
                x = isd(x)
            if use_ssi:
                x = ssi(x)
        return x.astype(np.float32)

    def notch_filter(self, sample_rate: int, min_gain: float, max_gain: float, rng: np.random.Generator):
        c = self.config
        taps_so_far = np.ones(1)
        for _ in range(c.num_bands):
            centre = uniform(rng, c.min_centre_hz, c.max_centre_hz)
            width = uniform(rng, c.min_bandwidth_hz, c.max_bandwidth_hz)
            taps = int(uniform(rng, c.min_taps, c.max_taps))
            if taps % 2 == 0:
                taps += 1
            low = centre - width / 2
            high = centre + width / 2
            if low <= 0:
                low = 1 / 1000
            if high >= sample_rate / 2:
                high = sample_rate / 2 - 1 / 1000
            band = scipy.signal.firwin(taps, [low, high], window="hamming", fs=sample_rate)
            taps_so_far = np.convolve(band, taps_so_far)
        gain = uniform(rng, min_gain, max_gain)
        _, response = scipy.signal.freqz(taps_so_far, 1, fs=sample_rate)
        return 10 ** (gain / 20) * taps_so_far / np.max(np.abs(response))

    def linear_nonlinear_noise(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        min_gain, max_gain = c.min_gain_db, c.max_gain_db
        y = np.zeros(x.shape[0])
        for power in range(c.lnl_order):
            if power == 1:
                min_gain = min_gain - c.min_nonlinear_bias_db
                max_gain = max_gain - c.max_nonlinear_bias_db
            taps = self.notch_filter(sample_rate, min_gain, max_gain, rng)
            y = y + filter_fir(np.power(x, power + 1), taps)
        y = y - np.mean(y)
        return normalise(y, always=False)

    def impulsive_noise(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        percent = uniform(rng, 0, self.config.isd_max_percent)
        y = x.copy()
        count = int(x.shape[0] * (percent / 100))
        positions = rng.choice(x.shape[0], count, replace=False)
        factors = (2 * rng.random(count) - 1) * (2 * rng.random(count) - 1)
        y[positions] = x[positions] + self.config.isd_gain * x[positions] * factors
        return normalise(y, always=False)

    def stationary_noise(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        noise = rng.normal(0, 1, x.shape[0])
        taps = self.notch_filter(sample_rate, c.min_gain_db, c.max_gain_db, rng)
        noise = filter_fir(noise, taps)
        noise = normalise(noise, always=True)
        snr = uniform(rng, c.snr_min_db, c.snr_max_db)
        noise = noise / np.linalg.norm(noise, 2) * np.linalg.norm(x, 2) / 10.0 ** (0.05 * snr)
        return x + noise


def uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """One `U(low, high)` draw that, like the reference's `np.random.uniform`, accepts `low > high`."""
    return low + (high - low) * rng.random()


def normalise(x: np.ndarray, always: bool) -> np.ndarray:
    peak = np.max(np.abs(x))
    if always or peak > 1:
        return x / peak
    return x


def filter_fir(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    pad = taps.shape[0] + 1
    y = scipy.signal.lfilter(taps, 1, np.pad(x, (0, pad), "constant"))
    return y[pad // 2 : y.shape[0] - pad // 2]


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
