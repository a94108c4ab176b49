"""The shortcut audit measures the cues it names, finds a planted shortcut, and `ShortcutRemoval` takes it away."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import scipy.signal
import soundfile

from training.shortcut_audit import (
    RENDERED_BEGIN,
    RENDERED_END,
    STATISTICS,
    ShortcutRemoval,
    audit_clips,
    audit_sets,
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


def _write_corpus(root, rng, planted: bool, longer_spoofs: bool = False) -> None:
    """20 clips per class and split; with `planted`, only the bona fide clips carry leading silence; with
    `longer_spoofs`, the spoofed clips are 2-3 s long and the bona fide ones 1-1.5 s (as short zero-shot prompts)."""
    rows = []
    for split in ("train", "test"):
        for label in ("bonafide", "spoof"):
            for index in range(20):
                lead = rng.uniform(0.4, 0.8) if planted and label == "bonafide" else rng.uniform(0.0, 0.02)
                seconds = rng.uniform(2.0, 3.0) if longer_spoofs and label == "spoof" else rng.uniform(1.0, 1.5)
                waveform = _padded(_speech_like(seconds, rng), lead, 0.05)
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
    assert "| subset | bona fide | spoof | classifier EER %" in table
    assert "| test | 20 | 20 |" in table
    assert main([str(tmp_path / "nowhere")]) == 2
    assert f"{tmp_path / 'nowhere' / 'metadata.csv'}: not found" in capsys.readouterr().err


def test_each_set_shows_whether_duration_alone_separates_its_classes(tmp_path):
    _write_corpus(tmp_path / "prompts", np.random.default_rng(5), planted=False, longer_spoofs=True)
    _write_corpus(tmp_path / "even", np.random.default_rng(6), planted=False)
    prompts, even = audit_sets(audit_clips([tmp_path / "prompts", tmp_path / "even"], progress=False))
    assert (prompts.corpus, even.corpus) == ("prompts", "even")
    assert (prompts.bonafide, prompts.spoof) == (40, 40)
    assert prompts.separation_all["duration_s"].auc == 100.0 and prompts.separation_all["duration_s"].eer == 0.0
    assert prompts.separation_test["duration_s"].auc == 100.0
    assert even.separation_all["duration_s"].auc < 75.0 and even.separation_all["duration_s"].eer > 25.0
    assert [row.subset for row in prompts.rows] == ["test"] and prompts.rows[0].classifier_eer < 10.0


def test_the_report_is_written_as_json_and_rendered_into_the_markdown_between_its_markers(tmp_path, capsys):
    _write_corpus(tmp_path / "prompts", np.random.default_rng(7), planted=False, longer_spoofs=True)
    report_file, doc = tmp_path / "report.json", tmp_path / "doc.md"
    assert main([str(tmp_path / "prompts"), "--json", str(report_file)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(report_file.read_text())
    (prompts,) = report["sets"]
    duration = prompts["separation_all"]["duration_s"]
    begin, end = RENDERED_BEGIN.format(kind="as stored"), RENDERED_END.format(kind="as stored")
    removed = (RENDERED_BEGIN.format(kind="after ShortcutRemoval") + "\nother figures\n"
               + RENDERED_END.format(kind="after ShortcutRemoval"))
    doc.write_text(f"# Audit\nintro\n{begin}\nstale figures\n{end}\n{removed}\n")
    assert main(["--render", str(report_file), str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith(f"# Audit\nintro\n{begin}\n") and text.endswith(f"{end}\n{removed}\n")
    assert "stale figures" not in text and printed.strip() in text
    assert f"| prompts, all clips | 40 / 40 | {duration['auc']:.1f} / {duration['eer']:.1f} |" in text
    doc.write_text("no markers\n")
    assert main(["--render", str(report_file), str(doc)]) == 2
    assert "needs exactly one pair of shortcut-audit report markers" in capsys.readouterr().err


@pytest.mark.slow
def test_removal_raises_the_audit_eer_on_real_audio(mini_antispoof):
    before = {row.subset: row for row in run_audit(audit_clips([mini_antispoof], progress=False))}
    after = {row.subset: row for row in run_audit(audit_clips([mini_antispoof], ShortcutRemoval(), progress=False))}
    assert after["test"].classifier_eer > before["test"].classifier_eer
