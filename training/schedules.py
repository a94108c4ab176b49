"""Learning-rate schedules of the paper's recipes, as a multiplier of the base rate at each optimiser step.

- `constant` (ASVspoof 2019 LA): 1.
- `cosine` (ASVspoof 5): cosine from 1 at step 0 down to `min_lr / lr` at `total_steps`, one value per step.
- `cosine_epochs` (CtrSVDD): PyTorch's `CosineAnnealingLR(T_max=period_epochs, eta_min=min_lr)` stepped once per
  epoch, so the rate is constant within an epoch and, past `T_max`, climbs back up (the schedule is periodic).

The multiplier depends on the step alone, so a resumed run continues the same curve. It applies to every parameter
group, so a front-end learning rate keeps its ratio to the back-end's.
"""

from __future__ import annotations

import math
from functools import partial

import torch


def cosine_factor(progress: float, floor: float) -> float:
    """`floor + (1 - floor) * (1 + cos(pi * progress)) / 2`: 1 at progress 0, `floor` at progress 1."""
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_factor(
    step: int, schedule: str, floor: float, total_steps: int, steps_per_epoch: int, period_epochs: int
) -> float:
    """Multiplier of the base learning rate for optimiser step `step` (0-based); `floor` is `min_lr / lr`."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return cosine_factor(min(step, total_steps) / max(total_steps, 1), floor)
    if schedule == "cosine_epochs":
        return cosine_factor((step // steps_per_epoch) / period_epochs, floor)
    raise ValueError(f"unknown schedule {schedule!r}")


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    schedule: str,
    lr: float,
    min_lr: float,
    total_steps: int,
    steps_per_epoch: int,
    period_epochs: int,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A `LambdaLR` following `lr_factor`; call `scheduler.step()` once per optimiser step."""
    factor = partial(
        lr_factor,
        schedule=schedule,
        floor=min_lr / lr,
        total_steps=total_steps,
        steps_per_epoch=steps_per_epoch,
        period_epochs=period_epochs,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
