"""Waveform augmentation for anti-spoofing training: RawBoost and MUSAN-style noise / reverberation mixing.

Every augmentation here is a callable `(waveform, sample_rate, rng) -> waveform` taking a 1-D float array of
shape `(samples,)` and returning a float32 array of the same shape. All randomness comes from the
`numpy.random.Generator` passed in, so a seeded generator reproduces an augmentation exactly, and data-loader
workers stay independent when each owns a generator.

RawBoost (Tak et al., ICASSP 2022, "RawBoost: A Raw Data Boosting and Augmentation Method applied to Automatic
Speaker Verification Anti-Spoofing") follows the authors' definition of algorithms 0-8 and the Nes2Net authors'
algorithms 9-11, with the same random draws in the same order, differing from the reference code only where
listed here:

- The reference fails on current numpy 2 (checked on 2.4: `int()` / `float()` of its shape-(1,) draws raise
  `TypeError`); this version only ever converts scalars.
- All draws come from the `Generator` passed in instead of numpy's and Python's global generators, as
  `low + (high - low) * u` so that the non-linear LnL gain range, whose low end exceeds its high end (-5 to
  -20 dB by default), keeps working (`Generator.uniform` rejects it). The
  probability draws of algorithms 10 and 11 (Python's `random` in the reference) come first, from the same
  generator, and a stage runs when its draw is `< probability` (the reference uses `<=` for algorithm 10).
- ISD picks its impulse positions with `Generator.choice(n, k, replace=False)` rather than the first k of a full
  permutation: the same distribution (a uniform k-subset) without shuffling every sample.
- Filters are designed in closed form (a Hamming-windowed band-stop sinc, identical to
  `scipy.signal.firwin(taps, [f1, f2], window="hamming", fs=fs)`), cascaded and gain-normalised in the frequency
  domain (the peak |H| is taken on `scipy.signal.freqz`'s default 512-point grid, as in the reference), and
  applied by FFT overlap-add, the LnL terms summed in the frequency domain. Results equal the reference's
  `lfilter` path to float64 rounding.
- Inputs are processed in float64 (the reference kept float32 inputs in float32 until filtering).
- The reference's quirks are kept on purpose, for fidelity: the filter delay compensation advances the output by
  one sample more than the group delay; SSI normalises its noise to a unit peak before scaling it to the drawn
  SNR (a no-op, skipped here) and never renormalises its output, so algorithms 3, 4, 6, 7 and 11 can return
  peaks above 1; LnL, ISD and the parallel algorithms divide by the peak only when it exceeds 1.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.fft
import scipy.signal
import soundfile
import soxr

from modeling_nes2net.audio import AUDIO_EXTENSIONS

logger = logging.getLogger(__name__)

Augmentation = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
"""`(waveform of shape (samples,), sample_rate, rng) -> float32 waveform of shape (samples,)`."""


# scipy.signal.freqz's default grid: 512 frequencies from 0 to just below Nyquist, i.e. the first 512 bins
# of a 1024-point DFT. The reference normalises every RawBoost filter by its peak magnitude on this grid.
_FREQZ_DFT_SIZE = 1024
# Edge clipping of the reference filter design: band edges stay this many Hz inside (0, sample_rate / 2).
_EDGE_MARGIN_HZ = 1e-3


def _as_waveform(waveform: np.ndarray) -> np.ndarray:
    """Checks a waveform of shape (samples,) and returns it as a new float64 array."""
    x = np.array(waveform, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"expected a non-empty 1-D waveform of shape (samples,), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("the waveform contains NaN or infinite samples")
    return x


def _energy(x: np.ndarray) -> float:
    """`sum(x ** 2)` of shape (samples,), without BLAS (whose thread wake-ups cost milliseconds on busy CPUs)."""
    return float(np.einsum("i,i->", x, x))


def _normalise_if_clipping(x: np.ndarray) -> np.ndarray:
    """Divides `x` by its peak magnitude when that peak exceeds 1."""
    peak = np.abs(x).max()
    return x / peak if peak > 1 else x


# ---------------------------------------------------------------------------------------------------------
# RawBoost
# ---------------------------------------------------------------------------------------------------------


@dataclass
class RawBoostConfig:
    """Parameters of RawBoost; the defaults are the reference's (its argument names in brackets).

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
    rng: np.random.Generator,
    config: RawBoostConfig,
    sample_rate: int,
    gain_ranges_db: np.ndarray,
    normalise_gain: bool = True,
) -> np.ndarray:
    """Draws one random cascade of `config.num_bands` band-stop FIR filters per row of `gain_ranges_db`.

    Draw order per filter, as in the reference: (centre, width, taps) for each band, then the gain.

    Args:
        gain_ranges_db: `(num_filters, 2)` low and high end of each filter's uniform gain draw.
        normalise_gain: scale each cascade to a peak |H| of `10 ** (gain / 20)`; when False the gain is drawn
            (to keep the random stream) but not applied.

    Returns:
        `(num_filters, filter_length)` linear-phase taps, zero-padded symmetrically to a common odd length,
        which leaves each filter's centre at `(filter_length - 1) / 2`.
    """
    num_filters, num_bands = len(gain_ranges_db), config.num_bands
    draws = rng.random((num_filters, 3 * num_bands + 1))
    band_draws = draws[:, :-1].reshape(num_filters, num_bands, 3)
    # `low + (high - low) * u` is exactly what Generator.uniform(low, high) computes from the same double.
    centre = config.min_centre_hz + (config.max_centre_hz - config.min_centre_hz) * band_draws[..., 0]
    width = config.min_bandwidth_hz + (config.max_bandwidth_hz - config.min_bandwidth_hz) * band_draws[..., 1]
    taps = np.floor(config.min_taps + (config.max_taps - config.min_taps) * band_draws[..., 2]).astype(np.int64)
    taps |= 1
    gain_db = gain_ranges_db[:, 0] + (gain_ranges_db[:, 1] - gain_ranges_db[:, 0]) * draws[:, -1]

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
    """`sum_j filters[j] * x ** (j + 1)` (`*` is convolution) with the reference's delay compensation.

    Overlap-add on blocks about four times the filter length: each power of the signal is formed block by block
    in place, transformed once, and accumulated in the frequency domain, so the cost is one forward transform
    per power and one inverse transform in all, with small working arrays.

    Args:
        x: `(samples,)`.
        filters: `(num_powers, filter_length)` with an odd `filter_length`.

    Returns:
        `(samples,)`: samples `(filter_length + 1) / 2` onwards of the full convolution sum, which is where the
        reference's zero-padded `lfilter` output starts (one sample past the group delay).
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
        x = _as_waveform(waveform)
        self._check_sample_rate(sample_rate)
        stages = self._recipe.stages
        if self._recipe.gated:
            draws = rng.random(len(stages))
            stages = tuple(stage for stage, draw in zip(stages, draws) if draw < self._stage_probability[stage])
        if self._recipe.parallel and stages:
            x = _normalise_if_clipping(sum(self._run_stage(stage, x, sample_rate, rng) for stage in stages))
        else:
            for stage in stages:
                x = self._run_stage(stage, x, sample_rate, rng)
        return x.astype(np.float32)

    def _check_sample_rate(self, sample_rate: int) -> None:
        highest_low_edge = self.config.max_centre_hz - self.config.min_bandwidth_hz / 2
        if highest_low_edge >= sample_rate / 2 - _EDGE_MARGIN_HZ:
            raise ValueError(
                f"RawBoost notches reach {highest_low_edge:g} Hz (max_centre_hz - min_bandwidth_hz / 2), above "
                f"the Nyquist frequency of sample_rate={sample_rate}; lower max_centre_hz"
            )

    def _run_stage(self, stage: str, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        if stage == "lnl":
            return self.linear_nonlinear_noise(x, sample_rate, rng)
        if stage == "isd":
            return self.impulsive_noise(x, rng)
        return self.stationary_noise(x, sample_rate, rng)

    def linear_nonlinear_noise(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """LnL: `y = sum_j FIR_j(x ** j)` for j = 1..lnl_order, mean removed, divided by its peak if above 1."""
        config = self.config
        gain_ranges = np.array(
            [(config.min_gain_db, config.max_gain_db)]
            + [(config.min_gain_db - config.min_nonlinear_bias_db, config.max_gain_db - config.max_nonlinear_bias_db)]
            * (config.lnl_order - 1)
        )
        filters = _random_notch_filters(rng, config, sample_rate, gain_ranges)
        y = _filter_powers(x, filters)
        return _normalise_if_clipping(y - y.mean())

    def impulsive_noise(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """ISD: multiplies a random `U(0, P)` percent of the samples by `1 + g_sd * u1 * u2`, u ~ U(-1, 1)."""
        percent = rng.uniform(0, self.config.isd_max_percent)
        count = int(x.size * (percent / 100))
        positions = rng.choice(x.size, count, replace=False)
        draws = rng.random(2 * count)
        factors = (2 * draws[:count] - 1) * (2 * draws[count:] - 1)
        y = x.copy()
        y[positions] = x[positions] + self.config.isd_gain * x[positions] * factors
        return _normalise_if_clipping(y)

    def stationary_noise(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """SSI: adds white Gaussian noise through a random notch cascade at an SNR ~ U(SNRmin, SNRmax) dB."""
        config = self.config
        noise = rng.standard_normal(x.size)
        gain_range = np.array([(config.min_gain_db, config.max_gain_db)])
        noise_filter = _random_notch_filters(rng, config, sample_rate, gain_range, normalise_gain=False)
        noise = _filter_powers(noise, noise_filter)
        snr_db = rng.uniform(config.snr_min_db, config.snr_max_db)
        noise *= math.sqrt(_energy(x) / _energy(noise)) / 10.0 ** (0.05 * snr_db)
        return x + noise


# ---------------------------------------------------------------------------------------------------------
# Noise and reverberation from audio files (MUSAN / RIR)
# ---------------------------------------------------------------------------------------------------------


class _AudioFile(NamedTuple):
    path: Path
    frames: int
    sample_rate: int


def _index_audio_files(folder: str | Path) -> list[_AudioFile]:
    """Lists every readable, non-empty audio file under `folder` (recursively), sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"augmentation folder {folder} does not exist")
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()):
        try:
            info = soundfile.info(str(path))
        except (RuntimeError, soundfile.LibsndfileError) as error:
            raise ValueError(f"cannot read augmentation file {path}: {error}") from error
        if info.frames > 0:
            files.append(_AudioFile(path, info.frames, info.samplerate))
    if not files:
        raise ValueError(f"no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) under {folder}")
    logger.info("indexed %d audio files under %s", len(files), folder)
    return files


def _read_mono(file: _AudioFile, sample_rate: int, start: int, frames: int) -> np.ndarray:
    """Reads `frames` frames from `start`, averages the channels and resamples to `sample_rate`."""
    audio, _ = soundfile.read(str(file.path), start=start, frames=frames, dtype="float64", always_2d=True)
    audio = audio.mean(axis=1)
    if file.sample_rate != sample_rate:
        audio = soxr.resample(audio, file.sample_rate, sample_rate)
    return audio


class AdditiveNoise:
    """Adds noise, music or babble read from a folder of audio files at an SNR ~ U(snr_range) dB.

    Each call sums `num_sources` random excerpts of distinct files when there are enough (babble: several
    speech files), each tiled when shorter than the waveform, and scales the sum so that
    `10 log10(|x|^2 / |noise|^2)` equals the drawn SNR.

    Args:
        folder: folder searched recursively for audio files (`AUDIO_EXTENSIONS`), indexed once here.
        snr_range: `(low, high)` SNR range in dB, e.g. MUSAN noise (0, 15), speech (13, 20), music (5, 25).
        num_sources: `(low, high)` inclusive range of files summed per call, e.g. (3, 7) for babble.
    """

    def __init__(self, folder: str | Path, snr_range: tuple[float, float], num_sources: tuple[int, int] = (1, 1)):
        if snr_range[0] > snr_range[1]:
            raise ValueError(f"snr_range must be (low, high) with low <= high, got {snr_range}")
        if not 1 <= num_sources[0] <= num_sources[1]:
            raise ValueError(f"num_sources must be (low, high) with 1 <= low <= high, got {num_sources}")
        self.files = _index_audio_files(folder)
        self.snr_range = snr_range
        self.num_sources = num_sources

    def __repr__(self) -> str:
        return f"AdditiveNoise({len(self.files)} files, snr_range={self.snr_range}, num_sources={self.num_sources})"

    def _excerpt(self, file: _AudioFile, length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """A random excerpt of `file` at `sample_rate`, tiled to shape (length,)."""
        frames = math.ceil(length * file.sample_rate / sample_rate)
        start = int(rng.integers(file.frames - frames + 1)) if file.frames > frames else 0
        return np.resize(_read_mono(file, sample_rate, start, frames), length)

    def __call__(self, waveform: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """Adds noise to `waveform` of shape (samples,); returns float32 of shape (samples,)."""
        x = _as_waveform(waveform)
        count = int(rng.integers(self.num_sources[0], self.num_sources[1] + 1))
        chosen = rng.choice(len(self.files), size=count, replace=count > len(self.files))
        noise = sum(self._excerpt(self.files[i], x.size, sample_rate, rng) for i in chosen)
        snr_db = rng.uniform(*self.snr_range)
        noise_energy = _energy(noise)
        if noise_energy == 0:
            logger.debug("skipping a silent noise excerpt")
            return x.astype(np.float32)
        noise *= math.sqrt(_energy(x) / noise_energy / 10.0 ** (snr_db / 10))
        return (x + noise).astype(np.float32)


class Reverberation:
    """Convolves the waveform with a random room impulse response from a folder of audio files.

    The impulse response (first channel, resampled when needed) is scaled to unit energy, and the output is
    aligned on its direct path (the peak of the response), so it keeps the input's length and timing.

    Args:
        folder: folder searched recursively for impulse responses (`AUDIO_EXTENSIONS`), indexed once here.
    """

    def __init__(self, folder: str | Path):
        self.files = _index_audio_files(folder)

    def __repr__(self) -> str:
        return f"Reverberation({len(self.files)} impulse responses)"

    def __call__(self, waveform: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """Reverberates `waveform` of shape (samples,); returns float32 of shape (samples,)."""
        x = _as_waveform(waveform)
        file = self.files[int(rng.integers(len(self.files)))]
        audio, _ = soundfile.read(str(file.path), dtype="float64", always_2d=True)
        response = audio[:, 0]
        if file.sample_rate != sample_rate:
            response = soxr.resample(response, file.sample_rate, sample_rate)
        return apply_impulse_response(x, response)


def apply_impulse_response(waveform: np.ndarray, response: np.ndarray) -> np.ndarray:
    """`waveform` `(samples,)` convolved with `response` `(taps,)` scaled to unit energy, aligned on the direct path
    (the response's peak) so it keeps the input's length and timing; float32 `(samples,)`. A silent response is
    skipped."""
    x = _as_waveform(waveform)
    response = np.asarray(response, dtype=np.float64)
    energy = _energy(response)
    if energy == 0:
        logger.debug("skipping a silent impulse response")
        return x.astype(np.float32)
    response = response / math.sqrt(energy)
    direct_path = int(np.argmax(np.abs(response)))
    wet = scipy.signal.fftconvolve(x, response)[direct_path : direct_path + x.size]
    return wet.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# Composition
# ---------------------------------------------------------------------------------------------------------


class Compose:
    """Applies augmentations one after the other."""

    def __init__(self, augmentations: Sequence[Augmentation]):
        self.augmentations = list(augmentations)

    def __repr__(self) -> str:
        return f"Compose({self.augmentations})"

    def __call__(self, waveform: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        for augmentation in self.augmentations:
            waveform = augmentation(waveform, sample_rate, rng)
        return np.asarray(waveform, dtype=np.float32)


class RandomApply:
    """Applies an augmentation with probability `p`, otherwise returns the waveform unchanged (as float32)."""

    def __init__(self, augmentation: Augmentation, p: float = 0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomApply probability must lie in [0, 1], got {p}")
        self.augmentation = augmentation
        self.p = p

    def __repr__(self) -> str:
        return f"RandomApply({self.augmentation}, p={self.p})"

    def __call__(self, waveform: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.p:
            return self.augmentation(waveform, sample_rate, rng)
        return np.asarray(waveform, dtype=np.float32)


class OneOf:
    """Applies one augmentation picked at random, uniformly or with the given relative `weights`."""

    def __init__(self, augmentations: Sequence[Augmentation], weights: Sequence[float] | None = None):
        if not augmentations:
            raise ValueError("OneOf needs at least one augmentation")
        if weights is not None and (len(weights) != len(augmentations) or min(weights) < 0 or sum(weights) <= 0):
            raise ValueError("OneOf weights must be one non-negative number per augmentation, not all zero")
        self.augmentations = list(augmentations)
        self.probabilities = None if weights is None else np.asarray(weights, dtype=np.float64) / sum(weights)

    def __repr__(self) -> str:
        return f"OneOf({self.augmentations})"

    def __call__(self, waveform: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        index = int(rng.choice(len(self.augmentations), p=self.probabilities))
        return self.augmentations[index](waveform, sample_rate, rng)


def musan_rir_augmentation(musan_folder: str | Path, rir_folder: str | Path, p: float = 0.5) -> RandomApply:
    """The ASVspoof 5 recipe: with probability `p`, one of MUSAN noise (0-15 dB), babble of 3-7 MUSAN speech
    files (13-20 dB), MUSAN music (5-25 dB) or a room impulse response, picked uniformly.

    Args:
        musan_folder: the MUSAN root, holding `noise/`, `speech/` and `music/`.
        rir_folder: a folder of room impulse responses, e.g. `RIRS_NOISES/simulated_rirs`.
    """
    musan_folder = Path(musan_folder)
    return RandomApply(
        OneOf(
            [
                AdditiveNoise(musan_folder / "noise", snr_range=(0, 15)),
                AdditiveNoise(musan_folder / "speech", snr_range=(13, 20), num_sources=(3, 7)),
                AdditiveNoise(musan_folder / "music", snr_range=(5, 25)),
                Reverberation(rir_folder),
            ]
        ),
        p=p,
    )
