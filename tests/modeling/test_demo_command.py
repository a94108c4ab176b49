"""`nes2net demo`, the README's main job, end to end on a tiny model folder."""

from __future__ import annotations

import csv

import pytest

from modeling_nes2net import save_model_folder
from modeling_nes2net.configuration_nes2net import VERDICT_LABELS
from nes2net.cli import main
from modeling_nes2net.examples import espeak_available
from tests.tiny_models import tiny_model


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
def test_demo_scores_generated_and_held_out_examples(tmp_path, mini_antispoof, capsys):
    folder = save_model_folder(tiny_model("spectrogram"), tmp_path / "model")
    output = tmp_path / "out"
    status = main(["demo", "--model", str(folder), "--output-dir", str(output), "--data", str(mini_antispoof)])
    assert status == 0
    rows = list(csv.DictReader((output / "results.csv").open()))
    names = [row["file"] for row in rows]
    assert sum("espeak" in name for name in names) == 3
    assert any("spliced" in name for name in names)
    assert len(rows) == 3 + 1 + 8  # espeak, spliced, 4 held-out clips per label
    assert all(row["label"] in VERDICT_LABELS for row in rows)
    assert (output / "timeline.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "labelled examples classified correctly" in printed
    assert "spoofed stretches:" in printed
    assert "spliced example: synthetic sentence at " in printed and ": IoU " in printed


def test_demo_without_a_model_fails_with_one_line(tmp_path, capsys):
    status = main(["demo", "--model", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "out")])
    assert status == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("nes2net demo: error:") and "missing" in error and "\n" not in error


def test_held_out_clips_span_systems(mini_antispoof):
    from modeling_nes2net.commands.demo import held_out_clips

    clips = held_out_clips(mini_antispoof, per_label=3)
    assert [label for _, label in clips] == ["bonafide"] * 3 + ["spoof"] * 3
    assert all(path.is_file() for path, _ in clips)
    assert len({path.name.split("__")[0] for path, _ in clips}) >= 4
