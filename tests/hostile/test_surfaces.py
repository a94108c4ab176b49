"""The hostile-input corpus (`make_corpus.py`) through the surfaces `test_corpus.py` does not run: the pipeline, the
Space (uploads and the live `/listen` endpoint, on the real app), `evaluate`, `train` resume, `calibrate`, `fuse`,
`export onnx`, `space` and `push --dry-run`. Each bad input ends in one line naming it, a run with a bad input fails,
the good inputs of the same run are still processed, and nothing outside the command's own output changes (the
inputs are fingerprinted before and after, `snapshot`)."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
from gradio_client import Client, handle_file
from safetensors.torch import load_file, save_file
from transformers import pipeline

from modeling_nes2net.audio import AudioInputError, printable
from nes2net.cli import main
from tests.hostile.make_corpus import HostileCase, snapshot, speech_like, wav_bytes, write_corpus
from tests.training.train_helpers import write_unchecked_set
from training.checkpoints import TRAINER_STATE
from training.score_files import ScoreTable, write_scores

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "space"))  # the app's own package, nes2net_space
from nes2net_space.harness import start_space  # noqa: E402
from nes2net_space.models import display_name  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the corpus is encoded by the ffmpeg executable")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[HostileCase]]:
    folder = tmp_path_factory.mktemp("hostile") / "corpus"
    return folder, write_corpus(folder)


def _uploadable(cases: list[HostileCase]) -> list[HostileCase]:
    """The cases a visitor can upload: regular files (a FIFO or a link loop exists only on the server's disk)."""
    return [case for case in cases if case.path.is_file()]


def test_the_pipeline_refuses_each_hostile_file_with_the_line_of_detect_and_scores_the_rest(corpus, model_dir):
    folder, cases = corpus
    before = snapshot(folder)
    classify = pipeline("audio-classification", model=str(model_dir), device="cpu")
    for case in cases:
        if case.detect is None:
            assert {entry["label"] for entry in classify(str(case.path))} == {"bonafide", "spoof"}, case.kind
            continue
        with pytest.raises(AudioInputError) as refused:
            classify(str(case.path))
        line = str(refused.value)
        assert "\n" not in line and line.startswith(f"{printable(case.path)}: ") and case.detect in line, case.kind
    assert snapshot(folder) == before


@pytest.fixture(scope="module")
def space(tmp_path_factory, model_dir, corpus):
    """The app on 127.0.0.1 offering the tiny model, with room for the whole corpus in one batch: `(server, client,
    model choice)`."""
    batch = str(len(corpus[1]) + 1)
    server = start_space(tmp_path_factory.mktemp("space"), ["--model", str(model_dir), "--max-batch-files", batch,
                                                             "--max-client-files", batch, "--threads", "1"])
    yield server, Client(server.url, verbose=False, download_files=False), display_name(str(model_dir))
    server.stop()


def test_a_space_batch_names_each_hostile_upload_in_its_row_and_scores_the_rest(space, corpus):
    folder, cases = corpus
    server, client, model = space
    uploads = _uploadable(cases)
    before = snapshot(folder)
    summary, table, _ = client.predict([handle_file(case.path) for case in uploads], model, "mean",
                                       api_name="/detect_batch")
    assert snapshot(folder) == before
    rows = {row[0]: row for row in table["data"]}
    assert list(rows) == [case.path.name for case in uploads]
    refused = [case for case in uploads if case.detect is not None]
    assert refused and summary.startswith(f"**{len(uploads) - len(refused)} of {len(uploads)} files scored**")
    for case in uploads:
        label, error = rows[case.path.name][1], rows[case.path.name][-1]
        if case.detect is None:
            assert label in ("bonafide", "spoof") and error == "", (case.kind, error)
        else:
            assert label == "" and error.startswith(f"{case.path.name}: ") and case.detect in error, (case.kind, error)
            assert "\n" not in error


@pytest.fixture(scope="module")
def listen(model_dir):
    """The app's `/listen` handler (gradio_client cannot drive a streaming event): `listen(chunk, session)`."""
    import app  # space/app.py, on the path with its package
    from nes2net_space.inputs import Limits
    from nes2net_space.models import ModelRegistry
    from nes2net_space.uploads import UploadLedger, UploadLimits

    demo = app.build_demo(ModelRegistry([str(model_dir)], device="cpu"), Limits(), [], UploadLedger(UploadLimits()))
    handler = next(event.fn for event in demo.fns.values() if event.api_name == "listen")
    return lambda chunk, session: handler(str(chunk), session, display_name(str(model_dir)), "mean")


def test_the_live_endpoint_refuses_each_chunk_that_is_not_a_microphone_wav_in_one_line(listen, corpus, tmp_path):
    import gradio as gr

    folder, cases = corpus
    speech = tmp_path / "chunk.wav"
    speech.write_bytes(wav_bytes(speech_like(0.5)))
    refusals = {
        "empty": "not a WAV recording", "corrupt": "not a WAV recording", "png as flac": "not a WAV recording",
        "text as wav": "not a WAV recording", "hls playlist": "not a WAV recording",
        "truncated mp3": "not a WAV recording", "streamed flac": "not a WAV recording",
        "wrong rate": "implausible sampling rate in its header (1 Hz", "nan": "not 16-bit PCM",
        "broken scale": "not 16-bit PCM",
    }
    chosen = {case.kind: case for case in cases if case.kind in refusals}
    assert chosen.keys() == refusals.keys()
    before = snapshot(folder)
    session, _, _ = listen(speech, None)
    for kind, case in chosen.items():
        with pytest.raises(gr.Error) as refused:
            listen(case.path, session)
        line = refused.value.message
        assert "\n" not in line and line.startswith("live microphone chunk: ") and refusals[kind] in line, (kind, line)
    session, verdict, _ = listen(speech, session)  # the session goes on with the next good chunk
    assert session.seconds == pytest.approx(1.0) and "1.0 s" in verdict
    assert snapshot(folder) == before


def _error_lines(capsys, caplog) -> list[str]:
    """What a command reported as an error: its `error:` lines on stderr and what it logged at ERROR."""
    lines = [line.strip() for line in capsys.readouterr().err.splitlines() if "error:" in line]
    return lines + [line for record in caplog.records if record.levelno >= logging.ERROR
                    for line in record.getMessage().splitlines()]


def _run(capsys, caplog, *argv) -> tuple[int, list[str]]:
    capsys.readouterr()
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        code = main([str(word) for word in argv])
    return code, _error_lines(capsys, caplog)


def test_evaluate_names_each_hostile_trial_and_scores_the_rest(corpus, model_dir, tmp_path, capsys, monkeypatch):
    """A set written by other tools may hold what `data build` refuses: each such trial is named on one line of the
    parts, the run fails with one line, every other trial is scored. Benchmark trials are scored as listed, so what
    is only not speech-like (silence, a tone, noise, a short clip) is scored."""
    folder, cases = corpus
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    files = _uploadable(cases)
    built = write_unchecked_set(tmp_path / "built", [(f"test/{index:02d}_{case.path.name}", "spoof", "test",
                                                      case.path.read_bytes()) for index, case in enumerate(files)])
    scored_as_listed = {"silent", "dc only", "square wave", "white noise", "short clip"}
    expected = {index: {"empty": "empty input (0 bytes)", "broken scale": "the model gave non-finite scores"}.get(
        case.kind, case.detect) for index, case in enumerate(files)
        if case.detect is not None and case.kind not in scored_as_listed}
    before = snapshot(tmp_path / "built")
    code = main(["evaluate", "--num-workers", "0", "--bootstrap", "0", str(model_dir), str(built), "--output-dir",
                 str(tmp_path / "out")])
    assert snapshot(tmp_path / "built") == before
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert code == 1 and f"{len(expected)} of {len(files)} trials cannot be scored" in line
    parts = [entry.split("\t") for part in (tmp_path / "out" / "parts").glob("part-*.tsv")
             for entry in part.read_text(encoding="utf-8").splitlines()]
    errors = {int(fields[0]): fields[2] for fields in parts if len(fields) == 3}
    assert sorted(int(fields[0]) for fields in parts if len(fields) == 2) == sorted(set(range(len(files))) - set(expected))
    for index, message in expected.items():
        name = f"test/{index:02d}_{files[index].path.stem}"
        assert errors[index].startswith(f"{name}: ") and message in errors[index], (files[index].kind, errors[index])


def test_train_resume_sets_a_tampered_checkpoint_aside_naming_it_and_trains_on(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    built = write_unchecked_set(tmp_path / "built", [
        (f"train/{index}.wav", ("bonafide", "spoof")[index % 2], "train", wav_bytes(speech_like(0.5, seed=index)))
        for index in range(2)])
    settings = ["data.dev_split=null", "data.crop_samples=4000", "training.batch_size=1", "training.epochs=2",
                "evaluation=[]"]
    run = tmp_path / "run"

    def train() -> int:
        return main(["train", "mini", "--dataset", str(built), "--output-dir", str(run),
                     *(word for setting in settings for word in ("--set", setting))])

    assert train() == 0
    newest = run / "checkpoints" / "step-00000004" / TRAINER_STATE
    newest.write_text(json.dumps({**json.loads(newest.read_text()), "injected": 1}))
    before = snapshot(built)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert train() == 0
    assert snapshot(built) == before
    (warning,) = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert "\n" not in warning and f"{newest}: not a state this run can continue from" in warning
    assert (run / "checkpoints" / "step-00000004.damaged" / TRAINER_STATE).is_file()
    assert (run / "checkpoints" / "step-00000004" / TRAINER_STATE).is_file()  # resumed at step 2, epoch 2 trained again


@pytest.fixture(scope="module")
def score_files(tmp_path_factory) -> tuple[Path, list[Path], dict[str, tuple[Path, str]]]:
    """`(folder, good score files, {kind: (hostile score file, what its line says)})`: two systems' log-odds of the
    same 40 trials, and files no fit or metric can take."""
    folder = tmp_path_factory.mktemp("scores")
    labels = np.array([1] * 20 + [0] * 20)
    good = []
    for seed in (0, 1):
        scores = np.where(labels == 1, 2.0, -2.0) + np.random.default_rng(seed).standard_normal(labels.size)
        good.append(folder / f"system{seed}.csv")
        write_scores(good[-1], ScoreTable([f"u{index}" for index in range(labels.size)], scores, labels))
    lines = good[0].read_text().splitlines()
    head, row, rest = lines[:5], lines[5].split(","), lines[6:]
    texts = {
        "nan score": ("\n".join([*head, ",".join([row[0], "nan", row[2]]), *rest]), "1 score(s) are not finite"),
        "infinite score": ("\n".join([*head, ",".join([row[0], "-inf", row[2]]), *rest]), "1 score(s) are not finite"),
        "repeated trial": ("\n".join([*lines, lines[1]]), "1 utterance ids occur more than once: u0"),
        "empty": ("", "empty protocol"),
        "not a number": ("\n".join([*head, ",".join([row[0], "high", row[2]]), *rest]), "a score is not a number"),
    }
    hostile = {}
    for kind, (text, message) in texts.items():
        hostile[kind] = (folder / f"{kind.replace(' ', '_')}.csv", message)
        hostile[kind][0].write_text(text + "\n")
    hostile["binary"] = (folder / "binary.csv", "not a text score file")
    hostile["binary"][0].write_bytes(bytes(range(128, 256)) * 4)
    hostile["one class"] = (folder / "one_class.csv", "calibration needs both bona fide and spoof trials")
    hostile["one class"][0].write_text("\n".join(line for line in lines if not line.endswith(",spoof")) + "\n")
    return folder, good, hostile


@pytest.mark.parametrize("kind", ["nan score", "infinite score", "repeated trial", "empty", "not a number", "binary",
                                  "one class"])
def test_calibrate_and_fuse_name_a_hostile_score_file_in_one_line_and_write_nothing(
    score_files, model_dir, kind, tmp_path, capsys, caplog
):
    folder, good, hostile = score_files
    path, message = hostile[kind]
    before = snapshot(folder)
    code, lines = _run(capsys, caplog, "calibrate", model_dir, path, tmp_path / "calibrated")
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"nes2net calibrate: error: {path}: ")
    assert message in lines[0]
    if kind != "one class":  # fusion fits on every trial of the other systems: one class is a missing-trials error
        code, lines = _run(capsys, caplog, "fuse", good[0], path, good[1], "--output", tmp_path / "fused.csv")
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f"nes2net fuse: error: {path}: ")
        assert message in lines[0]
    assert snapshot(folder) == before and list(tmp_path.iterdir()) == []


def test_calibrate_and_fuse_take_the_good_score_files(score_files, model_dir, tmp_path, capsys, caplog):
    folder, good, _ = score_files
    assert _run(capsys, caplog, "calibrate", model_dir, good[0], tmp_path / "calibrated") == (0, [])
    assert _run(capsys, caplog, "fuse", *good, "--output", tmp_path / "fused.csv") == (0, [])
    assert (tmp_path / "calibrated" / "config.json").is_file() and (tmp_path / "fused.csv").is_file()


@pytest.fixture(scope="module")
def hostile_models(model_dir, tmp_path_factory) -> tuple[Path, dict[str, tuple[Path, str]]]:
    """`(folder, {kind: (model folder, what its line says)})`: copies of the tiny model, each damaged one way."""
    root = tmp_path_factory.mktemp("models")
    weights = load_file(model_dir / "model.safetensors")
    models = {}
    nan = shutil.copytree(model_dir, root / "nan_weights")
    first = sorted(name for name in weights if "backend" in name)[0]
    save_file({**weights, first: weights[first].clone().fill_(float("nan"))}, nan / "model.safetensors",
              metadata={"format": "pt"})
    models["nan weights"] = (nan, "hold NaN or infinite values")
    missing = shutil.copytree(model_dir, root / "missing_weight")
    save_file({name: tensor for name, tensor in weights.items() if name != "classifier.bias"},
              missing / "model.safetensors", metadata={"format": "pt"})
    models["missing weight"] = (missing, "1 missing weight(s) (classifier.bias)")
    scale = shutil.copytree(model_dir, root / "huge_calibration")
    config = json.loads((scale / "config.json").read_text())
    (scale / "config.json").write_text(json.dumps({**config, "calibration_scale": 1e300}))
    models["calibration 1e300"] = (scale, "calibration_scale must be between")
    (root / "secret.txt").write_text("a server file\n")
    linked = shutil.copytree(model_dir, root / "linked_secret")
    (linked / "notes.txt").symlink_to(root / "secret.txt")
    models["symlink"] = (linked, "notes.txt: a symbolic link")
    return root, models


@pytest.mark.parametrize("kind", ["nan weights", "missing weight", "calibration 1e300", "symlink"])
def test_export_space_and_push_refuse_a_hostile_model_folder_naming_it(hostile_models, kind, tmp_path, capsys,
                                                                       caplog):
    root, models = hostile_models
    folder, message = models[kind]
    before = snapshot(root)
    if kind != "symlink":  # export reads the weights and config only: a stray link in the folder is not its input
        code, lines = _run(capsys, caplog, "export", "onnx", folder, tmp_path / "onnx", "--variants")
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f"nes2net export: error: {folder}: ")
        assert message in lines[0]
    code, lines = _run(capsys, caplog, "space", "--model", folder, tmp_path / "space")
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"{folder}") and message in lines[0], lines
    if kind in ("nan weights", "symlink"):  # push reads no config: the app or from_pretrained refuses the others
        code, lines = _run(capsys, caplog, "push", "--dry-run", folder, "someone/model")
        assert code == 1 and lines[0] == f"{folder} cannot be published as a model:"
        assert any(message in line for line in lines[1:]) and all(line.startswith("  - ") for line in lines[1:])
    assert snapshot(root) == before and list(tmp_path.iterdir()) == []
