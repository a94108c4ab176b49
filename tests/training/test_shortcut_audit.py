"""The shortcut audit measures the cues it names, finds a planted shortcut, and `ShortcutRemoval` takes it away."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import scipy.signal
import soundfile

from training.shortcut_audit import (
    STATISTICS,
    ShortcutRemoval,
    audit_clips,
    clip_statistics,
    main,
    run_audit,
)

RATE = 16000


def _speech_like(seconds: float, rng: np.random.Generator, level: float = 0.1, nyquist: float | None = None):
    """Amplitude-modulated noise (syllable-like bursts), optionally low-passed to `nyquist` Hz."""
    samples = round(seconds * RATE)
    noise = rng.standard_normal(samples)
    if nyquist is not None:
        noise = scipy.signal.sosfiltfilt(scipy.signal.butter(10, nyquist, fs=RATE, output="sos"), noise)
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * np.arange(samples) / RATE)
    signal = noise * envelope
    return level * signal / np.sqrt(np.mean(signal**2))


def _padded(speech: np.ndarray, lead_s: float, trail_s: float) -> np.ndarray:
    return np.concatenate([np.zeros(round(lead_s * RATE)), speech, np.zeros(round(trail_s * RATE))])


def test_clip_statistics_measure_silence_level_and_bandwidth():
    rng = np.random.default_rng(0)
    speech = _speech_like(1.5, rng, level=0.05, nyquist=4000)
    waveform = _padded(speech, 0.5, 0.3)
    statistics = clip_statistics(waveform)
    assert set(statistics) == set(STATISTICS)
    assert statistics["duration_s"] == pytest.approx(2.3)
    assert statistics["leading_silence_s"] == pytest.approx(0.5, abs=0.03)
    assert statistics["trailing_silence_s"] == pytest.approx(0.3, abs=0.03)
    expected_rms_db = 10 * np.log10(np.mean(waveform**2))
    assert statistics["rms_dbfs"] == pytest.approx(expected_rms_db, abs=1e-6)
    assert statistics["peak_dbfs"] == pytest.approx(20 * np.log10(np.abs(waveform).max()), abs=1e-6)
    assert 3000 < statistics["rolloff_hz"] <= 4300
    assert 3800 < statistics["cutoff_hz"] < 5500
    wideband = clip_statistics(_speech_like(1.5, rng))
    assert wideband["cutoff_hz"] > 7500 and wideband["leading_silence_s"] < 0.03


def test_shortcut_removal_trims_levels_and_band_limits_reproducibly():
    rng = np.random.default_rng(1)
    waveform = _padded(_speech_like(2.0, rng, level=0.3), 1.0, 0.7)
    removal = ShortcutRemoval(band_limit_p=1.0, band_limit_hz=(4000,))
    first = removal(waveform, RATE, np.random.default_rng(7))
    again = removal(waveform, RATE, np.random.default_rng(7))
    np.testing.assert_array_equal(first, again)
    assert first.dtype == np.float32
    assert len(first) == pytest.approx(2.0 * RATE, abs=0.05 * RATE)
    statistics = clip_statistics(first)
    assert statistics["leading_silence_s"] < 0.03 and statistics["trailing_silence_s"] < 0.03
    assert -32.5 <= statistics["rms_dbfs"] <= -17.5
    assert statistics["cutoff_hz"] < 4300
    other = ShortcutRemoval(band_limit_p=0.0)(waveform, RATE, np.random.default_rng(8))
    assert clip_statistics(other)["cutoff_hz"] > 7500
    assert clip_statistics(other)["rms_dbfs"] != pytest.approx(statistics["rms_dbfs"], abs=0.01)


def test_a_short_clip_keeps_at_least_the_minimum_length():
    waveform = _padded(_speech_like(0.2, np.random.default_rng(2)), 0.5, 0.5)
    trimmed = ShortcutRemoval(min_seconds=1.0, band_limit_p=0.0)(waveform, RATE, np.random.default_rng(0))
    assert len(trimmed) == RATE


def _write_corpus(root, rng, planted: bool) -> None:
    """20 clips per class and split; with `planted`, only the bona fide clips carry leading silence."""
    rows = []
    for split in ("train", "test"):
        for label in ("bonafide", "spoof"):
            for index in range(20):
                lead = rng.uniform(0.4, 0.8) if planted and label == "bonafide" else rng.uniform(0.0, 0.02)
                waveform = _padded(_speech_like(rng.uniform(1.0, 1.5), rng), lead, 0.05)
                name = f"audio/{split}/{label}/{index}.flac"
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                soundfile.write(root / name, waveform, RATE)
                rows.append({"file_name": name, "label": label, "split": split, "system": label})
    with open(root / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_the_audit_finds_a_planted_shortcut_and_removal_takes_it_away(tmp_path):
    _write_corpus(tmp_path, np.random.default_rng(3), planted=True)
    (before,) = run_audit(audit_clips([tmp_path], progress=False))
    assert before.subset == "test" and (before.bonafide, before.spoof) == (20, 20)
    assert before.classifier_eer < 10.0
    assert before.statistic_eers["leading_silence_s"] < 10.0
    (after,) = run_audit(audit_clips([tmp_path], ShortcutRemoval(), progress=False))
    assert after.classifier_eer > 25.0
    assert after.statistic_eers["leading_silence_s"] > 25.0


def test_the_cli_prints_a_table_and_names_a_missing_metadata_file(tmp_path, capsys):
    _write_corpus(tmp_path, np.random.default_rng(4), planted=False)
    assert main([str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].startswith("| subset | bona fide | spoof | classifier EER %")
    assert "| test | 20 | 20 |" in table
    assert main([str(tmp_path / "nowhere")]) == 2
    assert f"{tmp_path / 'nowhere' / 'metadata.csv'}: not found" in capsys.readouterr().err


@pytest.mark.slow
def test_removal_raises_the_audit_eer_on_real_audio(mini_antispoof):
    before = {row.subset: row for row in run_audit(audit_clips([mini_antispoof], progress=False))}
    after = {row.subset: row for row in run_audit(audit_clips([mini_antispoof], ShortcutRemoval(), progress=False))}
    assert after["test"].classifier_eer > before["test"].classifier_eer
