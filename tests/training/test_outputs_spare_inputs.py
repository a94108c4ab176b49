"""Outputs never destroy inputs: `detect --output`, `fuse --output`, `calibrate` and `export onnx` refuse, in one
line and before any work, to write onto an input or (without `--overwrite`) into a folder of someone else's files;
`fuse` refuses score files whose labels contradict each other."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from modeling_nes2net import save_model_folder
from nes2net.cli import main
from tests.hostile.make_corpus import speech_like
from tests.tiny_models import tiny_model
from training.score_files import ScoreTable, read_scores, write_scores


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_model_folder(tiny_model("spectrogram"), tmp_path_factory.mktemp("tiny") / "model")


def _score_file(path, seed: int, flip: bool = False):
    rng = np.random.default_rng(seed)
    labels = np.array([1] * 20 + [0] * 20)
    scores = np.where(labels == 1, 2.0, -2.0) + rng.standard_normal(labels.size)
    write_scores(path, ScoreTable([f"u{i}" for i in range(labels.size)], scores, 1 - labels if flip else labels))
    return path


def _refused(capsys, argv, *must_contain: str) -> None:
    """`nes2net ARGV` exits 2 with one error line holding `must_contain`."""
    code = main(list(map(str, argv)))
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert code == 2 and len(errors) == 1, errors
    assert all(text in errors[0] for text in must_contain), errors[0]


def test_detect_refuses_to_write_its_results_onto_the_recording(capsys, model_dir, tmp_path):
    clip = tmp_path / "x.wav"
    soundfile.write(clip, speech_like(1.0), 16_000)
    before = clip.read_bytes()
    _refused(capsys, ["detect", clip, "--model", model_dir, "--output", clip], "the output is the input")
    _refused(capsys, ["detect", tmp_path, "--model", model_dir, "--format", "csv", "--output", tmp_path / "x.wav"],
             "the output is the input")
    assert clip.read_bytes() == before


def test_fuse_refuses_to_write_onto_a_score_file(capsys, tmp_path):
    first, second = _score_file(tmp_path / "a.csv", 0), _score_file(tmp_path / "b.csv", 1)
    before = second.read_bytes()
    _refused(capsys, ["fuse", first, second, "--output", second], "the output is the input")
    assert second.read_bytes() == before and not (tmp_path / "fusion.json").exists()


def test_fuse_refuses_score_files_whose_labels_contradict(capsys, tmp_path):
    first, flipped = _score_file(tmp_path / "a.csv", 0), _score_file(tmp_path / "b.csv", 1, flip=True)
    _refused(capsys, ["fuse", first, flipped, "--output", tmp_path / "fused.csv"],
             f"{flipped}: 40 trial(s) labelled otherwise than in {first}")
    assert not (tmp_path / "fused.csv").exists()


@pytest.mark.parametrize("target", ["score file", "model folder", "unrelated folder"])
def test_calibrate_never_replaces_an_input_or_someone_elses_folder(capsys, model_dir, tmp_path, target):
    scores = _score_file(tmp_path / "dev.csv", 0)
    unrelated = tmp_path / "notes"
    unrelated.mkdir()
    (unrelated / "keep.txt").write_text("mine")
    output = {"score file": scores, "model folder": model_dir, "unrelated folder": unrelated}[target]
    files_before = {path: path.read_bytes() for path in [scores, *model_dir.rglob("*"), unrelated / "keep.txt"]
                    if path.is_file()}
    message = "non-empty folder" if target == "unrelated folder" else "the output"
    _refused(capsys, ["calibrate", model_dir, scores, output], message)
    assert {path: path.read_bytes() for path in files_before} == files_before
    assert read_scores(scores).utt_ids[0] == "u0"
    assert main(["calibrate", str(model_dir), str(scores), str(unrelated), "--overwrite"]) == 0
    assert (unrelated / "config.json").is_file() and not (unrelated / "keep.txt").exists()


def test_export_onnx_never_deletes_files_it_did_not_write(capsys, model_dir, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    _refused(capsys, ["export", "onnx", model_dir, folder], "non-empty folder", "--overwrite")
    _refused(capsys, ["export", "onnx", model_dir, model_dir], "the output is the input")
    assert (folder / "keep.txt").read_text() == "mine" and (model_dir / "config.json").is_file()
