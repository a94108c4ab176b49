"""Checkpoints in one process: a resume restores everything, unpickles nothing, and survives a damaged newest
checkpoint by falling back to the older one."""

from __future__ import annotations

import logging
import random

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tests.training.checkpoint_run import run, training_objects  # noqa: F401  (run: a fixture)
from tests.training.train_helpers import plant_pickle_payload
from training.checkpoints import (
    MODEL_FILE,
    OPTIMIZER_FILE,
    SCHEDULER_FILE,
    TRAINER_STATE,
    CheckpointError,
    latest_checkpoint,
    resume_latest,
    rng_file,
    save_checkpoint,
)
from training.schedules import build_schedule


def resume_fresh(run):
    """Fresh objects (another seed), resumed from the run's checkpoints."""
    model, optimizer, scheduler = training_objects(1)
    resumed = resume_latest(run["accelerator"], run["root"], model, optimizer, scheduler)
    return resumed, model, optimizer, scheduler


def assert_same_state(model, optimizer, scheduler, run):
    for key, tensor in run["model"].state_dict().items():
        assert torch.equal(model.state_dict()[key], tensor), key
    saved, loaded = run["optimizer"].state_dict(), optimizer.state_dict()
    assert loaded["param_groups"] == saved["param_groups"]
    for param, state in saved["state"].items():
        for name, value in state.items():
            assert torch.equal(loaded["state"][param][name], value), (param, name)
    assert scheduler.state_dict() == run["scheduler"].state_dict()


def test_a_resume_restores_weights_optimiser_schedule_and_random_states(run):
    (checkpoint, trainer_state), model, optimizer, scheduler = resume_fresh(run)
    assert checkpoint.name == "step-00000004" and trainer_state == {"global_step": 4}
    assert_same_state(model, optimizer, scheduler, run)
    python, numpy, torch_values = run["next_random"]
    assert (random.random(), np.random.rand()) == (python, numpy) and torch.equal(torch.rand(3), torch_values)
    assert sorted(path.name for path in run["root"].iterdir()) == ["step-00000002", "step-00000004"]


def test_a_third_checkpoint_removes_the_oldest(run):
    save_checkpoint(run["accelerator"], run["root"], 6, {"global_step": 6}, run["model"], run["optimizer"],
                    run["scheduler"], keep=2)
    assert sorted(path.name for path in run["root"].iterdir()) == ["step-00000004", "step-00000006"]


def test_pickles_planted_where_accelerate_keeps_its_states_never_run(run, tmp_path_factory):
    marker = tmp_path_factory.mktemp("payload") / "ran"
    newest = latest_checkpoint(run["root"])
    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin", "scheduler.bin", "scaler.pt"):
        plant_pickle_payload(newest / name, marker)
    (checkpoint, _), model, optimizer, scheduler = resume_fresh(run)
    assert checkpoint == newest and not marker.exists()
    assert_same_state(model, optimizer, scheduler, run)


def test_a_pickle_in_place_of_every_state_file_runs_nothing_and_names_the_file(run, tmp_path_factory):
    marker = tmp_path_factory.mktemp("payload") / "ran"
    for checkpoint in run["root"].iterdir():
        for name in (MODEL_FILE, OPTIMIZER_FILE, SCHEDULER_FILE, rng_file(0)):
            plant_pickle_payload(checkpoint / name, marker)
    with pytest.raises(CheckpointError) as error:
        resume_fresh(run)
    assert not marker.exists()
    message = str(error.value)
    assert "\n" not in message and f"no checkpoint under {run['root']} can be resumed" in message
    for step in ("00000002", "00000004"):
        assert f"{run['root'] / f'step-{step}' / MODEL_FILE}: damaged or truncated safetensors file" in message


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def poison(path):
    """Set the first floating-point tensor of a safetensors file to NaN, keeping its metadata."""
    with safe_open(path, framework="pt") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        metadata = handle.metadata()
    first = sorted(name for name, tensor in tensors.items() if tensor.is_floating_point())[0]
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    save_file(tensors, path, metadata=metadata)


@pytest.mark.parametrize(
    ("file_name", "damage", "reason"),
    [
        (MODEL_FILE, truncate, "damaged or truncated safetensors file"),
        (OPTIMIZER_FILE, truncate, "damaged or truncated safetensors file"),
        (MODEL_FILE, lambda path: path.write_bytes(b""), "damaged or truncated safetensors file"),
        (TRAINER_STATE, lambda path: path.write_text('{"global_step": 4,'), "not valid JSON"),
        (SCHEDULER_FILE, lambda path: path.write_text(""), "not valid JSON"),
        (rng_file(0), truncate, "not valid JSON"),
        (TRAINER_STATE, lambda path: path.write_text("[]"), "not a trainer state"),
        (SCHEDULER_FILE, lambda path: path.unlink(), "missing"),
        (MODEL_FILE, poison, "1 weight tensor(s) hold NaN or infinite values (0.bias)"),
        (OPTIMIZER_FILE, poison, "1 weight tensor(s) hold NaN or infinite values (0.exp_avg)"),
    ],
)
def test_a_damaged_newest_checkpoint_is_named_and_the_older_one_resumed(run, caplog, file_name, damage, reason):
    damaged = run["root"] / "step-00000004" / file_name
    damage(damaged)
    with caplog.at_level(logging.WARNING):
        (checkpoint, trainer_state), *_ = resume_fresh(run)
    assert checkpoint.name == "step-00000002" and trainer_state == {"global_step": 2}
    warning = next(record.getMessage() for record in caplog.records if "is damaged" in record.getMessage())
    assert f"{damaged}: {reason}" in warning and "resuming from the older step-00000002" in warning
    assert (run["root"] / "step-00000004.damaged" / TRAINER_STATE).is_file()
    assert latest_checkpoint(run["root"]).name == "step-00000002"


def test_a_checkpoint_of_another_model_is_refused_naming_the_file(run):
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.BatchNorm1d(5), torch.nn.Linear(5, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = build_schedule(optimizer, "constant", 1e-2, 0.0, 20, 5).scheduler
    with pytest.raises(CheckpointError, match=rf"{run['root'] / 'step-00000004' / MODEL_FILE}: does not fit this run"):
        resume_latest(run["accelerator"], run["root"], model, optimizer, scheduler)

