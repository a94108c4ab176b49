"""The pieces of `nes2net train`, in process: recipes and overrides, schedules, the epoch plan, the loss shares that
make several processes equal one, global BatchNorm, best-epoch bookkeeping, checkpoints, front-end weights."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel

from modeling_nes2net import config_from_preset
from tests.tiny_models import TINY_FRONTENDS, tiny_model
from training.augmentation.rawboost import RawBoost
from training.batching import EpochPlan, build_augmentation
from training.checkpoints import TRAINER_STATE, latest_checkpoint
from training.distributed_norm import GlobalBatchNorm, convert_to_global_batch_norm
from training.recipe import ModelSpec, available_recipes, load_recipe
from training.schedules import build_schedule
from training.train import TrainerState, add_arguments, build_model, recipe_from_args, trial_weights


def test_recipes_carry_the_papers_settings():
    assert {"mini", "asvspoof2019-la", "asvspoof5", "ctrsvdd"} <= set(available_recipes())
    la = load_recipe("asvspoof2019-la")
    assert (la.training.optimizer, la.training.lr, la.training.schedule) == ("adam", 2.5e-7, "constant")
    assert la.training.batch_size == 12
    assert (la.training.weight_decay, la.training.epochs, la.data.crop_samples) == (1e-4, 100, 64600)
    assert la.data.augmentation == {"rawboost": {"algorithm": 4}}
    assert {(spec.split, spec.protocol) for spec in la.evaluation} == {("eval", "4sec"), ("test", "full")}
    five = load_recipe("asvspoof5")
    assert (five.training.lr, five.training.min_lr, five.training.schedule) == (1e-6, 1e-7, "cosine")
    assert (five.training.batch_size, five.training.early_stopping_patience) == (64, 5)
    assert five.data.augmentation["musan_rir"]["p"] == 0.5
    svdd = load_recipe("ctrsvdd")
    assert (svdd.training.optimizer, svdd.training.lr, svdd.training.min_lr) == ("adamw", 1e-6, 1e-9)
    assert (svdd.training.schedule, svdd.training.cosine_period_epochs) == ("cosine_epochs", 5)
    assert svdd.training.batch_size == 34
    assert (svdd.training.epochs, svdd.data.crop_samples, svdd.data.dev_protocol) == (75, 64000, "full")
    assert svdd.data.augmentation == {"rawboost": {"algorithm": 8}}
    for recipe in (la, five, svdd):  # the named presets exist and give the paper's losses
        config = config_from_preset(recipe.model.preset, **recipe.model.config)
        assert config.loss == ("focal_bce" if recipe is svdd else "weighted_ce")


def test_overrides_reach_any_field_and_unknown_fields_are_refused():
    recipe = load_recipe("mini", ["training.lr=1e-6", "model.config.frontend_config.hidden_dropout=0.0",
                                  "data.augmentation={rawboost: {algorithm: 8}}", "evaluation=[]"])
    assert recipe.training.lr == 1e-6  # YAML reads "1e-6" as a string; float fields convert it
    assert recipe.model.config["frontend_config"]["hidden_dropout"] == 0.0
    assert recipe.data.augmentation == {"rawboost": {"algorithm": 8}}
    with pytest.raises(ValueError, match="training.learning_rate"):
        load_recipe("mini", ["training.learning_rate=1e-6"])
    with pytest.raises(ValueError, match="training.schedule"):
        load_recipe("mini", ["training.schedule=linear"])
    with pytest.raises(ValueError, match="unknown recipe"):
        load_recipe("no-such-recipe")


def test_command_line_shortcuts_and_set_build_the_recipe():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["mini", "--dataset", "data/x", "--lr", "3e-4", "--set", "training.batch_size=8",
                              "--output-dir", "runs/x"])
    recipe = recipe_from_args(args)
    assert (recipe.data.dataset, recipe.training.lr, recipe.training.batch_size) == ("data/x", 3e-4, 8)
    assert recipe.training.output_dir == "runs/x" and args.resume
    assert [spec.dataset for spec in recipe.evaluation] == ["data/x"]  # the mini recipe scores its own test split


def _rates_per_step(schedule_name: str, lr: float, min_lr: float, epochs: int, steps_per_epoch: int) -> list:
    """The learning rate of every optimiser step of a run, for a back-end group at `lr` and a front-end group at a
    tenth of it, driven as the trainer drives the schedule."""
    backend, frontend = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([{"params": [backend]}, {"params": [frontend], "lr": lr / 10}], lr=lr)
    schedule = build_schedule(optimizer, schedule_name, lr, min_lr, epochs * steps_per_epoch, period_epochs=5)
    rates = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            rates.append([group["lr"] for group in optimizer.param_groups])
            optimizer.step()
            schedule.optimizer_step_done()
        schedule.epoch_done()
    return rates


def test_schedules_match_their_closed_forms():
    # cosine: lr_t = min + (lr - min) (1 + cos(pi t / T)) / 2 over the T = 100 steps of the run
    rates = _rates_per_step("cosine", 1e-3, 1e-4, epochs=10, steps_per_epoch=10)
    for step in (0, 1, 25, 50, 99):
        expected = 1e-4 + 0.9e-3 * (1 + math.cos(math.pi * step / 100)) / 2
        assert rates[step] == pytest.approx([expected, expected / 10], rel=1e-9)  # the front-end keeps its ratio
    assert rates[50][0] == pytest.approx(0.55e-3, rel=1e-9)
    # constant
    assert _rates_per_step("constant", 1e-3, 0.0, epochs=2, steps_per_epoch=5) == [[1e-3, 1e-4]] * 10
    # cosine_epochs: PyTorch's CosineAnnealingLR(T_max=5) stepped once per epoch, as the CtrSVDD recipe did:
    # constant within an epoch, periodic past T_max
    rates = _rates_per_step("cosine_epochs", 1e-6, 1e-9, epochs=12, steps_per_epoch=10)
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=1e-6)
    annealing = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5, eta_min=1e-9)
    for epoch in range(12):
        closed_form = 1e-9 + (1e-6 - 1e-9) * (1 + math.cos(math.pi * epoch / 5)) / 2
        for step in range(epoch * 10, epoch * 10 + 10):
            assert rates[step][0] == pytest.approx(annealing.get_last_lr()[0], rel=1e-6)
            assert rates[step][0] == pytest.approx(closed_form, rel=1e-9)
        optimizer.step()
        annealing.step()
    assert rates[50][0] == pytest.approx(1e-9) and rates[100][0] == pytest.approx(1e-6)  # minimum at 5, back at 10


def test_epoch_plan_splits_every_global_batch_between_processes():
    single = EpochPlan(num_examples=50, batch_size=8, seed=3)
    plan = EpochPlan(num_examples=50, batch_size=8, num_processes=2, accumulation_steps=2, seed=3)
    assert plan.steps_per_epoch == 6 and plan.micro_batch_size == 2
    rank0, rank1 = plan.micro_batches(1, 0), plan.micro_batches(1, 1)
    assert len(rank0) == len(rank1) == 12
    for step, batch in enumerate(single.global_batches(1)):
        shares = rank0[2 * step : 2 * step + 2] + rank1[2 * step : 2 * step + 2]
        assert sorted(sum(shares, [])) == sorted(batch.tolist())
    assert plan.micro_batches(1, 1, start_step=4) == rank1[8:]  # a resumed run continues with the same batches
    assert not np.array_equal(plan.global_batches(0), plan.global_batches(1))
    with pytest.raises(ValueError, match="divisible"):
        EpochPlan(num_examples=50, batch_size=6, num_processes=4)


@pytest.mark.parametrize("num_labels", [2, 1])
def test_loss_shares_of_micro_batches_add_up_to_the_global_batch_loss(num_labels):
    """Weighted cross-entropy divides by the batch's total class weight: each micro-batch's loss scaled by its share
    of that weight sums to the loss of the whole batch, which the plain mean of micro-batch losses does not."""
    model = tiny_model(frontend="spectrogram", num_labels=num_labels,
                       loss="weighted_ce" if num_labels == 2 else "focal_bce")
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(8, num_labels, generator=generator)
    labels = torch.tensor([1, 0, 0, 0, 1, 1, 0, 0])
    weights = trial_weights(labels.numpy(), model.config)
    micro = [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)]
    shared = sum(model.compute_loss(logits[part], labels[part]) * weights[part].sum() / weights.sum() for part in micro)
    torch.testing.assert_close(shared, model.compute_loss(logits, labels))
    if num_labels == 2:
        plain = sum(model.compute_loss(logits[part], labels[part]) for part in micro) / len(micro)
        assert not torch.allclose(plain, model.compute_loss(logits, labels))


def test_global_batch_norm_alone_is_batch_norm():
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Conv1d(3, 4, 1), torch.nn.BatchNorm1d(4), torch.nn.BatchNorm1d(4))
    converted = convert_to_global_batch_norm(torch.nn.Sequential(*[layer for layer in reference]))
    assert sum(isinstance(module, GlobalBatchNorm) for module in converted.modules()) == 2
    assert converted.state_dict().keys() == reference.state_dict().keys()
    inputs = torch.randn(5, 3, 7)
    torch.testing.assert_close(converted(inputs), reference(inputs))
    with pytest.raises(ValueError, match="channels"):
        converted[1](torch.randn(4))


def test_best_epochs_are_kept_and_patience_counts_epochs_without_improvement():
    state = TrainerState()
    outcomes = [state.rank_epoch(epoch, eer, keep=2) for epoch, eer in enumerate([0.30, 0.20, 0.25, 0.25, 0.10])]
    assert [entry["epoch"] for entry in state.best] == [4, 1]
    assert outcomes[2] == (True, [0]) and outcomes[3] == (False, [3])
    assert state.best_eer == 0.10 and state.epochs_without_improvement == 0
    state.rank_epoch(5, 0.4, keep=2)
    assert state.epochs_without_improvement == 1


def test_latest_checkpoint_ignores_partial_and_uncommitted_folders(tmp_path):
    for name, complete in [("step-00000002", True), ("step-00000004", True), ("step-00000006", False),
                           (".step-00000008.partial", True)]:
        (tmp_path / name).mkdir()
        if complete:
            (tmp_path / name / TRAINER_STATE).write_text(json.dumps({"global_step": 0}))
    assert latest_checkpoint(tmp_path).name == "step-00000004"
    assert latest_checkpoint(tmp_path / "absent") is None


def test_front_end_weights_come_from_a_transformers_checkpoint(tmp_path):
    frontend = dict(TINY_FRONTENDS["wav2vec2"])
    torch.manual_seed(1)
    pretrained = AutoModel.from_config(AutoConfig.for_model(**frontend))
    pretrained.save_pretrained(tmp_path / "ssl")
    model = build_model(ModelSpec(config={"frontend_config": frontend, "outer_ratio": 4, "inner_ratio": 4},
                                  frontend_weights=str(tmp_path / "ssl")))
    for name, tensor in pretrained.state_dict().items():
        torch.testing.assert_close(model.nes2net.frontend.state_dict()[name], tensor, msg=name)
    wider = dict(frontend, hidden_size=128, intermediate_size=128)
    with pytest.raises(ValueError, match="does not match"):
        build_model(ModelSpec(config={"frontend_config": wider, "outer_ratio": 4, "inner_ratio": 4},
                              frontend_weights=str(tmp_path / "ssl")))


def test_augmentations_are_built_from_the_recipe():
    augmentation = build_augmentation({"rawboost": {"algorithm": 8, "snr_min_db": 20}})
    assert isinstance(augmentation, RawBoost) and augmentation.algorithm == 8
    assert augmentation.config.snr_min_db == 20 and build_augmentation(None) is None
    with pytest.raises(ValueError, match="rir"):
        build_augmentation({"musan_rir": {"musan": "data/musan"}})
