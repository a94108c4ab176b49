"""A training run whose loss becomes NaN stops at that step, in one line naming it, with a non-zero exit, and saves
nothing from then on: no epoch folder, no final model (`nes2net train` on audio and on cached states, the localiser)."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest
import torch

from modeling_nes2net import Nes2NetForAudioClassification, Nes2NetForAudioFrameClassification
from nes2net.cli import main
from tests.tiny_models import tiny_config, tiny_model
from tests.training.corpus_layouts import write_partialspoof
from tests.training.train_helpers import build_tiny_corpus
from training.checkpoints import complete_checkpoints
from training.data import build_dataset
from training.divergence import TrainingDivergedError
from training.frozen_frontend import FrontendCache
from training.localisation import LocaliserTraining, train_localiser
from training.recipe import recipe_from_dict
from training.train import train_on_states


def _train_on_states(model, cache: FrontendCache, output, **training) -> None:
    """`nes2net train`'s loop on cached states held in memory, in 4-clip steps, the last epoch kept."""
    recipe = recipe_from_dict({"data": {"corpora": {"toy": {"dataset": "in memory"}}},
                               "training": {"epochs": 2, "batch_size": 4, "lr": 1e-3, "frontend_lr": 0,
                                            "mixed_precision": "no", **training}})
    train_on_states(recipe, output, (cache, None), model=model)


def test_training_on_cached_states_stops_at_the_first_nan_loss_saving_nothing(tmp_path):
    torch.manual_seed(0)
    model = tiny_model("spectrogram")
    states = [torch.randn(1, 12, model.config.feature_size).half() for _ in range(8)]
    states[5] = torch.full_like(states[5], float("nan"))  # an all-NaN clip
    cache = FrontendCache(states, np.arange(8) % 2)
    with pytest.raises(TrainingDivergedError, match=r"^the training loss is nan at epoch 1, step [12]: stopping"):
        _train_on_states(model, cache, tmp_path / "run")
    assert not (tmp_path / "run" / "final").exists() and not (tmp_path / "run" / "epochs").exists()
    assert not complete_checkpoints(tmp_path / "run" / "checkpoints")  # nothing saved once the loss was NaN


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_tiny_corpus(tmp_path_factory.mktemp("corpus"))


def _train(dataset, output, caplog, *settings: str) -> str:
    """`nes2net train mini` on the tiny corpus in 4-clip steps, no dev split: asserts exit 1 and returns the one error
    line."""
    settings = ["data.crop_samples=4000", "data.dev_split=null", "data.num_workers=0", "training.batch_size=4",
                "evaluation=[]", *settings]
    args = ["train", "mini", "--dataset", str(dataset), "--output-dir", str(output)]
    with caplog.at_level(logging.ERROR):
        assert main(args + [item for setting in settings for item in ("--set", setting)]) == 1
    (error,) = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert "\n" not in error
    return error


def test_nes2net_train_stops_at_the_first_nan_loss_naming_the_step(dataset, tmp_path, monkeypatch, caplog):
    """The loss of the second optimiser step is NaN: exit 1, one error line naming it, no epoch or final folder."""
    steps = itertools.count(1)
    compute_loss = Nes2NetForAudioClassification.compute_loss

    def nan_from_step_two(model, logits, labels):
        loss = compute_loss(model, logits, labels)
        return loss * float("nan") if next(steps) >= 2 else loss

    monkeypatch.setattr(Nes2NetForAudioClassification, "compute_loss", nan_from_step_two)
    output = tmp_path / "run"
    error = _train(dataset, output, caplog, "training.epochs=2", "training.checkpoint_every_steps=1")
    assert error.startswith("the training loss is nan at epoch 1, step 2: stopping")
    assert not (output / "final").exists() and not (output / "epochs").exists()
    assert [checkpoint.name for checkpoint in complete_checkpoints(output / "checkpoints")] == ["step-00000001"]


def test_weights_that_diverge_without_a_nan_loss_are_never_saved(dataset, tmp_path, caplog):
    """An infinite learning rate: the one step's loss is finite, the weights after it are not."""
    output = tmp_path / "run"
    error = _train(dataset, output, caplog, "training.epochs=1", "training.max_steps=1", "training.lr=.inf")
    assert error.startswith("after epoch 1, step 1: ") and "weight tensor(s) hold NaN or infinite values" in error
    assert not (output / "final").exists() and not (output / "epochs").exists()


def test_training_on_cached_states_never_returns_non_finite_weights(tmp_path):
    torch.manual_seed(0)
    model = tiny_model("spectrogram")
    cache = FrontendCache([torch.randn(1, 12, model.config.feature_size).half() for _ in range(8)], np.arange(8) % 2)
    with pytest.raises(TrainingDivergedError, match=r"^after epoch 1, step 1: \d+ weight tensor\(s\) hold NaN"):
        _train_on_states(model, cache, tmp_path / "run", epochs=1, batch_size=8, lr=float("inf"))
    assert not (tmp_path / "run" / "final").exists() and not (tmp_path / "run" / "epochs").exists()


def test_train_localiser_stops_at_the_first_nan_loss_before_applying_it(tmp_path, mini_antispoof, monkeypatch):
    write_partialspoof(tmp_path / "database", mini_antispoof, count=4)
    build_dataset("partialspoof", tmp_path / "database", tmp_path / "built", progress=False)
    torch.manual_seed(0)
    model = Nes2NetForAudioFrameClassification(tiny_config("spectrogram", spectrogram_hop_length=160))
    monkeypatch.setattr(model, "compute_frame_loss", lambda logits, labels: logits.sum() * float("nan"))
    with pytest.raises(TrainingDivergedError, match=r"^the training loss is nan at epoch 1, step 1: stopping"):
        train_localiser(model, tmp_path / "built", LocaliserTraining(epochs=2, batch_size=2, crop_seconds=1.0))
    assert all(torch.isfinite(parameter).all() for parameter in model.parameters())
