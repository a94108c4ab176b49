"""The RawBoost reference (Tak et al., 2022) and the Nes2Net authors' algorithms 9-11, transcribed loop for loop.

The oracle `training.augment.RawBoost` is tested against (`tests/training/test_augment.py`) and the baseline of
`benchmarks/augment.py`: band filters designed one by one with `scipy.signal.firwin`, cascaded with `np.convolve`,
normalised with `scipy.signal.freqz`, applied with a zero-padded `lfilter`, and a Python loop over the powers of the
LnL sum. It differs from the reference only so that it runs on numpy 2 and makes the same random draws as `RawBoost`:
every draw comes from the `numpy.random.Generator` passed in, in the reference's order, and ISD positions use
`Generator.choice` (see the module docstring of `training.augment`).
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from training.augment import RawBoostConfig


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
