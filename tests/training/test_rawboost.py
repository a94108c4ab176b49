"""Tests of training.augmentation.rawboost: RawBoost algorithms 0-11 against the authors' outputs and their
definitions."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile

from modeling_nes2net.examples import speech_like
from tests.training.levels import snr_db
from training.augmentation.rawboost import RawBoost, RawBoostConfig

SR = 16_000


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
    x = speech_like(1.0)
    augment = RawBoost(algorithm=algorithm)
    first = augment(x, SR, np.random.default_rng(7))
    again = augment(x, SR, np.random.default_rng(7))
    other = augment(x, SR, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert not np.allclose(first, x)


def test_no_global_random_state_is_used():
    x = speech_like(1.0)
    np.random.seed(0)
    first = RawBoost(algorithm=4)(x, SR, np.random.default_rng(3))
    np.random.seed(1)
    second = RawBoost(algorithm=4)(x, SR, np.random.default_rng(3))
    np.testing.assert_array_equal(first, second)


def test_algorithm_0_is_the_identity():
    x = speech_like(1.0)
    np.testing.assert_array_equal(RawBoost(algorithm=0)(x, SR, np.random.default_rng(0)), x)


with np.load(Path(__file__).parent / "golden" / "rawboost_reference.npz") as golden_file:
    GOLDEN = dict(golden_file)
GOLDEN_CASES = sorted(key.removesuffix("/output") for key in GOLDEN if key.endswith("/output"))
AUTHORS_NAMES = {
    "N_f": "lnl_order", "nBands": "num_bands", "minF": "min_centre_hz", "maxF": "max_centre_hz",
    "minBW": "min_bandwidth_hz", "maxBW": "max_bandwidth_hz", "minCoeff": "min_taps", "maxCoeff": "max_taps",
    "minG": "min_gain_db", "maxG": "max_gain_db", "minBiasLinNonLin": "min_nonlinear_bias_db",
    "maxBiasLinNonLin": "max_nonlinear_bias_db", "P": "isd_max_percent", "g_sd": "isd_gain", "SNRmin": "snr_min_db",
    "SNRmax": "snr_max_db", "LnL_ratio": "lnl_probability", "ISD_ratio": "isd_probability",
    "SSI_ratio": "ssi_probability",
}
"""The authors' argument names (their main.py) -> `RawBoostConfig` fields."""


def authors_stream(seed: int) -> np.random.Generator:
    """A generator whose draws are those of numpy's global stream after `numpy.random.seed(seed)`."""
    state = np.random.RandomState(seed).get_state(legacy=False)
    bit_generator = np.random.MT19937()
    bit_generator.state = {"bit_generator": state["bit_generator"], "state": state["state"]}
    return np.random.Generator(bit_generator)


def config_from_authors_options(options: np.ndarray) -> RawBoostConfig:
    defaults = RawBoostConfig()
    fields = {}
    for option in options:
        name, value = str(option).split("=")
        field = AUTHORS_NAMES[name]
        fields[field] = type(getattr(defaults, field))(float(value))
    return RawBoostConfig(**fields)


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_matches_the_authors_code_with_the_same_seed(case):
    # Outputs of the RawBoost authors' code (tests/training/golden/README.md). float32 outputs: one float32 step at
    # peak 1 is 6e-8, and the filters agree to float64 rounding, so 1e-6 allows rounding and nothing else.
    algorithm, seed, sample_rate = (int(value) for value in GOLDEN[f"{case}/case"])
    augment = RawBoost(config_from_authors_options(GOLDEN[f"{case}/options"]), algorithm)
    actual = augment(GOLDEN[f"input/{sample_rate}"], sample_rate, authors_stream(seed))
    np.testing.assert_allclose(actual, GOLDEN[f"{case}/output"], rtol=0, atol=1e-6)


def test_ssi_reaches_an_snr_inside_the_configured_range():
    x = speech_like(1.0)
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
    x = 0.2 * speech_like(1.0)  # peak 0.1: small enough that ISD never renormalises
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
    quiet = 0.1 * speech_like(1.0)  # peak 0.05
    for seed in range(5):
        y = RawBoost(algorithm=1)(loud, SR, np.random.default_rng(seed))
        assert abs(float(y.mean())) < 1e-5
        assert np.abs(y).max() <= 1 + 1e-6
        z = RawBoost(algorithm=1)(quiet, SR, np.random.default_rng(seed))
        assert abs(float(z.mean())) < 1e-6
        assert np.abs(z).max() < 2 * np.abs(quiet).max()  # a 0 dB peak-gain filter on a quiet input is not scaled up to 1


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
    x = speech_like(1.0)
    for seed in range(3):
        series = RawBoost(algorithm=4)(x, SR, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        step = x
        for algorithm in (1, 2, 3):
            step = RawBoost(algorithm=algorithm)(step, SR, rng)
        np.testing.assert_allclose(series, step, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("algorithm", "paths"), [(8, (1, 2)), (9, (1, 2, 3))])
def test_parallel_algorithms_are_the_normalised_sum_of_their_paths(algorithm, paths):
    x = speech_like(1.0)
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
        augment(speech_like(1.0), 8000, np.random.default_rng(0))
