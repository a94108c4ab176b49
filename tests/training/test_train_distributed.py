"""End to end: the mini recipe trained in real processes, alone and under `accelerate launch` with two CPU processes
(gloo), killed at the worst moment and resumed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file

from modeling_nes2net import Nes2NetForAudioClassification
from training.results import load_result
from tests.training.train_helpers import build_tiny_corpus, run_command, subprocess_env
from training.calibration import fit_llr_fusion
from training.checkpoints import latest_checkpoint
from training.evaluate import evaluate_model
from training.scores import read_scores
from training.train import DEBUG_EXIT_CODE

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
        "training.log_every_steps=1", "training.record_batches=true", "evaluation=[]", *overrides,
    ]
    args = ["train", "mini", "--dataset", str(workspace["dataset"]), "--output-dir", str(workspace["root"] / output)]
    return args + [item for setting in settings for item in ("--set", setting)]


def run_ok(args, env, processes=1):
    result = run_command(args, env, processes)
    errors = [line for line in result.stderr.splitlines() if "Error" in line]
    assert result.returncode == 0, "\n".join(errors[:10]) + result.stderr[-3000:]
    return result


def final_weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "final" / "model.safetensors")


def recorded_batches(path: Path) -> dict[tuple[int, int], list[str]]:
    batches = {}
    for line in path.read_text().splitlines():
        epoch, step, *utt_ids = line.split()
        batches[(int(epoch), int(step))] = utt_ids
    return batches


@pytest.fixture(scope="module")
def single_and_two_processes(workspace):
    """The same recipe (dropout off) on one process with batch 4 and on two processes with 2 each. The learning rate
    is the mini recipe's / 10: at 1e-3 this tiny model's loss jumps by up to 30% between steps, and float rounding
    differences grow to a few percent of the gradient norm within 8 steps (at 1e-4 they stay below 1e-6)."""
    settings = [*NO_DROPOUT, "training.lr=1e-4"]
    test_set = f"evaluation=[{{dataset: {workspace['dataset']}, split: eval, protocol: full, group_by: [codec]}}]"
    single = run_ok(train_args(workspace, "single", *settings, test_set), workspace["env"])
    double = run_ok(train_args(workspace, "double", *settings), workspace["env"], processes=2)
    return workspace["root"] / "single", workspace["root"] / "double", single, double


def test_two_processes_split_each_global_batch_between_them(single_and_two_processes):
    single, double, _, _ = single_and_two_processes
    reference = recorded_batches(single / "batches.rank0.txt")
    rank0 = recorded_batches(double / "batches.rank0.txt")
    rank1 = recorded_batches(double / "batches.rank1.txt")
    assert len(reference) == 8 and rank0.keys() == rank1.keys() == reference.keys()
    for step, utt_ids in reference.items():
        assert len(rank0[step]) == len(rank1[step]) == 2
        assert not set(rank0[step]) & set(rank1[step])
        assert sorted(rank0[step] + rank1[step]) == sorted(utt_ids)


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


def test_pipeline_loads_the_model_trained_on_two_processes(single_and_two_processes):
    from transformers import pipeline

    import modeling_nes2net  # noqa: F401  (registers the auto classes)

    _, double, _, _ = single_and_two_processes
    classifier = pipeline("audio-classification", model=str(double / "final"))
    waveform = np.random.default_rng(0).uniform(-0.3, 0.3, 8000).astype(np.float32)
    predictions = classifier({"raw": waveform, "sampling_rate": 16000})
    assert {prediction["label"] for prediction in predictions} == {"spoof", "bonafide"}


def test_a_run_killed_while_saving_resumes_to_the_same_weights(workspace):
    """Dropout on (its RNG must be restored), bf16 autocast, 2 accumulation steps, clipping; checkpoints every 2 steps;
    the run dies while committing step 6."""
    settings = ["training.checkpoint_every_steps=2", "training.mixed_precision=bf16",
                "training.gradient_accumulation_steps=2", "training.max_grad_norm=1.0"]
    args = train_args(workspace, "killed", *settings)
    crashed = run_command([*args, "--debug-exit-after-steps", "6"], workspace["env"])
    assert crashed.returncode == DEBUG_EXIT_CODE, crashed.stderr[-4000:]
    checkpoints = workspace["root"] / "killed" / "checkpoints"
    assert (checkpoints / ".step-00000006.partial" / "model.safetensors").is_file()
    assert latest_checkpoint(checkpoints).name == "step-00000004"

    resumed = run_ok(args, workspace["env"])
    assert "resumed from" in resumed.stderr and "step-00000004" in resumed.stderr
    assert not (checkpoints / ".step-00000006.partial").exists()
    run_ok(train_args(workspace, "uninterrupted", *settings), workspace["env"])
    killed, reference = final_weights(workspace["root"] / "killed"), final_weights(workspace["root"] / "uninterrupted")
    assert killed.keys() == reference.keys()
    assert all(torch.equal(killed[key], reference[key]) for key in reference)


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
