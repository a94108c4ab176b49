"""Hostile or careless inputs to the training commands: each is refused in one line naming it, before any work."""

from __future__ import annotations

import functools
import json
import logging

import datasets
import pytest

from nes2net.cli import main
from tests.hostile.make_corpus import speech_like, wav_bytes
from tests.training.checkpoint_run import run, training_objects  # noqa: F401  (run: a fixture)
from tests.training.train_helpers import write_unchecked_set
from training.checkpoints import TRAINER_STATE, resume_latest
from training.evaluate import evaluate_model
from training.measure import read_asv_scores
from training.recipe import load_recipe
from training.train import TrainerState


@pytest.mark.parametrize("text", ['model: !!python/object/apply:os.system ["touch {marker}"]\n',
                                  "training: {lr: [1e-3\n"])
def test_a_recipe_yaml_that_is_not_plain_data_is_one_line(tmp_path, caplog, text):
    marker = tmp_path / "ran"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text.replace("{marker}", str(marker)))
    with pytest.raises(ValueError, match=rf"^{recipe}: not a plain YAML recipe \(line \d+\): ") as refused:
        load_recipe(recipe)
    assert "\n" not in str(refused.value)
    with caplog.at_level(logging.ERROR):
        assert main(["train", str(recipe)]) == 2
    assert [record.getMessage() for record in caplog.records] == [str(refused.value)]
    assert not marker.exists()


def test_an_override_that_is_not_plain_yaml_is_one_line():
    with pytest.raises(ValueError, match=r"^override 'training.lr=!!python/name:os.system': not a plain YAML recipe"):
        load_recipe("mini", ["training.lr=!!python/name:os.system"])


@pytest.mark.parametrize("spec, message", [
    ("reverb:rt60=30", "needs 4000 image orders to simulate, over the 150 allowed"),
    ("reverb:rt60=0.05", "is too short for a 6x5x3 m room"),
    ("noise:snr=-inf", "noise: snr must be a finite number, got '-inf'"),
    ("packet-loss:rate=2", "packet-loss needs a rate in [0, 1]"),
    ("bandpass:low=4000,high=300", "bandpass needs 0 < low < high"),
])
def test_a_channel_condition_that_cannot_run_is_refused_when_parsed(tmp_path, capsys, spec, message):
    with pytest.raises(SystemExit) as exited:  # argparse: before the model, the data or the clean pass
        main(["evaluate", str(tmp_path / "no-model"), str(tmp_path / "no-data"), "--output-dir", str(tmp_path / "out"),
              "--perturb", spec])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert exited.value.code == 2 and "--perturb" in error and message in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("lines, message", [
    (["a target 1.0", "b nontarget nan", "c spoof -1.0"], ":2: the score must be a finite number, got 'nan'"),
    (["a target 1.0", "b target 2.0"], ": no nontarget/spoof trials; the t-DCF needs"),
])
def test_asv_scores_without_a_finite_score_or_every_class_are_refused_before_scoring(tmp_path, lines, message):
    asv = tmp_path / "asv.txt"
    asv.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"^{asv}{message}"):
        read_asv_scores(asv)
    with pytest.raises(ValueError, match=rf"^{asv}{message}"):  # before it looks for the model or the data
        evaluate_model(str(tmp_path / "no-model"), str(tmp_path / "no-data"), tmp_path / "out", asv_scores=asv)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("tamper, reason", [
    (lambda state, root: {**state, "injected": 1}, "unknown key(s) injected"),
    (lambda state, root: {**state, "epoch": "3"}, "epoch must be a non-negative integer, got '3'"),
    (lambda state, root: {**state, "best": [{"epoch": 0, "eer": float("nan")}]}, "best must list"),
    (lambda state, root: {**state, "best": [{"epoch": 7, "eer": 0.1}]}, "epoch-008 are missing"),
])
def test_a_tampered_trainer_state_sets_the_checkpoint_aside_as_damaged(run, caplog, tamper, reason):
    root = run["root"]
    state_file = root / "step-00000004" / TRAINER_STATE
    state_file.write_text(json.dumps(tamper(json.loads(state_file.read_text()), root)))
    model, optimizer, scheduler = training_objects(1)
    with caplog.at_level(logging.WARNING):
        checkpoint, state = resume_latest(run["accelerator"], root, model, optimizer, scheduler,
                                          functools.partial(TrainerState.from_saved, output_dir=root))
    assert checkpoint.name == "step-00000002" and state == TrainerState(global_step=2)
    warning = next(record.getMessage() for record in caplog.records if "is damaged" in record.getMessage())
    assert f"{state_file}: not a state this run can continue from" in warning and reason in warning
    assert (root / "step-00000004.damaged" / TRAINER_STATE).is_file()


@pytest.mark.parametrize("workers", [0, 1])
def test_a_truncated_wav_in_a_set_built_elsewhere_stops_training_in_one_line_naming_it(tmp_path, caplog, workers):
    """`nes2net data build` refuses the file; a set written by other tools may still hold it. A DataLoader worker's
    exception would come back with the worker's traceback in its message: the file must be named in one line."""
    rows = [(f"train/{index}.wav", ("bonafide", "spoof")[index % 2], "train", wav_bytes(speech_like(1.0, seed=index)))
            for index in range(3)]
    rows.append(("train/cut.wav", "spoof", "train", wav_bytes(speech_like(1.0, seed=3))[:8_044]))
    built = write_unchecked_set(tmp_path / "built", rows)
    settings = [f"data.num_workers={workers}", "data.dev_split=null", "data.crop_samples=4000", "training.epochs=1",
                "training.batch_size=4", "evaluation=[]"]
    with pytest.MonkeyPatch.context() as patch, caplog.at_level(logging.ERROR):
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
        code = main(["train", "mini", "--dataset", str(built), "--output-dir", str(tmp_path / "run"),
                     *(word for setting in settings for word in ("--set", setting))])
    assert code == 1
    assert [record.getMessage() for record in caplog.records] == [
        "train/cut: truncated: the header promises 1.00 s, the file holds 0.25 s (an incomplete copy or download?); a "
        "training set must hold only decodable audio (`nes2net data build` refuses such files)"]
