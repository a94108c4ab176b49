"""Stopping a training run whose loss or weights stop being finite, before anything non-finite is saved.

A NaN or infinite loss (a NaN waveform, an exploding step) poisons every weight at the next optimiser step, and
every later epoch, average and checkpoint with it: the training loops (`training.train`, on audio or cached states;
`training.localisation`) stop at the first one with a `TrainingDivergedError` naming the step.
"""

from __future__ import annotations

import math

import torch

from modeling_nes2net.weight_checks import non_finite_problem


class TrainingDivergedError(FloatingPointError):
    """The loss or the weights of a run became NaN or infinite; `str(error)` is one line naming the step."""


def refuse_non_finite_loss(loss: float, where: str) -> None:
    """Raise `TrainingDivergedError` when the training `loss` of `where` (e.g. `"epoch 2, step 41"`) is not finite."""
    if not math.isfinite(loss):
        raise TrainingDivergedError(f"the training loss is {loss} at {where}: stopping before anything is saved "
                                    "(NaN audio in the training data, or a learning rate too high?)")


def refuse_non_finite_weights(model: torch.nn.Module, where: str) -> None:
    """Raise `TrainingDivergedError` when a weight of `model` holds NaN or an infinity after `where`."""
    broken = non_finite_problem(model.state_dict().items())
    if broken:
        raise TrainingDivergedError(f"after {where}: {broken}; stopping before they are saved")
