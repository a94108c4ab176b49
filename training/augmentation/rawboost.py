"""RawBoost (Tak et al., ICASSP 2022, "RawBoost: A Raw Data Boosting and Augmentation Method applied to Automatic
Speaker Verification Anti-Spoofing"): the authors' algorithms 0-8 and the Nes2Net authors' algorithms 9-11.

With the same random numbers the output is the authors' to float32 rounding: every draw is the authors' call, in their
order, on a legacy `numpy.random.RandomState` view of the generator passed in (which shares its state), so a
`Generator(MT19937)` in the state `numpy.random.seed(s)` leaves reproduces the authors' code run after
`numpy.random.seed(s)` (tests/training/golden holds their outputs). It differs from the authors' code only where
listed here:

- Their code fails on numpy 2 (checked on 2.4: `int()` / `float()` of its shape-(1,) draws raise `TypeError`); this
  version only ever converts scalars.
- All draws come from the generator passed in, instead of numpy's and Python's global generators. The gates of
  algorithms 10 and 11 (Python's `random` in the Nes2Net authors' code) are that generator's first draws, and a stage
  runs when its draw is `< probability` (their algorithm 10 uses `<=`).
- Filters are designed in closed form (a Hamming-windowed band-stop sinc, identical to
  `scipy.signal.firwin(taps, [f1, f2], window="hamming", fs=fs)`), cascaded and gain-normalised in the frequency
  domain (the peak |H| is taken on `scipy.signal.freqz`'s default 512-point grid, as theirs), and applied by FFT
  overlap-add, the LnL terms summed in the frequency domain. Results equal their `lfilter` path to float64 rounding.
- Inputs are processed in float64 (theirs keeps float32 inputs in float32 until filtering).
- Their quirks are kept on purpose, for fidelity: the filter delay compensation advances the output by one sample
  more than the group delay; SSI normalises its noise to a unit peak before scaling it to the drawn SNR (a no-op,
  skipped here) and never renormalises its output, so algorithms 3, 4, 6, 7 and 11 can return peaks above 1; LnL, ISD
  and the parallel algorithms divide by the peak only when it exceeds 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.fft

from training.augmentation.waveform import add_at_snr, as_waveform

# scipy.signal.freqz's default grid: 512 frequencies from 0 to just below Nyquist, i.e. the first 512 bins
# of a 1024-point DFT. The authors normalise every RawBoost filter by its peak magnitude on this grid.
_FREQZ_DFT_SIZE = 1024
# Edge clipping of the authors' filter design: band edges stay this many Hz inside (0, sample_rate / 2).
_EDGE_MARGIN_HZ = 1e-3


def _normalise_if_clipping(x: np.ndarray) -> np.ndarray:
    """Divides `x` by its peak magnitude when that peak exceeds 1."""
    peak = np.abs(x).max()
    return x / peak if peak > 1 else x


@dataclass
class RawBoostConfig:
    """Parameters of RawBoost; the defaults are the authors' (their argument names in brackets).

    Args:
        lnl_order (`int`, defaults to 5) [N_f]: highest power of the signal in the LnL (linear and non-linear
            convolutive noise) sum; 1 keeps only the linear term.
        num_bands (`int`, defaults to 5) [nBands]: notch filters cascaded in every random filter.
        min_centre_hz, max_centre_hz (`float`, defaults to 20 and 8000) [minF, maxF]: range of notch centres.
        min_bandwidth_hz, max_bandwidth_hz (`float`, defaults to 100 and 1000) [minBW, maxBW]: range of notch widths.
        min_taps, max_taps (`int`, defaults to 10 and 100) [minCoeff, maxCoeff]: range of notch filter lengths,
            made odd by adding one to an even draw.
        min_gain_db, max_gain_db (`float`, defaults to 0 and 0) [minG, maxG]: gain range of the linear LnL term
            and of the SSI noise filter.
        min_nonlinear_bias_db, max_nonlinear_bias_db (`float`, defaults to 5 and 20) [minBiasLinNonLin,
            maxBiasLinNonLin]: the non-linear LnL terms draw their gain from
            `U(min_gain_db - min_nonlinear_bias_db, max_gain_db - max_nonlinear_bias_db)`.
        isd_max_percent (`float`, defaults to 10) [P]: ISD (impulsive signal-dependent noise) alters a random
            `U(0, isd_max_percent)` percent of the samples.
        isd_gain (`float`, defaults to 2) [g_sd]: ISD impulse gain; an altered sample becomes
            `x * (1 + isd_gain * u1 * u2)` with `u1, u2 ~ U(-1, 1)`.
        snr_min_db, snr_max_db (`float`, defaults to 10 and 40) [SNRmin, SNRmax]: SNR range of the SSI
            (stationary signal-independent) coloured noise.
        lnl_probability, isd_probability, ssi_probability (`float`, defaults to 1) [LnL_ratio, ISD_ratio,
            SSI_ratio]: chance that algorithms 10 and 11 run each stage.
    """

    lnl_order: int = 5
    num_bands: int = 5
    min_centre_hz: float = 20.0
    max_centre_hz: float = 8000.0
    min_bandwidth_hz: float = 100.0
    max_bandwidth_hz: float = 1000.0
    min_taps: int = 10
    max_taps: int = 100
    min_gain_db: float = 0.0
    max_gain_db: float = 0.0
    min_nonlinear_bias_db: float = 5.0
    max_nonlinear_bias_db: float = 20.0
    isd_max_percent: float = 10.0
    isd_gain: float = 2.0
    snr_min_db: float = 10.0
    snr_max_db: float = 40.0
    lnl_probability: float = 1.0
    isd_probability: float = 1.0
    ssi_probability: float = 1.0

    def __post_init__(self) -> None:
        checks = {
            "lnl_order must be >= 1": self.lnl_order >= 1,
            "num_bands must be >= 1": self.num_bands >= 1,
            "need 0 <= min_centre_hz <= max_centre_hz": 0 <= self.min_centre_hz <= self.max_centre_hz,
            "need 0 < min_bandwidth_hz <= max_bandwidth_hz": 0 < self.min_bandwidth_hz <= self.max_bandwidth_hz,
            "need 2 <= min_taps <= max_taps": 2 <= self.min_taps <= self.max_taps,
            "isd_max_percent must lie in [0, 100]": 0 <= self.isd_max_percent <= 100,
            "need snr_min_db <= snr_max_db": self.snr_min_db <= self.snr_max_db,
        }
        for name in ("lnl_probability", "isd_probability", "ssi_probability"):
            checks[f"{name} must lie in [0, 1]"] = 0 <= getattr(self, name) <= 1
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid RawBoostConfig: {'; '.join(failed)}")


class _Recipe(NamedTuple):
    stages: tuple[str, ...]
    parallel: bool = False  # sum the stages' outputs on the same input, then normalise if clipping
    gated: bool = False  # run each stage only with its configured probability


RAWBOOST_ALGORITHMS: dict[int, _Recipe] = {
    0: _Recipe(()),
    1: _Recipe(("lnl",)),
    2: _Recipe(("isd",)),
    3: _Recipe(("ssi",)),
    4: _Recipe(("lnl", "isd", "ssi")),
    5: _Recipe(("lnl", "isd")),
    6: _Recipe(("lnl", "ssi")),
    7: _Recipe(("isd", "ssi")),
    8: _Recipe(("lnl", "isd"), parallel=True),
    9: _Recipe(("lnl", "isd", "ssi"), parallel=True),
    10: _Recipe(("lnl", "isd"), parallel=True, gated=True),
    11: _Recipe(("lnl", "isd", "ssi"), gated=True),
}
"""Algorithm number -> stages: 0 none, 1 LnL, 2 ISD, 3 SSI, 4-7 in series (1+2+3, 1+2, 1+3, 2+3), 8 and 9 in
parallel (1||2, 1||2||3), 10 = 8 and 11 = 4 with every stage run only with its configured probability."""


def _random_notch_filters(
    draws: np.random.RandomState,
    config: RawBoostConfig,
    sample_rate: int,
    gain_ranges_db: np.ndarray,
    normalise_gain: bool = True,
) -> np.ndarray:
    """Draws one random cascade of `config.num_bands` band-stop FIR filters per row of `gain_ranges_db`.

    Draw order per filter, as the authors': (centre, width, taps) for each band, then the gain.

    Args:
        gain_ranges_db: `(num_filters, 2)` low and high end of each filter's uniform gain draw.
        normalise_gain: scale each cascade to a peak |H| of `10 ** (gain / 20)`; when False the gain is drawn
            (to keep the random stream) but not applied.

    Returns:
        `(num_filters, filter_length)` linear-phase taps, zero-padded symmetrically to a common odd length,
        which leaves each filter's centre at `(filter_length - 1) / 2`.
    """
    num_filters, num_bands = len(gain_ranges_db), config.num_bands
    uniforms = draws.random_sample((num_filters, 3 * num_bands + 1))
    band_draws = uniforms[:, :-1].reshape(num_filters, num_bands, 3)
    # `low + (high - low) * u` is exactly what the authors' `np.random.uniform(low, high)` computes from the same
    # double, one draw at a time in this order.
    centre = config.min_centre_hz + (config.max_centre_hz - config.min_centre_hz) * band_draws[..., 0]
    width = config.min_bandwidth_hz + (config.max_bandwidth_hz - config.min_bandwidth_hz) * band_draws[..., 1]
    taps = np.floor(config.min_taps + (config.max_taps - config.min_taps) * band_draws[..., 2]).astype(np.int64)
    taps |= 1
    gain_db = gain_ranges_db[:, 0] + (gain_ranges_db[:, 1] - gain_ranges_db[:, 0]) * uniforms[:, -1]

    nyquist = sample_rate / 2
    low_edge = centre - width / 2
    high_edge = centre + width / 2
    low_edge = np.where(low_edge <= 0, _EDGE_MARGIN_HZ, low_edge)[..., None] / nyquist
    high_edge = np.where(high_edge >= nyquist, nyquist - _EDGE_MARGIN_HZ, high_edge)[..., None] / nyquist

    # Hamming-windowed ideal band-stop (all-pass minus band-pass), scaled to unit gain at DC like firwin.
    longest = int(taps.max())
    offsets = np.arange(longest) - (longest - 1) / 2
    half_length = ((taps - 1) / 2)[..., None]
    ideal = np.sinc(offsets) - high_edge * np.sinc(high_edge * offsets) + low_edge * np.sinc(low_edge * offsets)
    window = 0.54 + 0.46 * np.cos(np.pi * offsets / half_length)
    bands = np.where(np.abs(offsets) <= half_length, ideal * window, 0.0)
    bands /= bands.sum(axis=-1, keepdims=True)

    cascade_length = num_bands * (longest - 1) + 1
    dft_size = _FREQZ_DFT_SIZE * math.ceil(cascade_length / _FREQZ_DFT_SIZE)
    response = np.prod(scipy.fft.rfft(bands, dft_size, axis=-1), axis=1)
    cascades = scipy.fft.irfft(response, dft_size, axis=-1)[:, :cascade_length]
    if normalise_gain:
        stride = dft_size // _FREQZ_DFT_SIZE
        peak = np.abs(response[:, : dft_size // 2 : stride]).max(axis=-1)
        cascades *= (10.0 ** (gain_db / 20) / peak)[:, None]
    return cascades


def _filter_powers(x: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """`sum_j filters[j] * x ** (j + 1)` (`*` is convolution) with the authors' delay compensation.

    Overlap-add on blocks about four times the filter length: each power of the signal is formed block by block
    in place, transformed once, and accumulated in the frequency domain, so the cost is one forward transform
    per power and one inverse transform in all, with small working arrays.

    Args:
        x: `(samples,)`.
        filters: `(num_powers, filter_length)` with an odd `filter_length`.

    Returns:
        `(samples,)`: samples `(filter_length + 1) / 2` onwards of the full convolution sum, which is where the
        authors' zero-padded `lfilter` output starts (one sample past the group delay).
    """
    length = x.size
    filter_length = filters.shape[1]
    full_length = length + filter_length - 1
    dft_size = min(scipy.fft.next_fast_len(full_length, real=True), max(256, 1 << (4 * filter_length).bit_length()))
    block = dft_size - filter_length + 1
    num_blocks = -(-length // block)
    padded = np.zeros(num_blocks * block)
    padded[:length] = x
    base = np.zeros((num_blocks, dft_size))
    base[:, :block] = padded.reshape(num_blocks, block)
    filter_spectra = scipy.fft.rfft(filters, dft_size, axis=-1)
    power = base.copy()
    spectrum = scipy.fft.rfft(power, axis=-1)
    spectrum *= filter_spectra[0]
    for filter_spectrum in filter_spectra[1:]:
        power *= base
        term = scipy.fft.rfft(power, axis=-1)
        term *= filter_spectrum
        spectrum += term
    blocks = scipy.fft.irfft(spectrum, dft_size, axis=-1)
    if num_blocks == 1:
        output = blocks[0]
    else:
        output = np.zeros((num_blocks + 1) * block)
        output[: num_blocks * block] = blocks[:, :block].ravel()
        output[block:].reshape(num_blocks, block)[:, : filter_length - 1] += blocks[:, block:]
    start = (filter_length + 1) // 2
    return output[start : start + length]


class RawBoost:
    """One RawBoost algorithm (0-11, see `RAWBOOST_ALGORITHMS`) as an `Augmentation`.

    Example:
        >>> augment = RawBoost(RawBoostConfig(), algorithm=4)
        >>> noisy = augment(waveform, 16000, np.random.default_rng(0))  # float32, shape (samples,)
    """

    def __init__(self, config: RawBoostConfig | None = None, algorithm: int = 4) -> None:
        if algorithm not in RAWBOOST_ALGORITHMS:
            raise ValueError(f"RawBoost algorithm must be one of 0-11, got {algorithm!r}")
        self.config = config or RawBoostConfig()
        self.algorithm = algorithm
        self._recipe = RAWBOOST_ALGORITHMS[algorithm]
        self._stage_probability = {
            "lnl": self.config.lnl_probability,
            "isd": self.config.isd_probability,
            "ssi": self.config.ssi_probability,
        }

    def __repr__(self) -> str:
        return f"RawBoost(algorithm={self.algorithm}, config={self.config})"

    def __call__(self, waveform: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """Augments `waveform` of shape (samples,); returns float32 of shape (samples,)."""
        x = as_waveform(waveform)
        self._check_sample_rate(sample_rate)
        draws = np.random.RandomState(rng.bit_generator)  # the authors' draw calls, advancing `rng` itself
        stages = self._recipe.stages
        if self._recipe.gated:
            gates = draws.random_sample(len(stages))
            stages = tuple(stage for stage, gate in zip(stages, gates) if gate < self._stage_probability[stage])
        if self._recipe.parallel and stages:
            x = _normalise_if_clipping(sum(self._run_stage(stage, x, sample_rate, draws) for stage in stages))
        else:
            for stage in stages:
                x = self._run_stage(stage, x, sample_rate, draws)
        return x.astype(np.float32)

    def _check_sample_rate(self, sample_rate: int) -> None:
        highest_low_edge = self.config.max_centre_hz - self.config.min_bandwidth_hz / 2
        if highest_low_edge >= sample_rate / 2 - _EDGE_MARGIN_HZ:
            raise ValueError(
                f"RawBoost notches reach {highest_low_edge:g} Hz (max_centre_hz - min_bandwidth_hz / 2), above "
                f"the Nyquist frequency of sample_rate={sample_rate}; lower max_centre_hz"
            )

    def _run_stage(self, stage: str, x: np.ndarray, sample_rate: int, draws: np.random.RandomState) -> np.ndarray:
        if stage == "lnl":
            return self._linear_nonlinear_noise(x, sample_rate, draws)
        if stage == "isd":
            return self._impulsive_noise(x, draws)
        return self._stationary_noise(x, sample_rate, draws)

    def _linear_nonlinear_noise(self, x: np.ndarray, sample_rate: int, draws: np.random.RandomState) -> np.ndarray:
        """LnL: `y = sum_j FIR_j(x ** j)` for j = 1..lnl_order, mean removed, divided by its peak if above 1."""
        config = self.config
        gain_ranges = np.array(
            [(config.min_gain_db, config.max_gain_db)]
            + [(config.min_gain_db - config.min_nonlinear_bias_db, config.max_gain_db - config.max_nonlinear_bias_db)]
            * (config.lnl_order - 1)
        )
        filters = _random_notch_filters(draws, config, sample_rate, gain_ranges)
        y = _filter_powers(x, filters)
        return _normalise_if_clipping(y - y.mean())

    def _impulsive_noise(self, x: np.ndarray, draws: np.random.RandomState) -> np.ndarray:
        """ISD: multiplies a random `U(0, P)` percent of the samples by `1 + g_sd * u1 * u2`, u ~ U(-1, 1)."""
        percent = draws.uniform(0, self.config.isd_max_percent)
        count = int(x.size * (percent / 100))
        positions = draws.permutation(x.size)[:count]  # the authors' draw: a full shuffle, its first `count`
        uniforms = draws.random_sample(2 * count)
        factors = (2 * uniforms[:count] - 1) * (2 * uniforms[count:] - 1)
        y = x.copy()
        y[positions] = x[positions] + self.config.isd_gain * x[positions] * factors
        return _normalise_if_clipping(y)

    def _stationary_noise(self, x: np.ndarray, sample_rate: int, draws: np.random.RandomState) -> np.ndarray:
        """SSI: adds white Gaussian noise through a random notch cascade at an SNR ~ U(SNRmin, SNRmax) dB."""
        config = self.config
        noise = draws.normal(0, 1, x.size)
        gain_range = np.array([(config.min_gain_db, config.max_gain_db)])
        noise_filter = _random_notch_filters(draws, config, sample_rate, gain_range, normalise_gain=False)
        noise = _filter_powers(noise, noise_filter)
        return add_at_snr(x, noise, draws.uniform(config.snr_min_db, config.snr_max_db))
