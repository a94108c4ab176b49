"""Creating the `Accelerator` of a training or scoring run, refusing launches that would silently run alone."""

from __future__ import annotations

import os

import torch
from accelerate import Accelerator


def launched_processes() -> int:
    """How many processes the launcher (`accelerate launch`, `torchrun`) started, from `WORLD_SIZE`."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def create_accelerator(**kwargs) -> Accelerator:
    """An `Accelerator` that uses every launched process.

    Without a GPU, `accelerate launch --multi_gpu --num_processes N` gives N processes that each believe they are
    alone (and `--cpu --num_processes N` runs one); here such a launch becomes gloo CPU training
    (`ACCELERATE_USE_CPU=true` does the same), and any other mismatch is an error.
    """
    if launched_processes() > 1 and not torch.cuda.is_available():
        kwargs.setdefault("cpu", True)
    accelerator = Accelerator(**kwargs)
    if accelerator.num_processes != launched_processes():
        raise RuntimeError(
            f"the launcher started {launched_processes()} processes but Accelerate sees {accelerator.num_processes}: "
            "check the accelerate config (on CPU, set ACCELERATE_USE_CPU=true)"
        )
    return accelerator
