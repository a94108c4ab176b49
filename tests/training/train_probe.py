"""`nes2net` with test probes injected into training, run as `python -m tests.training.train_probe ARGS` (alone or
under `accelerate launch -m`), configured by environment variables:

    PROBE_BATCHES_DIR=DIR      append each micro-batch's utterance ids, one batch a line, to DIR/batches.rank<R>.txt
    PROBE_CRASH_AT_STEP=N      exit hard (code CRASH_EXIT_CODE) while committing the checkpoint of optimiser step N,
                               after every file is written and before the rename that makes it visible
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import training.train
from nes2net.cli import main
from training.checkpoints import save_checkpoint

CRASH_EXIT_CODE = 75


def record_batches(folder: Path) -> None:
    collate = training.train.collate_trials
    path = folder / f"batches.rank{os.environ.get('RANK', '0')}.txt"

    def recording_collate(items):
        folder.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(" ".join(item["utt_id"] for item in items) + "\n")
        return collate(items)

    training.train.collate_trials = recording_collate


def crash_while_saving(step: int) -> None:
    def crash() -> None:
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)

    def save_or_crash(accelerator, root, saved_step, *args, **kwargs):
        if saved_step == step:
            kwargs["before_commit"] = crash
        return save_checkpoint(accelerator, root, saved_step, *args, **kwargs)

    training.train.save_checkpoint = save_or_crash


if __name__ == "__main__":
    if "PROBE_BATCHES_DIR" in os.environ:
        record_batches(Path(os.environ["PROBE_BATCHES_DIR"]))
    if "PROBE_CRASH_AT_STEP" in os.environ:
        crash_while_saving(int(os.environ["PROBE_CRASH_AT_STEP"]))
    sys.exit(main())
