"""Tests of training.channel: real ffmpeg codec round trips, exact SNRs, seeded randomness, SPEC parsing."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from modeling_nes2net.examples import speech_like
from tests.training.levels import snr_db
from training.channel import CODECS, CONDITIONS, ChannelSpecError, parse_channel, perturb

SR = 16_000
RANDOM_CONDITIONS = ("packet-loss", "jitter", "noise", "noise:kind=pink", "reverb")


def tone(frequency: float, seconds: float = 1.0, amplitude: float = 0.3) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * frequency * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def peak_frequency(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * SR / len(x))


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_codec_round_trip_keeps_length_rate_and_timing(codec):
    x = speech_like(1.3)
    y = perturb(x, SR, codec, seed=0)
    assert y.dtype == np.float32 and y.shape == x.shape
    # the rate is kept: a 1 kHz tone comes back at 1 kHz (a rate mix-up would move it)
    assert abs(peak_frequency(perturb(tone(1000.0), SR, codec, seed=0)) - 1000.0) < 5.0
    # the timing is kept (encoder delay removed): the output matches the input sample for sample better than
    # it matches the input shifted by 2 ms, and is a faithful (lossy) copy
    shifted = np.roll(x, 32)
    assert snr_db(x, y) > 8.0 and snr_db(x, y) > snr_db(shifted, y) + 3.0
    assert not np.array_equal(y, x)  # it was really encoded


def test_codec_bitrate_changes_the_audio_and_is_deterministic():
    x = speech_like(1.0)
    low, high = perturb(x, SR, "mp3:16k", seed=0), perturb(x, SR, "mp3:bitrate=128k", seed=0)
    assert snr_db(x, high) > snr_db(x, low) + 3.0
    np.testing.assert_array_equal(low, perturb(x, SR, "mp3:16k", seed=123))


@pytest.mark.parametrize("snr", [-5.0, 0.0, 7.5, 20.0])
@pytest.mark.parametrize("kind", ["white", "pink"])
def test_generated_noise_has_the_asked_snr(snr, kind):
    x = speech_like(1.0)
    y = perturb(x, SR, f"noise:snr={snr},kind={kind}", seed=1)
    assert abs(snr_db(x, y) - snr) < 0.1


@pytest.mark.parametrize("kind", ["white", "pink"])
def test_noise_on_digital_silence_adds_nothing(kind):
    silence = np.zeros(SR // 2, dtype=np.float32)  # no level to set an SNR against: no noise, and no NaN
    np.testing.assert_array_equal(perturb(silence, SR, f"noise:snr=10,kind={kind}", seed=0), silence)


def test_noise_from_a_folder_has_the_asked_snr(tmp_path):
    rng = np.random.default_rng(5)
    for index in range(3):
        soundfile.write(tmp_path / f"noise-{index}.wav", 0.1 * rng.standard_normal(SR // 2), SR)
    x = speech_like(1.2)
    y = perturb(x, SR, f"noise:snr=3,folder={tmp_path}", seed=2)
    assert abs(snr_db(x, y) - 3.0) < 0.1


def test_pink_noise_has_more_low_than_high_frequency_power():
    x = speech_like(2.0)
    noise = perturb(x, SR, "noise:snr=0,kind=pink", seed=0).astype(np.float64) - x
    power = np.abs(np.fft.rfft(noise)) ** 2
    frequencies = np.fft.rfftfreq(len(noise), 1 / SR)
    low = power[(frequencies > 100) & (frequencies < 200)].mean()
    high = power[(frequencies > 3200) & (frequencies < 6400)].mean()
    assert 10 * np.log10(low / high) > 10.0  # 1/f: ~ 15 dB between 150 Hz and 4.5 kHz


@pytest.mark.parametrize("spec", RANDOM_CONDITIONS)
def test_random_conditions_repeat_under_a_seed_and_differ_across_seeds(spec):
    x = speech_like(1.0)
    first = perturb(x, SR, spec, seed=(4, 17))
    np.testing.assert_array_equal(first, perturb(x, SR, spec, seed=(4, 17)))
    assert not np.array_equal(first, perturb(x, SR, spec, seed=(4, 18)))
    assert first.shape == x.shape and first.dtype == np.float32


def test_every_condition_keeps_length_and_changes_the_audio():
    x = speech_like(0.7)
    for name in CONDITIONS:
        y = perturb(x, SR, name, seed=0)
        assert y.shape == x.shape, name
        assert not np.allclose(y, x, atol=1e-4), name


def test_packet_loss_zeroes_whole_packets_at_about_the_rate():
    x = speech_like(10.0) + 0.1  # no sample is zero
    y = perturb(x, SR, "packet-loss:rate=0.3,ms=20", seed=0)
    packets = y[: len(y) // 320 * 320].reshape(-1, 320)
    lost = (packets == 0).all(axis=1)
    assert ((packets == 0).any(axis=1) == lost).all()  # a packet is lost whole or not at all
    assert abs(lost.mean() - 0.3) < 0.06  # 500 packets: 3 standard deviations
    np.testing.assert_array_equal(packets[~lost], x[: packets.size].reshape(-1, 320)[~lost])


def test_jitter_replays_the_source_at_most_ms_late():
    x = np.arange(SR, dtype=np.float32)  # each sample names its source position
    y = perturb(x, SR, "jitter:ms=10,packet-ms=20", seed=0)
    lateness = np.arange(SR) - y
    assert lateness.min() >= 0 and lateness.max() <= 160
    assert len(np.unique(lateness.reshape(-1, 320), axis=0)) > 10  # packets are late by different amounts
    assert (np.diff(y.reshape(-1, 320), axis=1) == 1).all()  # inside a packet, playback is continuous


def test_bandpass_keeps_the_telephone_band():
    def gain(frequency: float) -> float:
        x = tone(frequency)
        return snr_db(np.zeros_like(x) + 1e-9, x) - snr_db(np.zeros_like(x) + 1e-9, perturb(x, SR, "bandpass", 0))

    assert abs(gain(1000.0)) < 1.0
    assert gain(100.0) < -15.0 and gain(6000.0) < -15.0


def test_gsm_and_mulaw_at_8k_remove_everything_above_4k():
    x = tone(6000.0)

    def attenuation_db(spec: str) -> float:
        return float(10 * np.log10(np.sum(perturb(x, SR, spec, 0).astype(np.float64) ** 2) / np.sum(x**2.0)))

    for spec in ("gsm", "mulaw", "alaw:rate=8000"):
        assert attenuation_db(spec) < -20.0, spec
    assert attenuation_db("mulaw:rate=16000") > -1.0  # at 16 kHz the tone survives


def test_gain_and_clip_levels():
    x = speech_like(1.0)
    np.testing.assert_allclose(perturb(x, SR, "gain:db=-20", 0), x * 0.1, rtol=1e-6)
    clipped = perturb(x, SR, "clip:db=-6", 0)
    level = np.abs(x).max() * 10 ** (-6 / 20)
    assert abs(np.abs(clipped).max() - level) < 1e-6
    below = np.abs(x) < level
    np.testing.assert_array_equal(clipped[below], x[below])


def test_simulated_reverb_has_a_decaying_tail_and_keeps_timing():
    impulse = np.zeros(SR, dtype=np.float32)
    impulse[1000] = 1.0
    wet = perturb(impulse, SR, "reverb:rt60=0.6", seed=0).astype(np.float64)
    assert int(np.argmax(np.abs(wet))) == 1000  # aligned on the direct path
    early, late = np.sum(wet[1000:2600] ** 2), np.sum(wet[6000:7600] ** 2)
    assert late > 0 and early / late > 10  # energy decays over time (60 dB over 0.6 s is 10 dB per 100 ms)
    dry_room = perturb(impulse, SR, "reverb:rt60=0.15", seed=0).astype(np.float64)
    assert np.sum(dry_room[6000:] ** 2) < np.sum(wet[6000:] ** 2)


def test_measured_rir_folder(tmp_path):
    response = np.zeros(800)
    response[100], response[500] = 1.0, 0.5
    soundfile.write(tmp_path / "rir.wav", response, SR)
    impulse = np.zeros(4000, dtype=np.float32)
    impulse[0] = 1.0
    wet = perturb(impulse, SR, f"reverb:folder={tmp_path}", seed=0)
    scale = 1 / np.sqrt(1.25)  # unit-energy response
    np.testing.assert_allclose(wet[[0, 400]], [scale, 0.5 * scale], atol=1e-4)


def test_chained_conditions_apply_left_to_right():
    x = speech_like(1.0)
    chained = perturb(x, SR, "gain:db=-6+clip:db=-3", seed=0)
    np.testing.assert_allclose(chained, perturb(perturb(x, SR, "gain:db=-6", 0), SR, "clip:db=-3", 0), rtol=1e-6)
    assert str(parse_channel("MP3:32k + noise:snr=5,kind=pink")) == "mp3:bitrate=32k+noise:snr=5,kind=pink"
    assert str(parse_channel("mulaw+g722+noise")) == "mulaw:rate=8000+g722+noise:snr=10"  # main parameter shown


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "empty"),
        ("mp4", "unknown channel condition 'mp4'"),
        ("noise:level=3", "noise takes no parameter 'level'"),
        ("noise:snr=loud", "snr must be a number"),
        ("g722:64k", "expected KEY=VALUE"),
        ("packet-loss:rate=2", r"needs a rate in \[0, 1\]"),
        ("reverb:room=2x2", "three sides"),
    ],
)
def test_bad_specs_name_the_problem(spec, message):
    with pytest.raises(ChannelSpecError, match=message):
        perturb(speech_like(0.2), SR, spec, seed=0)
