"""Learning-rate schedules of the paper's recipes, built by transformers' `get_scheduler`: a multiplier of every
parameter group's own base rate, so a front-end learning rate keeps its ratio to the back-end's.

- `constant` (ASVspoof 2019 LA): 1.
- `cosine` (ASVspoof 5): `cosine_with_min_lr` over the run's optimiser steps, from 1 at step 0 down to
  `min_lr / lr` at `total_steps`, one value per step.
- `cosine_epochs` (CtrSVDD): the same cosine over `period_epochs` epochs, advanced once per epoch: PyTorch's
  `CosineAnnealingLR(T_max=period_epochs, eta_min=min_lr)` as the CtrSVDD recipe stepped it, so the rate is
  constant within an epoch and, past `T_max`, climbs back up (the schedule is periodic).

The multiplier depends on the scheduler's step count alone, which every checkpoint saves, so a resumed run continues
the same curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import get_scheduler


@dataclass
class LearningRateSchedule:
    """A scheduler and when it advances: after every optimiser step, or once per epoch (`per_epoch`)."""

    scheduler: torch.optim.lr_scheduler.LRScheduler
    per_epoch: bool = False

    def optimizer_step_done(self) -> None:
        if not self.per_epoch:
            self.scheduler.step()

    def epoch_done(self) -> None:
        if self.per_epoch:
            self.scheduler.step()


def build_schedule(
    optimizer: torch.optim.Optimizer, schedule: str, lr: float, min_lr: float, total_steps: int, period_epochs: int
) -> LearningRateSchedule:
    """The recipe's `schedule` (see the module docstring) on `optimizer`; `total_steps` optimiser steps in the run,
    `period_epochs` the half-period of `cosine_epochs`."""
    if schedule == "constant":
        return LearningRateSchedule(get_scheduler("constant", optimizer))
    if schedule in ("cosine", "cosine_epochs"):
        per_epoch = schedule == "cosine_epochs"
        scheduler = get_scheduler("cosine_with_min_lr", optimizer, num_warmup_steps=0,
                                  num_training_steps=period_epochs if per_epoch else total_steps,
                                  scheduler_specific_kwargs={"min_lr_rate": min_lr / lr})
        return LearningRateSchedule(scheduler, per_epoch)
    raise ValueError(f"unknown schedule {schedule!r}")
