"""Noise, music, babble and room reverberation read from folders of audio files (MUSAN / RIR), and the ASVspoof 5
recipe that mixes them."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.signal
import soundfile
import soxr

from modeling_nes2net.audio import AUDIO_EXTENSIONS, has_audio_extension
from training.augmentation.composition import OneOf, RandomApply
from training.augmentation.waveform import add_at_snr, as_waveform, energy

logger = logging.getLogger(__name__)


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
    for path in sorted(p for p in folder.rglob("*") if has_audio_extension(p) and p.is_file()):
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
    `10 log10(|x|^2 / |noise|^2)` equals the drawn SNR (a silent excerpt adds nothing).

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
        x = as_waveform(waveform)
        count = int(rng.integers(self.num_sources[0], self.num_sources[1] + 1))
        chosen = rng.choice(len(self.files), size=count, replace=count > len(self.files))
        noise = sum(self._excerpt(self.files[i], x.size, sample_rate, rng) for i in chosen)
        return add_at_snr(x, noise, rng.uniform(*self.snr_range)).astype(np.float32)


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
        x = as_waveform(waveform)
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
    x = as_waveform(waveform)
    response = np.asarray(response, dtype=np.float64)
    response_energy = energy(response)
    if response_energy == 0:
        logger.debug("skipping a silent impulse response")
        return x.astype(np.float32)
    response = response / math.sqrt(response_energy)
    direct_path = int(np.argmax(np.abs(response)))
    wet = scipy.signal.fftconvolve(x, response)[direct_path : direct_path + x.size]
    return wet.astype(np.float32)


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
