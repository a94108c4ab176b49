"""Parquet sets built elsewhere, read with the shared schema's label ids (`schema.LABEL_NAMES`: 0 spoof, 1 bona fide).

Any `datasets` set whose `label` is a `ClassLabel` is accepted: its class names are mapped to ours by name, never by
index, so the Speech Anti-Spoofing Arena's `ClassLabel([bonafide, spoof])`, where 0 is bona fide, is read with 1 for
bona fide. A label that is not a `ClassLabel`, or class names that are not one bona fide and one spoof name of
`training.score_files.LABEL_VALUES` (any case), are refused. A set in the Arena's layout (`path`, `audio`, `label` and `notes`, a JSON string
holding the `utterance_id` its score files name) also gets `utt_id` (that id) and `attack` (`bonafide`, or `unknown`:
the layout names no generator).
"""

from __future__ import annotations

import json
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, IterableDataset, IterableDatasetDict, Value

from training.score_files import parse_labels

from .schema import BONAFIDE, LABEL_NAMES, SPOOF, attack_name

ARENA_COLUMNS = ("path", "audio", "label", "notes")

AnyDataset = Dataset | DatasetDict | IterableDataset | IterableDatasetDict


def our_label_ids(feature: Any, source: str) -> list[int] | None:
    """Our id of each class id of `feature` (the `label` feature of `source`), or None when they already are ours.

    A `ValueError` naming `source` when `feature` is no `ClassLabel` or its names cannot be mapped."""
    if not isinstance(feature, ClassLabel):
        raise ValueError(f"{source}: its label is {feature!r}, not a ClassLabel, so which id is bona fide is unknown")
    if feature.names == LABEL_NAMES:
        return None
    try:
        ours = parse_labels(feature.names).tolist()
    except ValueError:
        ours = []
    if sorted(ours) != [SPOOF, BONAFIDE]:
        raise ValueError(f"{source}: cannot map the label names {feature.names} to spoof / bonafide by name")
    return ours


def conform_to_shared_schema(dataset: AnyDataset, source: str) -> AnyDataset:
    """`dataset` (one split or all, map-style or streaming) with our label ids and, in the Arena's layout, `utt_id`
    and `attack`. Map-style splits are rewritten in their small columns only (the audio stays where it is)."""
    if isinstance(dataset, (DatasetDict, IterableDatasetDict)):
        return type(dataset)({split: conform_to_shared_schema(rows, source) for split, rows in dataset.items()})
    features = dataset.features
    if features is None or "label" not in features:
        return dataset
    to_ours = our_label_ids(features["label"], source)
    arena_layout = set(ARENA_COLUMNS) <= set(features) and "utt_id" not in features
    if to_ours is None and not arena_layout:
        return dataset
    conformed = features.copy()
    conformed["label"] = ClassLabel(names=LABEL_NAMES)
    if arena_layout:
        conformed.update({"utt_id": Value("string"), "attack": Value("string")})

    def conform_batch(batch: dict[str, list]) -> dict[str, list]:
        labels = batch["label"] if to_ours is None else [to_ours[label] for label in batch["label"]]
        columns = {"label": labels}
        if arena_layout:
            notes = [_read_note(note, source) for note in batch["notes"]]
            columns["utt_id"] = [str(note["utterance_id"]) for note in notes]
            columns["attack"] = [attack_name(str(note.get("attack", "")), label) for note, label in zip(notes, labels)]
        return columns

    if isinstance(dataset, IterableDataset):
        return dataset.map(conform_batch, batched=True, features=conformed)
    columns = conform_batch(dataset.select_columns(["label", *(["notes"] if arena_layout else [])]).to_dict())
    for name, values in columns.items():
        dataset = dataset.add_column(f"{name}.conformed", values, feature=conformed[name])
        dataset = dataset.remove_columns([name] if name in features else [])
        dataset = dataset.rename_column(f"{name}.conformed", name)
    return dataset


def _read_note(text: str, source: str) -> dict[str, Any]:
    """One `notes` value of the Arena's layout: a JSON object with a non-empty `utterance_id`."""
    try:
        note = json.loads(text)
    except (TypeError, json.JSONDecodeError):
        note = None
    if not isinstance(note, dict) or not note.get("utterance_id"):
        raise ValueError(f"{source}: a `notes` value is not a JSON object with an utterance_id: {str(text)[:80]!r}")
    return note
