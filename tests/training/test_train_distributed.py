"""End to end: the mini recipe trained in real processes, alone and under `accelerate launch` with two CPU processes
(gloo), killed at the worst moment and resumed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file

from modeling_nes2net import Nes2NetForAudioClassification
from modeling_nes2net.examples import speech_like
from tests.training.train_helpers import build_tiny_corpus, plant_pickle_payload, run_command, subprocess_env
from tests.training.train_probe import CRASH_EXIT_CODE
from training.llr_fitting import fit_llr_fusion
from hub_cards.results import load_result
from training.checkpoints import latest_checkpoint
from training.evaluate import evaluate_model
from training.score_files import read_scores

pytestmark = pytest.mark.slow

NO_DROPOUT = [f"model.config.frontend_config.{name}=0.0"
              for name in ("hidden_dropout", "attention_dropout", "activation_dropout")]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    return {"dataset": build_tiny_corpus(root), "env": subprocess_env(root / "hf-cache"), "root": root}


def train_args(workspace, output: str, *overrides: str) -> list[str]:
    """The mini recipe shrunk to seconds: 16 clips, 2 epochs of 4 steps, 0.25 s crops, dev on whole clips."""
    settings = [
        "data.crop_samples=4000", "data.dev_split=dev", "data.dev_protocol=full", "data.num_workers=0",
        "training.epochs=2", "training.batch_size=4", "training.eval_batch_size=4", "training.average_best=2",
        "training.log_every_steps=1", "evaluation=[]", *overrides,
    ]
    args = ["train", "mini", "--dataset", str(workspace["dataset"]), "--output-dir", str(workspace["root"] / output)]
    return args + [item for setting in settings for item in ("--set", setting)]


PROBE = "tests.training.train_probe"


def run_ok(args, env, processes=1, **options):
    result = run_command(args, env, processes, **options)
    errors = [line for line in result.stderr.splitlines() if "Error" in line]
    assert result.returncode == 0, "\n".join(errors[:10]) + result.stderr[-3000:]
    return result


def final_weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "final" / "model.safetensors")


def recorded_batches(path: Path) -> list[list[str]]:
    """The utterance ids of each training micro-batch, in order (written by the probe `PROBE_BATCHES_DIR`)."""
    return [line.split() for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def single_and_two_processes(workspace):
    """The same recipe (dropout off) on one process with batch 4 and on two processes with 2 each. The learning rate
    is the mini recipe's / 10: at 1e-3 this tiny model's loss jumps by up to 30% between steps, and float rounding
    differences grow to a few percent of the gradient norm within 8 steps (at 1e-4 they stay below 1e-6). The
    single run starts in another folder than the repository, with a test set that names no dataset (the one given
    by `--dataset`)."""
    settings = [*NO_DROPOUT, "training.lr=1e-4"]
    test_set = "evaluation=[{split: eval, protocol: full, group_by: [codec]}]"
    single, double = workspace["root"] / "single", workspace["root"] / "double"
    single_run = run_ok(train_args(workspace, "single", *settings, test_set),
                        {**workspace["env"], "PROBE_BATCHES_DIR": str(single)}, entry=PROBE, cwd=workspace["root"])
    double_run = run_ok(train_args(workspace, "double", *settings),
                        {**workspace["env"], "PROBE_BATCHES_DIR": str(double)}, processes=2, entry=PROBE)
    return single, double, single_run, double_run


def test_two_processes_split_each_global_batch_between_them(single_and_two_processes):
    single, double, _, _ = single_and_two_processes
    reference = recorded_batches(single / "batches.rank0.txt")
    rank0 = recorded_batches(double / "batches.rank0.txt")
    rank1 = recorded_batches(double / "batches.rank1.txt")
    assert len(reference) == len(rank0) == len(rank1) == 8
    for utt_ids, first, second in zip(reference, rank0, rank1, strict=True):
        assert len(utt_ids) == 4 and len(first) == len(second) == 2
        assert not set(first) & set(second)
        assert sorted(first + second) == sorted(utt_ids)


def scalars(run: Path, tag: str) -> np.ndarray:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "logs" / "train"))
    events.Reload()
    return np.array([event.value for event in events.Scalars(tag)])


def test_two_processes_train_the_same_model_as_one(single_and_two_processes):
    """The same loss and gradient norm at every step, the same weights and dev scores, to float rounding.

    Rounding does move a few weights whose exact gradient is zero: the back-end's last channel group and the last
    block's BatchNorm only feed the final BatchNorm, which cancels per-channel shifts (and, but for its epsilon,
    scales) in training mode, so their gradients are rounding noise (~1e-9) that Adam divides by its own size."""
    single, double, single_run, _ = single_and_two_processes
    assert "utterances/s" in single_run.stderr
    for tag in ("train/loss", "train/grad_norm"):
        one, two = scalars(single, tag), scalars(double, tag)
        assert len(one) == len(two) == 8
        np.testing.assert_allclose(one, two, rtol=1e-5)
    one, two = final_weights(single), final_weights(double)
    assert one.keys() == two.keys()
    last_group = slice(48, 64)  # channels 48-63 of the 64 features: the group that skips every block
    one["nes2net.frontend.encoder.layer_norm.bias"][last_group] = two["nes2net.frontend.encoder.layer_norm.bias"][last_group]
    invariant = {"nes2net.backend.block_norms.2.weight", "nes2net.backend.block_norms.2.bias", "nes2net.backend.norm.running_mean"}
    for key in one.keys() - invariant:
        torch.testing.assert_close(one[key], two[key], atol=1e-5, rtol=0, msg=key)
    dev_one = np.loadtxt(single / "dev" / "epoch-002.csv", delimiter=",", skiprows=1, usecols=1)
    dev_two = np.loadtxt(double / "dev" / "epoch-002.csv", delimiter=",", skiprows=1, usecols=1)
    np.testing.assert_allclose(dev_one, dev_two, atol=1e-4)


def test_the_recipes_test_sets_are_scored_with_the_final_model(single_and_two_processes, workspace):
    single = single_and_two_processes[0]
    result = load_result(single / "eval" / f"{workspace['dataset'].name}-eval-full" / "results.json")
    assert result.n_trials == 12 and result.dataset_split == "eval" and set(result.per_group) == {"codec"}
    assert "final" in result.model
    card = (single / "final" / "README.md").read_text(encoding="utf-8")
    assert "not been evaluated" not in card
    row = f"| {result.dataset_name} | eval | full | 12 ({result.n_bonafide} / {result.n_spoof}) | "
    assert row + f"{100 * result.metrics['eer']:.2f} |" in card
    config = Nes2NetForAudioClassification.config_class.from_pretrained(single / "final")
    assert f"a = {config.calibration_scale:.4f} and\nb = {config.calibration_offset:.4f}," in card


def test_a_test_set_that_cannot_be_loaded_is_named_before_training(workspace):
    test_set = "evaluation=[{dataset: data/not-built-here, split: eval}]"
    result = run_command(train_args(workspace, "unloadable", test_set), workspace["env"], cwd=workspace["root"])
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert result.returncode == 1 and len(errors) == 1, result.stderr[-3000:]
    assert "evaluation dataset 'data/not-built-here', split 'eval', cannot be loaded" in errors[0]
    assert f"relative paths are read from {workspace['root']}" in errors[0]
    assert not (workspace["root"] / "unloadable" / "checkpoints").exists()


def test_pipeline_loads_the_model_trained_on_two_processes(single_and_two_processes):
    from transformers import pipeline

    import modeling_nes2net  # noqa: F401  (registers the auto classes)

    _, double, _, _ = single_and_two_processes
    classifier = pipeline("audio-classification", model=str(double / "final"))
    waveform = speech_like(0.5)
    predictions = classifier({"raw": waveform, "sampling_rate": 16000})
    assert {prediction["label"] for prediction in predictions} == {"spoof", "bonafide"}


KILL_SETTINGS = ["training.checkpoint_every_steps=2", "training.mixed_precision=bf16",
                 "training.gradient_accumulation_steps=2", "training.max_grad_norm=1.0"]
"""Dropout on (its RNG must be restored), bf16 autocast, 2 accumulation steps, clipping; checkpoints every 2 steps."""
ACCELERATE_PICKLES = ("custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin", "scheduler.bin", "scaler.pt",
                      "pytorch_model.bin", "sampler.bin")
"""Where Accelerate's `save_state` keeps pickled states: a copied run folder may carry a payload under each name."""


@pytest.fixture(scope="module")
def uninterrupted(workspace):
    run_ok(train_args(workspace, "uninterrupted", *KILL_SETTINGS), workspace["env"])
    return workspace["root"] / "uninterrupted"


def test_a_run_killed_while_saving_resumes_to_the_same_weights(workspace, uninterrupted):
    """The run dies while committing step 6 and resumes from step 4, whose folder also holds planted pickles that
    must never run."""
    args = train_args(workspace, "killed", *KILL_SETTINGS)
    crashed = run_command(args, {**workspace["env"], "PROBE_CRASH_AT_STEP": "6"}, entry=PROBE)
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr[-4000:]
    checkpoints = workspace["root"] / "killed" / "checkpoints"
    assert (checkpoints / ".step-00000006.partial" / "model.safetensors").is_file()
    assert latest_checkpoint(checkpoints).name == "step-00000004"
    marker = workspace["root"] / "payload-ran-on-resume"
    for name in ACCELERATE_PICKLES:
        plant_pickle_payload(checkpoints / "step-00000004" / name, marker)

    resumed = run_ok(args, workspace["env"])
    assert not marker.exists()
    assert "resumed from" in resumed.stderr and "step-00000004" in resumed.stderr
    assert not (checkpoints / ".step-00000006.partial").exists()
    killed, reference = final_weights(workspace["root"] / "killed"), final_weights(uninterrupted)
    assert killed.keys() == reference.keys()
    assert all(torch.equal(killed[key], reference[key]) for key in reference)


def test_a_damaged_latest_checkpoint_is_named_and_the_run_resumes_from_the_older(workspace, uninterrupted):
    """A copy of the finished run whose last checkpoint (step 8) has a truncated optimiser state: the run warns
    naming the file, continues from step 6 and ends with the same weights."""
    copy = workspace["root"] / "damaged"
    shutil.copytree(uninterrupted, copy, ignore=shutil.ignore_patterns("final", "logs"))
    checkpoints = copy / "checkpoints"
    assert [path.name for path in sorted(checkpoints.iterdir())] == ["step-00000006", "step-00000008"]
    optimizer_file = checkpoints / "step-00000008" / "optimizer.safetensors"
    optimizer_file.write_bytes(optimizer_file.read_bytes()[: optimizer_file.stat().st_size // 2])

    resumed = run_ok(train_args(workspace, "damaged", *KILL_SETTINGS), workspace["env"])
    warning = next(line for line in resumed.stderr.splitlines() if "is damaged" in line)
    assert str(optimizer_file) in warning and "resuming from the older step-00000006" in warning
    assert (checkpoints / "step-00000008.damaged" / "optimizer.safetensors").is_file()
    assert "step 6)" in resumed.stderr
    damaged, reference = final_weights(copy), final_weights(uninterrupted)
    assert all(torch.equal(damaged[key], reference[key]) for key in reference)


def test_the_final_model_carries_the_calibration_fitted_on_dev(single_and_two_processes, workspace, tmp_path):
    single = single_and_two_processes[0]
    model = Nes2NetForAudioClassification.from_pretrained(single / "final").eval()
    fitted = (model.config.calibration_scale, model.config.calibration_offset)
    assert fitted != (1.0, 0.0)
    model.config.calibration_scale, model.config.calibration_offset = 1.0, 0.0  # the raw log-odds again
    evaluate_model(model, str(workspace["dataset"]), tmp_path, split="dev", protocol="full", score="log_odds",
                   num_workers=0, accelerator=Accelerator(cpu=True), progress=False)
    table = read_scores(tmp_path / "scores.csv")
    (weight,), offset = fit_llr_fusion(np.asarray(table.scores)[:, None], np.asarray(table.labels))
    np.testing.assert_allclose(fitted, (weight, offset), rtol=1e-4, atol=1e-5)


def test_two_processes_agree_on_the_checkpoint_to_resume(workspace, uninterrupted):
    """The same damaged copy resumed by two processes: both fall back to step 6 (each reads the shared files), the
    second keeps its seeded random state (the run was saved by one process) and the run finishes."""
    copy = workspace["root"] / "damaged-two"
    shutil.copytree(uninterrupted, copy, ignore=shutil.ignore_patterns("final", "logs"))
    (copy / "checkpoints" / "step-00000008" / "model.safetensors").write_bytes(b"")

    resumed = run_ok(train_args(workspace, "damaged-two", *KILL_SETTINGS), workspace["env"], processes=2)
    assert resumed.stderr.count("is damaged") == 1 and "resuming from the older step-00000006" in resumed.stderr
    assert "rng-00001.json not found: process 1 keeps its seeded random state" in resumed.stderr
    assert final_weights(copy).keys() == final_weights(uninterrupted).keys()
