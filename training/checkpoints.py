"""Resumable training checkpoints, written so that a crash at any moment leaves the last complete one usable.

`CHECKPOINTS/step-NNNNNNNN/` holds what `Accelerator.save_state` writes (weights, optimiser, scheduler, gradient
scaler, every process's RNG states) plus `trainer_state.json` (epoch, step, best epochs, ...). It is written as
`CHECKPOINTS/.step-NNNNNNNN.partial/` by every process, completed with `trainer_state.json` by the main process and
only then renamed into place; `latest_checkpoint` ignores anything else. With several nodes, the output folder
must be on a file system they share.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from accelerate import Accelerator

logger = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.json"
CHECKPOINT_NAME = re.compile(r"^step-(\d{8})$")


def checkpoint_dir(root: Path, step: int) -> Path:
    return root / f"step-{step:08d}"


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    """The complete checkpoint of the highest step under `root`, or None."""
    root = Path(root)
    complete = [
        path for path in root.glob("step-*")
        if CHECKPOINT_NAME.match(path.name) and (path / TRAINER_STATE).is_file()
    ] if root.is_dir() else []
    return max(complete, key=lambda path: path.name, default=None)


def read_trainer_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))


def save_checkpoint(
    accelerator: Accelerator,
    root: str | os.PathLike,
    step: int,
    trainer_state: dict[str, Any],
    keep: int = 1,
    before_commit: Callable[[], None] | None = None,
) -> Path:
    """Save a resumable checkpoint of `step` under `root` (every process must call this); keep the last `keep`.

    `before_commit` runs on the main process once everything is written, just before the rename that makes the
    checkpoint visible (tests use it to simulate a crash at the worst moment).
    """
    root = Path(root)
    final = checkpoint_dir(root, step)
    staging = root / f".{final.name}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write_json_durably(staging / TRAINER_STATE, trainer_state)
        if before_commit is not None:
            before_commit()
        if final.exists():  # the same step saved again after a resume: replace it
            shutil.rmtree(final)
        os.replace(staging, final)
        _fsync_dir(root)
        for old in sorted(path for path in root.glob("step-*") if CHECKPOINT_NAME.match(path.name))[:-keep]:
            shutil.rmtree(old)
        logger.info("saved checkpoint %s", final)
    accelerator.wait_for_everyone()
    return final


def remove_partial_checkpoints(root: str | os.PathLike) -> None:
    """Delete what an interrupted `save_checkpoint` left behind (main process only)."""
    for partial in Path(root).glob(".step-*.partial") if Path(root).is_dir() else ():
        shutil.rmtree(partial, ignore_errors=True)


def _write_json_durably(path: Path, data: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

