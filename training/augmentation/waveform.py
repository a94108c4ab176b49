"""What every augmentation shares: its signature, its input check, and mixing noise in at a chosen SNR."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Augmentation = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
"""`(waveform of shape (samples,), sample_rate, rng) -> float32 waveform of shape (samples,)`."""


def as_waveform(waveform: np.ndarray) -> np.ndarray:
    """Checks a waveform of shape (samples,) and returns it as a new float64 array."""
    x = np.array(waveform, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"expected a non-empty 1-D waveform of shape (samples,), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("the waveform contains NaN or infinite samples")
    return x


def energy(x: np.ndarray) -> float:
    """`sum(x ** 2)` of shape (samples,), without BLAS (whose thread wake-ups cost milliseconds on busy CPUs)."""
    return float(np.einsum("i,i->", x, x))


def add_at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`x + g * noise` with `g` such that `10 log10(sum(x ** 2) / sum((g * noise) ** 2)) = snr_db`; shapes `(samples,)`.

    A silent `noise` adds nothing (and a silent `x` gets `g = 0`): the result is then `x` itself, as float64.
    """
    noise_energy = energy(noise)
    if noise_energy == 0:
        return np.asarray(x, dtype=np.float64)
    return x + math.sqrt(energy(x) / noise_energy / 10.0 ** (snr_db / 10)) * noise
