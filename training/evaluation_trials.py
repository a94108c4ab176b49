"""The trials `nes2net evaluate` scores, and how results files name and group them: one split of a built dataset
(folder or Hub id) filtered by metadata, the split scored unless told, the `attack` groups of breakdowns and the
dataset's name and id."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.batching import Trials
from training.data import load_built_dataset, read_build_info
from training.data.schema import ATTACK_UNKNOWN, SPOOF, attack_name

logger = logging.getLogger(__name__)


def load_trials(
    dataset: str, split: str, where: dict[str, str] | None = None, columns: Sequence[str] = (),
    optional: Sequence[str] = (),
) -> Trials:
    """The trials of `split` of a built dataset (folder or Hub id), filtered by `where` (column -> value), carrying
    `label`, `utt_id`, `columns` and those of `optional` the build has."""
    rows = load_built_dataset(dataset, split)
    unknown = sorted(set(where or {}) - set(rows.column_names))
    if unknown:
        raise ValueError(f"--where: no column(s) {unknown} in {dataset}; columns: {rows.column_names}")
    if where:
        rows = rows.filter(lambda *values: all(str(v) == str(w) for v, w in zip(values, where.values())),
                           input_columns=list(where))
        if len(rows) == 0:
            raise ValueError(f"no trial of {dataset} {split} matches {where}")
    columns = [*columns, *(column for column in optional if column in rows.column_names)]
    extra = [column for column in dict.fromkeys(columns) if column not in ("label", "utt_id")]
    return Trials(rows, columns=("label", "utt_id", *extra))


def default_split(dataset: str) -> str:
    """The split `evaluate` scores unless told: `eval`, else `test`, of a built folder; `eval` for a Hub id. A
    `ValueError` naming the folder and its splits when it has neither."""
    folder = Path(dataset)
    if not folder.is_dir():
        return "eval"
    splits = list(load_built_dataset(folder))
    for split in ("eval", "test"):
        if split in splits:
            return split
    raise ValueError(f"{folder} has no eval or test split to evaluate; choose one with --split "
                     f"(splits: {', '.join(splits)})")


def attack_groups(trials: Trials, labels: np.ndarray, attacks: list[str]) -> list[str]:
    """The `attack` of each trial for breakdowns: the build's own, or, when it names no spoof's generator
    (`unknown` for all) and the trials carry a `system` column, `system` for the spoofed trials."""
    spoofed = [attack for attack, label in zip(attacks, labels) if label == SPOOF]
    if any(attack != ATTACK_UNKNOWN for attack in spoofed) or "system" not in trials.columns:
        return attacks
    systems = [str(system) for system in trials.column("system")]
    logger.info("the build names no attack; grouping spoofed trials by their `system` column instead")
    return [attack_name(system, int(label)) for system, label in zip(systems, labels)]


def dataset_identity(dataset: str) -> tuple[str, str]:
    """(name, id) of a dataset for results files: a built folder's title and folder name, or the Hub id."""
    folder = Path(dataset)
    if folder.is_dir():
        try:
            title = read_build_info(folder)["title"]
        except (FileNotFoundError, KeyError):
            title = folder.name
        return title, folder.resolve().name
    return dataset, dataset
