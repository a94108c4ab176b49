"""Augmentations built from others: in sequence, with a probability, or one picked at random."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.augmentation.waveform import Augmentation


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
