"""Tests of training.augment: RawBoost algorithms 0-11, MUSAN-style noise, reverberation and composition."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile

from training.augment import (
    AdditiveNoise,
    Compose,
    OneOf,
    RandomApply,
    RawBoost,
    RawBoostConfig,
    Reverberation,
    musan_rir_augmentation,
)
from tests.oracles.rawboost import ReferenceRawBoost

SR = 16_000


def speech_like(seconds: float = 1.0, peak: float = 0.8, seed: int = 0) -> np.ndarray:
    """A syllable-rate modulated harmonic tone plus a little noise, shape (samples,), float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    voiced = sum(np.sin(2 * np.pi * k * 140 * t) / k for k in range(1, 12))
    clip = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) * voiced + 0.05 * rng.standard_normal(t.size)
    return (peak * clip / np.abs(clip).max()).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    clean = clean.astype(np.float64)
    return float(10 * np.log10(np.sum(clean**2) / np.sum((noisy.astype(np.float64) - clean) ** 2)))


# --------------------------------------------------------------------------------------------- RawBoost


@pytest.mark.parametrize("algorithm", range(12))
@pytest.mark.parametrize("length", [300, SR + 7])
def test_every_algorithm_returns_finite_float32_of_input_length(algorithm, length):
    x = speech_like(length / SR)
    y = RawBoost(RawBoostConfig(), algorithm)(x, SR, np.random.default_rng(0))
    assert y.dtype == np.float32
    assert y.shape == x.shape
    assert np.isfinite(y).all()


@pytest.mark.parametrize("algorithm", range(1, 12))
def test_seeded_generator_reproduces_and_different_seeds_differ(algorithm):
    x = speech_like()
    augment = RawBoost(algorithm=algorithm)
    first = augment(x, SR, np.random.default_rng(7))
    again = augment(x, SR, np.random.default_rng(7))
    other = augment(x, SR, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert not np.allclose(first, x)


def test_no_global_random_state_is_used():
    x = speech_like()
    np.random.seed(0)
    first = RawBoost(algorithm=4)(x, SR, np.random.default_rng(3))
    np.random.seed(1)
    second = RawBoost(algorithm=4)(x, SR, np.random.default_rng(3))
    np.testing.assert_array_equal(first, second)


def test_algorithm_0_is_the_identity():
    x = speech_like()
    np.testing.assert_array_equal(RawBoost(algorithm=0)(x, SR, np.random.default_rng(0)), x)


@pytest.mark.parametrize("algorithm", range(12))
def test_matches_the_reference_transcription_with_the_same_draws(algorithm):
    reference = ReferenceRawBoost(RawBoostConfig(), algorithm)
    x = speech_like(0.5, seed=algorithm)
    for seed in range(2):
        expected = reference(x, SR, np.random.default_rng(seed))
        actual = RawBoost(RawBoostConfig(), algorithm)(x, SR, np.random.default_rng(seed))
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)


def test_ssi_reaches_an_snr_inside_the_configured_range():
    x = speech_like()
    levels = [snr_db(x, RawBoost(algorithm=3)(x, SR, np.random.default_rng(seed))) for seed in range(30)]
    assert min(levels) >= 10 - 1e-3 and max(levels) <= 40 + 1e-3
    assert min(levels) < 20 and max(levels) > 30  # drawn uniformly, not fixed


def test_ssi_noise_is_coloured_by_notches():
    # Coloured noise: some 100 Hz band of the added noise sits well below its average power.
    x = speech_like(2.0)
    noise = RawBoost(algorithm=3)(x, SR, np.random.default_rng(4)).astype(np.float64) - x
    power = np.abs(np.fft.rfft(noise)) ** 2
    bands = power[: power.size // 100 * 100].reshape(100, -1).mean(axis=1)
    assert bands.min() < 0.1 * bands.mean()


def test_isd_changes_at_most_p_percent_of_samples():
    x = speech_like(peak=0.1)  # small enough that ISD never renormalises
    fractions = []
    for seed in range(40):
        y = RawBoost(algorithm=2)(x, SR, np.random.default_rng(seed))
        changed = y != x
        fractions.append(changed.mean())
        assert changed.mean() <= 0.10
        assert np.all(np.abs(y - x) <= 2 * np.abs(x) + 1e-7)  # impulses of at most g_sd * |x|
    assert 0.035 < np.mean(fractions) < 0.065  # beta ~ U(0, 10) percent, mean 5 percent


def test_lnl_has_zero_mean_and_is_normalised_only_when_clipping():
    loud = np.random.default_rng(0).uniform(-1, 1, SR).astype(np.float32)
    quiet = speech_like(peak=0.05)
    for seed in range(5):
        y = RawBoost(algorithm=1)(loud, SR, np.random.default_rng(seed))
        assert abs(float(y.mean())) < 1e-5
        assert np.abs(y).max() <= 1 + 1e-6
        z = RawBoost(algorithm=1)(quiet, SR, np.random.default_rng(seed))
        assert abs(float(z.mean())) < 1e-6
        assert np.abs(z).max() < 0.5  # a 0 dB peak-gain filter on a quiet input is not scaled up to 1


def test_lnl_linear_filter_is_a_unit_peak_notch_cascade():
    # Long filters on wide bands make deep notches (short ones, allowed by the defaults, only dent the band).
    config = RawBoostConfig(
        lnl_order=1, num_bands=1, min_centre_hz=3000, max_centre_hz=5000, min_bandwidth_hz=800, min_taps=80
    )
    impulse = np.zeros(4096, dtype=np.float32)
    impulse[2048] = 1
    for seed in range(5):
        response = RawBoost(config, 1)(impulse, SR, np.random.default_rng(seed)).astype(np.float64)
        magnitude = np.abs(np.fft.rfft(response))
        frequencies = np.fft.rfftfreq(response.size, 1 / SR)
        assert magnitude.max() == pytest.approx(1, abs=0.02)  # normalised to 0 dB peak gain
        assert magnitude[(frequencies > 200) & (frequencies < 1000)].min() > 0.8  # passes far from the notch
        assert magnitude[(frequencies > 2500) & (frequencies < 5500)].min() < 0.01  # stops inside it


def test_algorithm_4_equals_1_then_2_then_3_with_the_same_generator():
    x = speech_like()
    for seed in range(3):
        series = RawBoost(algorithm=4)(x, SR, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        step = x
        for algorithm in (1, 2, 3):
            step = RawBoost(algorithm=algorithm)(step, SR, rng)
        np.testing.assert_allclose(series, step, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("algorithm", "paths"), [(8, (1, 2)), (9, (1, 2, 3))])
def test_parallel_algorithms_are_the_normalised_sum_of_their_paths(algorithm, paths):
    x = speech_like()
    for seed in range(3):
        parallel = RawBoost(algorithm=algorithm)(x, SR, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        total = sum(RawBoost(algorithm=path)(x, SR, rng).astype(np.float64) for path in paths)
        expected = total / max(1.0, np.abs(total).max())
        np.testing.assert_allclose(parallel, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("gated", "ungated", "num_stages"), [(10, 8, 2), (11, 4, 3)])
def test_gated_algorithms_follow_their_probabilities(gated, ungated, num_stages):
    x = speech_like(0.5)
    always = RawBoost(RawBoostConfig(), gated)(x, SR, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    rng.random(num_stages)  # the stage draws come first
    np.testing.assert_array_equal(always, RawBoost(RawBoostConfig(), ungated)(x, SR, rng))

    never = RawBoostConfig(lnl_probability=0, isd_probability=0, ssi_probability=0)
    np.testing.assert_array_equal(RawBoost(never, gated)(x, SR, np.random.default_rng(5)), x)

    half = RawBoost(RawBoostConfig(lnl_probability=0.5, isd_probability=0.5, ssi_probability=0.5), gated)
    rng = np.random.default_rng(123)
    untouched = np.mean([np.array_equal(half(x, SR, rng), x) for _ in range(300)])
    assert abs(untouched - 0.5**num_stages) < 0.08


def test_rawboost_on_real_speech(mini_antispoof):
    with open(mini_antispoof / "metadata.csv", newline="") as handle:
        first = next(csv.DictReader(handle))
    audio, sample_rate = soundfile.read(mini_antispoof / first["file_name"], dtype="float32")
    audio = audio[: 4 * sample_rate]
    for algorithm in (4, 8):
        y = RawBoost(algorithm=algorithm)(audio, sample_rate, np.random.default_rng(0))
        assert y.shape == audio.shape and np.isfinite(y).all()
        assert 0 < np.abs(y - audio).max()


@pytest.mark.parametrize(
    "bad",
    [
        dict(lnl_order=0),
        dict(min_taps=1),
        dict(min_taps=50, max_taps=20),
        dict(min_bandwidth_hz=0),
        dict(snr_min_db=40, snr_max_db=10),
        dict(isd_max_percent=120),
        dict(ssi_probability=1.5),
    ],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="invalid RawBoostConfig"):
        RawBoostConfig(**bad)


def test_rawboost_rejects_bad_calls():
    with pytest.raises(ValueError, match="0-11"):
        RawBoost(algorithm=12)
    augment = RawBoost(algorithm=1)
    with pytest.raises(ValueError, match="1-D"):
        augment(np.zeros((2, 100)), SR, np.random.default_rng(0))
    with pytest.raises(ValueError, match="NaN"):
        augment(np.full(100, np.nan), SR, np.random.default_rng(0))
    with pytest.raises(ValueError, match="Nyquist"):
        augment(speech_like(), 8000, np.random.default_rng(0))


# ------------------------------------------------------------------------------------ noise and reverb


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


# ----------------------------------------------------------------------------------------- composition


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
