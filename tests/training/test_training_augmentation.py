"""Channel augmentation and shortcut removal as a recipe builds them for training."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile
from datasets import Audio, Dataset, Features, Value

from training.augmentation.composition import Compose, RandomApply
from training.batching import WaveformDataset, build_augmentation, build_preprocessing
from training.recipe import DataSpec
from training.shortcut_audit import ShortcutRemoval

RATE = 16000


def _high_band_share(waveform: np.ndarray) -> float:
    """Share of the power above 4.2 kHz."""
    power = np.abs(np.fft.rfft(waveform)) ** 2
    frequencies = np.fft.rfftfreq(waveform.size, 1 / RATE)
    return float(power[frequencies > 4200].sum() / power.sum())


def test_a_chain_of_rawboost_and_a_channel_condition_applies_both_reproducibly():
    augmentation = build_augmentation(
        {"chain": [{"rawboost": {"algorithm": 3}}, {"channel": {"conditions": ["mulaw"], "p": 1.0}}]}
    )
    assert isinstance(augmentation, Compose) and isinstance(augmentation.augmentations[1], RandomApply)
    waveform = 0.1 * np.random.default_rng(0).standard_normal(RATE).astype(np.float32)
    first = augmentation(waveform, RATE, np.random.default_rng(5))
    np.testing.assert_array_equal(first, augmentation(waveform, RATE, np.random.default_rng(5)))
    assert first.shape == waveform.shape and first.dtype == np.float32
    assert _high_band_share(waveform) > 0.4
    assert _high_band_share(first) < 0.05  # the 8 kHz telephone path took the upper band away
    never = build_augmentation({"channel": {"conditions": ["mulaw"], "p": 0.0}})
    np.testing.assert_array_equal(never(waveform, RATE, np.random.default_rng(5)), waveform)


def test_recipes_refuse_unknown_augmentations_and_channels_without_conditions():
    with pytest.raises(ValueError, match="data.augmentation must be one of"):
        DataSpec(augmentation={"codecs": {}})
    assert DataSpec(augmentation={"channel": {"conditions": ["mp3:32k"]}}).augmentation
    with pytest.raises(ValueError, match="needs conditions"):
        build_augmentation({"channel": {"p": 0.5}})
    with pytest.raises(ValueError, match="unknown preprocessing"):
        build_preprocessing({"trim": {}})
    assert build_preprocessing({"remove_shortcuts": {"band_limit_hz": [4000]}}) == ShortcutRemoval(
        band_limit_hz=(4000,)
    )


def _split_with_leading_silence() -> Dataset:
    rng = np.random.default_rng(1)
    speech = 0.1 * rng.standard_normal(2 * RATE) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * np.arange(2 * RATE) / RATE))
    waveform = np.concatenate([np.zeros(RATE), speech, np.zeros(RATE // 2)])
    encoded = io.BytesIO()
    soundfile.write(encoded, waveform, RATE, format="FLAC")
    features = Features({"audio": Audio(decode=False), "label": Value("int64"), "utt_id": Value("string")})
    return Dataset.from_dict(
        {"audio": [{"bytes": encoded.getvalue(), "path": None}], "label": [1], "utt_id": ["u"]}, features=features
    )


def test_preprocessing_runs_on_the_whole_utterance_before_the_crop():
    split = _split_with_leading_silence()
    plain = WaveformDataset(split, "start", RATE)[0]["input_values"]
    assert np.abs(plain[: RATE // 2]).max() == 0.0  # the crop starts in the leading second of silence
    removal = ShortcutRemoval(band_limit_p=0.0)
    items = WaveformDataset(split, "start", RATE, preprocessing=removal)
    trimmed = items[0]["input_values"]
    assert trimmed.shape == (RATE,)
    assert np.sqrt(np.mean(trimmed[: RATE // 20] ** 2)) > 1e-3  # speech from the first 50 ms on
    level = 10 * np.log10(np.mean(trimmed**2))
    assert -33.0 < level < -17.0
    whole = WaveformDataset(split, "full", preprocessing=removal)[0]["input_values"]
    assert abs(whole.size - 2 * RATE) < 0.05 * RATE  # both silences gone
