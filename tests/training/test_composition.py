"""Tests of training.augmentation.composition: Compose, RandomApply and OneOf."""

from __future__ import annotations

import numpy as np
import pytest

from modeling_nes2net.examples import speech_like
from training.augmentation.composition import Compose, OneOf, RandomApply
from training.augmentation.rawboost import RawBoost

SR = 16_000


def double(waveform: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    return (2 * np.asarray(waveform)).astype(np.float32)


def test_random_apply_compose_and_one_of():
    x = speech_like(0.5)
    rawboost = RawBoost(algorithm=2)
    np.testing.assert_array_equal(RandomApply(rawboost, p=0)(x, SR, np.random.default_rng(0)), x)
    rng = np.random.default_rng(0)
    rng.random()  # RandomApply's own draw
    np.testing.assert_array_equal(RandomApply(rawboost, p=1)(x, SR, np.random.default_rng(0)), rawboost(x, SR, rng))
    rng = np.random.default_rng(1)
    applied = [not np.array_equal(RandomApply(rawboost, 0.3)(x, SR, rng), x) for _ in range(300)]
    assert 0.22 < np.mean(applied) < 0.38

    composed = Compose([double, RawBoost(algorithm=0), double])(x, SR, np.random.default_rng(0))
    np.testing.assert_allclose(composed, 4 * x)

    pick = OneOf([RawBoost(algorithm=0), double], weights=[1, 3])
    rng = np.random.default_rng(2)
    doubled = [np.allclose(pick(x, SR, rng), 2 * x) for _ in range(300)]
    assert 0.67 < np.mean(doubled) < 0.83
    with pytest.raises(ValueError):
        OneOf([])
    with pytest.raises(ValueError):
        RandomApply(double, p=2)
