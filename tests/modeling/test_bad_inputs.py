"""The files every decoding surface refuses (`tests/hostile/make_corpus.py`) against every surface that reads audio:
the detection API, the `nes2net detect` command in its own process, `nes2net evaluate` and
`pipeline("audio-classification")`. Tones, noise and clips too short are refused as not speech-like
(`modeling_nes2net.input_check`). Each bad file gets its one-line message naming it; every good file in the same run
is still scored and written."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests.modeling.detection_audio import single_torch_thread  # noqa: F401  (a fixture, used through pytestmark)
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification, pipeline

from modeling_nes2net.audio import AudioInputError, printable
from nes2net.cli import main
from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.scorer import DetectionFailure
from tests.hostile.make_corpus import HostileCase, write_bad_inputs, write_good_inputs

pytestmark = pytest.mark.usefixtures("single_torch_thread")
REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "inputs"
    return write_bad_inputs(folder), write_good_inputs(folder)


def _one_line_error(errors: list[str], bad) -> str:
    expected = f"{printable(bad.path)}: "
    (line,) = [line for line in errors if line.startswith(expected)]
    assert "\n" not in line and bad.detect in line, (bad.kind, line)
    return line


def test_the_detection_api_names_every_bad_file_and_scores_the_rest(model_dir, corpus):
    bad, good = corpus
    sources = [str(path) for pair in zip(good, [b.path for b in bad]) for path in pair] + \
        [str(b.path) for b in bad[len(good):]]
    outcomes = list(Nes2NetDetector.from_pretrained(str(model_dir), device="cpu", batch_size=2).detect_many(sources))
    assert [outcome.source for outcome in outcomes] == sources  # in order, one outcome each
    failures = [outcome.error for outcome in outcomes if isinstance(outcome, DetectionFailure)]
    for item in bad:
        _one_line_error(failures, item)
    scored = {outcome.source for outcome in outcomes if not isinstance(outcome, DetectionFailure)}
    assert scored == {str(path) for path in good}


@contextlib.contextmanager
def _unblocked_after(fifo: Path, seconds: float):
    """Fail the test, rather than hang it, when the block opens `fifo` for reading and waits: after `seconds` a
    writer opens and closes it (the reader then sees an empty stream) and the block is reported as blocked."""
    done, unblocked = threading.Event(), threading.Event()

    def unblock() -> None:
        if done.wait(seconds):
            return
        while not done.is_set():
            with contextlib.suppress(OSError):  # ENXIO: no reader is waiting (yet)
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                unblocked.set()
            done.wait(0.5)

    watchdog = threading.Thread(target=unblock, daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        done.set()
        watchdog.join()
        assert not unblocked.is_set(), f"blocked on the FIFO {fifo} for {seconds} s"


def test_the_pipeline_refuses_each_bad_file_with_the_line_detect_gives_and_scores_the_rest(model_dir, corpus):
    bad, good = corpus
    detector = Nes2NetDetector.from_pretrained(str(model_dir), device="cpu")
    classify = pipeline("audio-classification", model=str(model_dir), device="cpu")
    missing = HostileCase("missing", good[0].parent / "missing.wav", "no such file", "not found")
    refused = [*bad, missing]
    assert {item.kind for item in refused} >= {"fifo", "missing", "nan", "truncated", "png as flac", "silent",
                                               "square wave", "short clip", "broken scale", "truncated mp3"}
    for item in refused:
        with pytest.raises(AudioInputError) as from_detect:
            detector.detect(str(item.path))
        guard = _unblocked_after(item.path, seconds=20) if item.kind == "fifo" else contextlib.nullcontext()
        with guard, pytest.raises(AudioInputError) as from_pipeline:
            classify(str(item.path))
        assert str(from_pipeline.value) == str(from_detect.value)
        _one_line_error([str(from_pipeline.value)], item)
    for path in good:
        scores = {entry["label"]: entry["score"] for entry in classify(str(path))}
        assert scores.keys() == {"spoof", "bonafide"} and sum(scores.values()) == pytest.approx(1.0, abs=1e-5)


def test_the_pipeline_of_other_models_reads_files_as_transformers_does(tmp_path):
    config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                            conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=4,
                            num_conv_pos_embedding_groups=2, num_labels=2, classifier_proj_size=8)
    Wav2Vec2ForSequenceClassification(config).save_pretrained(tmp_path / "other")
    Wav2Vec2FeatureExtractor().save_pretrained(tmp_path / "other")
    classify = pipeline("audio-classification", model=str(tmp_path / "other"), device="cpu")
    with pytest.raises(FileNotFoundError):  # transformers' own open(), not `AudioInputError`
        classify(str(tmp_path / "missing.wav"))


def _detect_process(*arguments: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPOSITORY),
                                                                             os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "nes2net", "detect", *arguments], capture_output=True,
                          text=True, env=environment, timeout=300)


def test_the_detect_command_reports_each_bad_file_on_one_line_and_writes_every_good_one(model_dir, corpus, tmp_path):
    bad, good = corpus
    output = tmp_path / "out" / "scores.csv"
    completed = _detect_process(str(good[0].parent), "--recursive", "--model", str(model_dir), "--format", "csv",
                                "--output", str(output), "--device", "cpu")
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    errors = [line.strip() for line in completed.stderr.splitlines()]
    assert f"{len(bad)} of {len(bad) + len(good)} inputs failed:" in errors
    for item in bad:
        _one_line_error(errors, item)
    assert not output.with_name(output.name + ".partial").exists()
    rows = list(csv.DictReader(io.StringIO(output.read_text(encoding="utf-8"))))
    assert sorted(row["file"] for row in rows) == sorted(str(path) for path in good)  # the newline survives quoted


def _detect(capsys, *arguments) -> tuple[int, str, str]:
    code = main(["detect", *map(str, arguments)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_score_file_ids_are_unique_and_keep_two_fields_whatever_the_names(capsys, model_dir, corpus, tmp_path):
    _, good = corpus
    code, out, _ = _detect(capsys, good[0].parent, "--recursive", "--model", model_dir, "--format", "asvspoof")
    lines = out.splitlines()
    assert code == 1 and len(lines) == len(good)
    assert all(len(line.split(" ")) == 2 for line in lines)  # no name can add a field or a line
    ids = [line.split(" ")[0] for line in lines]
    assert len(set(ids)) == len(ids)
    assert "line%0Abreak" in ids and "two%20words%20100%25" in ids
    assert sorted(identifier.rsplit("/", 2)[-2] for identifier in ids if "same" in identifier) == ["a", "b"]


def test_json_output_is_valid_and_holds_every_good_file(capsys, model_dir, corpus, tmp_path):
    _, good = corpus
    output = tmp_path / "scores.json"
    code, _, err = _detect(capsys, *good, good[0].parent / "truncated.wav", "--model", model_dir, "--format", "json",
                           "--output", output, "--segments")
    assert code == 1 and "truncated.wav: truncated" in err
    results = json.loads(output.read_text(encoding="utf-8"), parse_constant=pytest.fail)  # NaN would fail here
    assert [result["file"] for result in results] == [str(path) for path in good]


def test_an_output_that_cannot_be_written_stops_the_run_before_scoring(capsys, corpus, tmp_path):
    _, good = corpus
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    code, out, err = _detect(capsys, good[0], "--model", tmp_path / "never-loaded", "--output", blocker / "x.csv")
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"nes2net detect: error: {blocker / 'x.csv'}: cannot be written")


def test_a_killed_run_keeps_every_finished_row(model_dir, tmp_path):
    folder = tmp_path / "many"
    paths = write_good_inputs(folder / "first") + [path for index in range(10)
                                                    for path in write_good_inputs(folder / f"more{index:02d}")]
    output = tmp_path / "scores.csv"
    partial = output.with_name(output.name + ".partial")
    environment = dict(os.environ, PYTHONPATH=str(REPOSITORY))
    process = subprocess.Popen([sys.executable, "-m", "nes2net", "detect", str(folder), "--recursive",
                                "--model", str(model_dir), "--format", "csv", "--output", str(output),
                                "--batch-size", "1", "--device", "cpu"], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while process.poll() is None and (not partial.exists() or partial.read_text().count("\n") < 3):
            time.sleep(0.02)
    finally:
        process.kill()
        process.wait()
    assert not output.exists(), "the run finished before it could be killed"
    rows = list(csv.reader(io.StringIO(partial.read_text(encoding="utf-8"))))
    assert 3 <= len(rows) < len(paths)
    assert all(row[0] in {str(path) for path in paths} and len(row) == 9 for row in rows)
