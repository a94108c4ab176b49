"""A short training run checkpointed in one process, shared by the checkpoint tests: a small model with its optimiser
and schedule (`training_objects`), and the `run` fixture, its checkpoints of steps 2 and 4."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from training.checkpoints import save_checkpoint
from training.schedules import build_schedule


def training_objects(seed: int):
    """A small model, its Adam optimiser (with a named group, as training uses) and a cosine schedule."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    optimizer = torch.optim.Adam([{"params": model.parameters(), "name": "backend"}], lr=1e-2)
    scheduler = build_schedule(optimizer, "cosine", 1e-2, 1e-4, 20, 5).scheduler
    return model, optimizer, scheduler


def train_steps(model, optimizer, scheduler, steps: int) -> None:
    for _ in range(steps):
        loss = model(torch.randn(8, 3)).square().mean() + torch.nn.functional.dropout(torch.ones(1), 0.5).sum()
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()


@pytest.fixture
def run(tmp_path):
    """Checkpoints of steps 2 and 4 of a short run, and the objects as they were at step 4."""
    accelerator = Accelerator(cpu=True)
    model, optimizer, scheduler = training_objects(0)
    for step in (2, 4):
        train_steps(model, optimizer, scheduler, 2)
        save_checkpoint(accelerator, tmp_path, step, {"global_step": step}, model, optimizer, scheduler, keep=2)
    return {"accelerator": accelerator, "root": tmp_path, "model": model, "optimizer": optimizer,
            "scheduler": scheduler, "next_random": (random.random(), np.random.rand(), torch.rand(3))}
