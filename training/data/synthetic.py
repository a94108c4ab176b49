"""Synthetic audio files and corpus folders, for smoke tests and benchmarks of the data pipeline."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile

from .schema import LABEL_NAMES, SAMPLING_RATE


def synthetic_waveform(num_samples: int, sampling_rate: int = SAMPLING_RATE, seed: int = 0) -> np.ndarray:
    """A reproducible speech-like test signal in [-0.5, 0.5]: a seed-dependent tone under low-level noise.

    Returns float32 (num_samples,).
    """
    rng = np.random.default_rng(seed)
    time = np.arange(num_samples) / sampling_rate
    tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100.0, 400.0) * time)
    return (tone + 0.05 * rng.standard_normal(num_samples)).astype(np.float32)


def write_synthetic_audio(
    path: str | os.PathLike,
    seconds: float,
    sampling_rate: int = SAMPLING_RATE,
    seed: int = 0,
    channels: int = 1,
) -> np.ndarray:
    """Write a synthetic 16-bit file (format from the suffix: .flac, .wav, ...); returns the samples as they
    read back, float32 (samples,) or (samples, channels)."""
    waveform = synthetic_waveform(round(seconds * sampling_rate), sampling_rate, seed)
    if channels > 1:
        waveform = np.stack([waveform * (1.0 - 0.2 * channel) for channel in range(channels)], axis=1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, waveform, sampling_rate, subtype="PCM_16")
    return soundfile.read(path, dtype="float32")[0]


def make_synthetic_corpus(
    root: str | os.PathLike, num_files: int, seconds: float, suffix: str = ".flac", seed: int = 0
) -> Path:
    """A generic-layout corpus `root/{bonafide,spoof}/NNNNN<suffix>` of `num_files` files, alternately
    bona fide and spoof; returns `root`."""
    root = Path(root)
    for index in range(num_files):
        label = LABEL_NAMES[1 - index % 2]
        write_synthetic_audio(root / label / f"{index:05d}{suffix}", seconds, seed=seed + index)
    return root
