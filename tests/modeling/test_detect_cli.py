"""`nes2net detect` end to end on real files: output formats, failures, exit codes, atomic outputs, plots."""

from __future__ import annotations

import csv
import io
import json

import pytest
import soundfile
import torch
from tests.modeling.detection_audio import single_torch_thread  # noqa: F401  (a fixture, used through pytestmark)
from tests.modeling.detection_audio import write_audio
from tests.tiny_models import tiny_model

from modeling_nes2net import save_model_folder
from nes2net.cli import main
from modeling_nes2net import model_loading


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(save_model_folder(tiny_model(), tmp_path_factory.mktemp("tiny") / "model"))


@pytest.fixture
def clips(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    return [write_audio(folder / "a.wav", 1.0), write_audio(folder / "b.flac", 5.0, rate=44_100, channels=2)]


def _detect(capsys, *args) -> tuple[int, str, str]:
    code = main(["detect", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_scores_equal_the_model(capsys, model_dir, clips):
    code, out, _ = _detect(capsys, clips[0], "--model", model_dir, "--format", "json", "--protocol", "full")
    assert code == 0
    (result,) = json.loads(out)
    model = tiny_model()
    with torch.inference_mode():
        logits = model(torch.from_numpy(soundfile.read(clips[0], dtype="float32")[0])[None]).logits[0]
    assert result["file"] == str(clips[0])
    assert result["score"] == pytest.approx(float(logits[1]), abs=1e-5)
    assert result["bonafide_probability"] == pytest.approx(float(torch.softmax(logits, -1)[1]), abs=1e-5)
    assert result["label"] in ("bonafide", "spoof") and result["threshold"] == 0.0 and "segments" not in result


def test_folder_csv_with_segments(capsys, model_dir, clips):
    code, out, _ = _detect(capsys, clips[0].parent, "--model", model_dir, "--format", "csv", "--segments")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    # 5 s: windows at 0 and 0.96 s (the last one aligned to the end)
    assert [row["file"] for row in rows] == [str(clips[0])] + [str(clips[1])] * 2
    assert [float(row["start"]) for row in rows[1:]] == pytest.approx([0.0, 5.0 - 4.0375])
    assert all(row["label"] in ("bonafide", "spoof") and 0 <= float(row["probability"]) <= 1 for row in rows)


def test_asvspoof_format_and_atomic_output(capsys, model_dir, clips, tmp_path):
    output = tmp_path / "out" / "scores.txt"
    code, out, _ = _detect(capsys, *clips, "--model", model_dir, "--format", "asvspoof", "--output", output)
    assert code == 0 and out == ""
    lines = output.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["a", "b"]
    assert all(len(line.split()) == 2 and float(line.split()[1]) == float(line.split()[1]) for line in lines)
    assert sorted(p.name for p in output.parent.iterdir()) == ["scores.txt"]  # no temporary left behind


def test_bad_files_are_reported_and_make_the_exit_status_non_zero(capsys, model_dir, clips, tmp_path):
    (tmp_path / "broken.wav").write_text("not audio at all")
    (tmp_path / "empty.mp3").write_bytes(b"")
    (tmp_path / "no_audio").mkdir()
    (tmp_path / "no_audio" / "notes.txt").write_text("nothing to hear")
    code, out, err = _detect(capsys, clips[0], tmp_path / "broken.wav", tmp_path / "no_audio",
                             tmp_path / "empty.mp3", clips[1], "--model", model_dir)
    assert code == 1
    table = out.splitlines()
    assert table[0].split()[:2] == ["file", "label"] and len(table) == 3  # header + the two good clips
    assert "3 of 5 inputs failed:" in err
    assert f"{tmp_path / 'broken.wav'}: cannot decode audio" in err
    assert f"{tmp_path / 'empty.mp3'}: empty file" in err
    assert f"{tmp_path / 'no_audio'}: no audio files found" in err


def test_recursive_threshold_and_plot(capsys, model_dir, clips, tmp_path):
    nested = clips[0].parent / "nested"
    nested.mkdir()
    write_audio(nested / "c.wav", 0.5)
    plot = tmp_path / "timeline.png"
    code, out, _ = _detect(capsys, clips[0].parent, "--recursive", "--model", model_dir, "--threshold", "1000",
                           "--format", "json", "--plot", plot)
    assert code == 0
    results = json.loads(out)
    assert [r["file"].rsplit("/", 1)[-1] for r in results] == ["a.wav", "b.flac", "c.wav"]
    assert all(r["label"] == "spoof" and r["threshold"] == 1000 for r in results)
    pngs = sorted(p.name for p in tmp_path.glob("timeline-*.png"))
    assert pngs == ["timeline-a.png", "timeline-b.png", "timeline-c.png"]
    assert (tmp_path / "timeline-c.png").read_bytes()[:4] == b"\x89PNG"


def test_missing_default_model_explains_how_to_get_one(capsys, clips, tmp_path, monkeypatch):
    monkeypatch.setattr(model_loading, "DEFAULT_MODEL_DIR", tmp_path / "no-default-model")  # an install without one
    code, _, err = _detect(capsys, clips[0])
    assert code == 2 and "nes2net convert" in err and "--model" in err
