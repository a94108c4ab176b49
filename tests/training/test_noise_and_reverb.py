"""Tests of training.augmentation.noise_and_reverb and of mixing at an SNR (training.augmentation.waveform): MUSAN-style
noise, babble, room impulse responses and the ASVspoof 5 recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from modeling_nes2net.examples import speech_like
from tests.training.levels import snr_db
from training.augmentation.noise_and_reverb import AdditiveNoise, Reverberation, musan_rir_augmentation
from training.augmentation.waveform import add_at_snr

SR = 16_000


@pytest.mark.parametrize("snr", [-10.0, 0.0, 12.5, 40.0])
def test_add_at_snr_reaches_the_asked_snr_whatever_the_noise_level(snr):
    x = speech_like(1.0).astype(np.float64)
    for scale in (1e-3, 1.0, 50.0):
        noise = scale * np.random.default_rng(0).standard_normal(x.size)
        assert snr_db(x, add_at_snr(x, noise, snr)) == pytest.approx(snr, abs=1e-9)


def test_add_at_snr_adds_nothing_for_silent_noise_or_a_silent_signal():
    x = speech_like(0.5).astype(np.float64)
    np.testing.assert_array_equal(add_at_snr(x, np.zeros_like(x), 10.0), x)
    silence = np.zeros(100)
    np.testing.assert_array_equal(add_at_snr(silence, np.ones(100), 10.0), silence)


def write(path: Path, audio: np.ndarray, sample_rate: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, sample_rate)
    return path


def tone(frequency: float, seconds: float, sample_rate: int = SR) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * frequency * np.arange(int(seconds * sample_rate)) / sample_rate)


def dominant_frequency(signal: np.ndarray) -> float:
    return float(np.fft.rfftfreq(signal.size, 1 / SR)[np.argmax(np.abs(np.fft.rfft(signal)))])


@pytest.fixture
def noise_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "noise"
    write(folder / "white.wav", 0.3 * rng.standard_normal(SR // 2))  # shorter than the clips: tiled
    write(folder / "sub" / "stereo.flac", 0.2 * rng.standard_normal((3 * SR, 2)))
    write(folder / "narrow_8k.wav", 0.1 * rng.standard_normal(8000 * 3), 8000)
    (folder / "README.txt").write_text("not audio")
    return folder


def test_additive_noise_reaches_the_requested_snr(noise_folder):
    x = speech_like(2.0)
    assert len(AdditiveNoise(noise_folder, (0, 15)).files) == 3
    for seed in range(10):
        y = AdditiveNoise(noise_folder, snr_range=(5, 5))(x, SR, np.random.default_rng(seed))
        assert y.dtype == np.float32 and y.shape == x.shape
        assert snr_db(x, y) == pytest.approx(5, abs=0.01)
    levels = [snr_db(x, AdditiveNoise(noise_folder, (0, 15))(x, SR, np.random.default_rng(s))) for s in range(20)]
    assert 0 - 0.01 <= min(levels) and max(levels) <= 15 + 0.01 and max(levels) - min(levels) > 5


def test_additive_noise_resamples_and_tiles_files(tmp_path):
    folder = tmp_path / "hum"
    write(folder / "hum_8k.wav", tone(1000, 0.3, 8000), 8000)
    x = speech_like(1.0)
    noise = AdditiveNoise(folder, (10, 10))(x, SR, np.random.default_rng(0)).astype(np.float64) - x
    assert dominant_frequency(noise) == pytest.approx(1000, abs=2)  # 1 kHz at 16 kHz: resampled, not replayed
    assert np.abs(noise[: SR // 4]).max() > 0 and np.abs(noise[-SR // 4 :]).max() > 0  # 0.3 s tiled over 1 s


def test_babble_sums_distinct_sources(tmp_path):
    folder = tmp_path / "speech"
    for frequency in (500, 1500, 3000):
        write(folder / f"talker_{frequency}.wav", tone(frequency, 1.5))
    x = speech_like(1.0)
    noise = AdditiveNoise(folder, (13, 13), num_sources=(3, 3))(x, SR, np.random.default_rng(1)) - x
    spectrum = np.abs(np.fft.rfft(noise.astype(np.float64)))
    frequencies = np.fft.rfftfreq(noise.size, 1 / SR)
    for frequency in (500, 1500, 3000):
        assert spectrum[np.abs(frequencies - frequency) < 3].max() > 0.2 * spectrum.max()


def test_noise_files_are_indexed_once(noise_folder):
    augment = AdditiveNoise(noise_folder, (10, 10))
    write(noise_folder / "late.wav", tone(2000, 2.0))  # added after indexing: never used
    x = speech_like(1.0)
    assert len(augment.files) == 3
    for seed in range(10):
        noise = augment(x, SR, np.random.default_rng(seed)).astype(np.float64) - x
        assert abs(dominant_frequency(noise) - 2000) > 5


def test_folders_without_audio_are_rejected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no audio files"):
        AdditiveNoise(tmp_path / "empty", (0, 15))
    with pytest.raises(ValueError, match="does not exist"):
        Reverberation(tmp_path / "missing")
    write(tmp_path / "noise" / "a.wav", tone(100, 0.1))
    with pytest.raises(ValueError, match="snr_range"):
        AdditiveNoise(tmp_path / "noise", (15, 0))


def test_reverberation_keeps_length_and_aligns_on_the_direct_path(tmp_path):
    x = speech_like(1.0)
    delta = np.zeros(800)
    delta[120] = 0.4
    write(tmp_path / "delta" / "delta.wav", delta)
    np.testing.assert_allclose(Reverberation(tmp_path / "delta")(x, SR, np.random.default_rng(0)), x, atol=1e-4)

    decay = 0.1 * np.random.default_rng(0).standard_normal(SR // 2) * np.exp(-np.arange(SR // 2) / 800)
    decay[40] = 3.0  # the direct path, 40 samples in
    folder = tmp_path / "rirs"
    write(folder / "room.wav", decay / 4)
    write(folder / "room_8k.wav", decay[::2] / 4, 8000)
    augment = Reverberation(folder)
    for seed in range(4):
        y = augment(x, SR, np.random.default_rng(seed))
        assert y.dtype == np.float32 and y.shape == x.shape and np.isfinite(y).all()
        assert not np.allclose(y, x, atol=1e-3)
        assert np.corrcoef(x, y)[0, 1] > 0.5  # aligned with the dry signal, not delayed by the response


def test_musan_rir_recipe(tmp_path, noise_folder):
    musan = tmp_path / "musan"
    rng = np.random.default_rng(0)
    for kind in ("noise", "speech", "music"):
        for index in range(3):
            write(musan / kind / f"{kind}_{index}.wav", 0.1 * rng.standard_normal(SR))
    rirs = tmp_path / "rirs"
    write(rirs / "room.wav", np.exp(-np.arange(2000) / 300) * rng.standard_normal(2000))
    x = speech_like(1.0)
    np.testing.assert_array_equal(musan_rir_augmentation(musan, rirs, p=0)(x, SR, np.random.default_rng(0)), x)
    recipe = musan_rir_augmentation(musan, rirs, p=1)
    outputs = [recipe(x, SR, np.random.default_rng(seed)) for seed in range(8)]
    assert all(o.shape == x.shape and not np.array_equal(o, x) for o in outputs)
