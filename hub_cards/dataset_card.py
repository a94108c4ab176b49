"""Dataset cards for corpora built by `nes2net data build` (Parquet shards + `build_info.json`).

Every figure on the card (rows, label and attack counts, hours, columns) is read from `build_info.json`; a
`DatasetCardSpec` adds what only the publisher knows (repository, citation, where the corpus comes from).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from modeling_nes2net.atomic import write_text_atomic
from .published_files import BUILD_INFO_FILE, CARD_FILE, read_json_object
from .metadata import TASK, dataset_card_problems
from .templating import MarkdownText

DATA_DIR = "data"
SHARED_COLUMN_DESCRIPTIONS = {
    "audio": MarkdownText("the original encoded file (FLAC, WAV, ...), decoded at 16 kHz by `datasets.Audio`"),
    "label": MarkdownText("`ClassLabel(names=['spoof', 'bonafide'])`: 0 = spoof, 1 = bona fide"),
    "utt_id": "the utterance id of the corpus' protocol",
    "speaker": "the speaker id of the corpus' protocol",
    "attack": MarkdownText(
        "the spoofing system (`bonafide` on bona fide rows, `unknown` where the corpus does not say)"
    ),
}
# Upper bounds (exclusive) of the Hub's size categories.
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))


@dataclass(frozen=True)
class DatasetCardSpec:
    """What the publisher states about a built dataset.

    Args:
        repo_id: Hub dataset repository (`owner/name`); `None` for the card `nes2net data build` writes, before the
            publisher has chosen one.
        source_url: where the original corpus is distributed.
        citation: BibTeX of the corpus' reference paper.
        license: Hub license identifier; defaults to the one recorded in `build_info.json`.
    """

    repo_id: str | None = None
    source_url: str | None = None
    citation: str | None = None
    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    language: list[str] = field(default_factory=lambda: ["en"])
    extra_tags: list[str] = field(default_factory=list)
    file_descriptions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.repo_id is not None and "/" not in self.repo_id:
            raise ValueError(f"repo_id must be 'owner/name', got {self.repo_id!r}")


def read_build_info(dataset_dir: str | os.PathLike) -> dict[str, Any]:
    """The folder's `build_info.json`, with the keys the card needs checked."""
    path = Path(dataset_dir) / BUILD_INFO_FILE
    info = read_json_object(path, missing=f"{path} is missing: not a dataset built by `nes2net data build`")
    missing = [key for key in ("corpus", "title", "splits", "features", "label_names", "num_rows") if key not in info]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}")
    return info


def size_category(num_rows: int) -> str:
    return next((name for bound, name in SIZE_CATEGORIES if num_rows < bound), "n>100M")


def split_pattern(split: str) -> str:
    """The `data_files` pattern of a split; the shards are `data/{split}-{index:05d}-of-{count:05d}.parquet`."""
    return f"{DATA_DIR}/{split}-*.parquet"


def _add_dataset_info(card_data: DatasetCardData, info: dict[str, Any]) -> None:
    """Adds the `dataset_info` metadata block (features with label names, split sizes), as `datasets` writes it."""
    from datasets import DatasetInfo, Features, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict

    splits = SplitDict()
    for name, split in info["splits"].items():
        splits.add(SplitInfo(name=name, num_examples=split["num_rows"], num_bytes=split.get("num_audio_bytes", 0)))
    dataset_info = DatasetInfo(features=Features.from_dict(info["features"]), splits=splits)
    DatasetInfosDict({"default": dataset_info}).to_dataset_card_data(card_data)


def _attack_table(info: dict[str, Any]) -> dict[str, Any]:
    splits = list(info["splits"])
    attacks = sorted({attack for split in info["splits"].values() for attack in split.get("attack_counts", {})})
    rows = [(attack, [info["splits"][s].get("attack_counts", {}).get(attack, 0) for s in splits]) for attack in attacks]
    return {"splits": splits, "rows": rows}


def _column_rows(info: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for name, feature in info["features"].items():
        kind = feature.get("_type", "?") if isinstance(feature, dict) else type(feature).__name__
        if kind == "Value":
            kind = feature["dtype"]
        description = SHARED_COLUMN_DESCRIPTIONS.get(name, "corpus metadata, as written in its protocol files")
        rows.append((name, kind, description))
    return rows


def render_dataset_card(dataset_dir: str | os.PathLike, spec: DatasetCardSpec) -> DatasetCard:
    """Renders the card of the dataset built in `dataset_dir` from its `build_info.json`; raises `ValueError` when
    the card would not pass the Hub checks (`dataset_card_problems`)."""
    card = dataset_card_from_info(read_build_info(dataset_dir), spec)
    problems = dataset_card_problems(card)
    if problems:
        raise ValueError("the rendered dataset card is invalid: " + "; ".join(problems))
    return card


def dataset_card_from_info(info: dict[str, Any], spec: DatasetCardSpec) -> DatasetCard:
    """The card of a build described by `info` (the `build_info.json` dict), unchecked: `nes2net data build` writes
    it into every built folder, whose publisher may not know the license or the repository yet."""
    from .templating import render_body

    if info["label_names"] != ["spoof", "bonafide"]:
        raise ValueError(f"label_names must be ['spoof', 'bonafide'], got {info['label_names']}")
    license_id = spec.license or info.get("license")
    tags = ["anti-spoofing", "deepfake-detection", "audio-deepfake-detection", "speech", info["corpus"]]
    card_data = DatasetCardData(
        license=license_id,
        license_name=spec.license_name,
        license_link=spec.license_link,
        language=spec.language,
        pretty_name=info["title"],
        task_categories=[TASK],
        tags=list(dict.fromkeys(tags + spec.extra_tags)),
        size_categories=[size_category(info["num_rows"])],
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": split_pattern(split)} for split in info["splits"]],
            }
        ],
    )
    _add_dataset_info(card_data, info)
    files = {CARD_FILE: "this dataset card", BUILD_INFO_FILE: "what was built from what, with every count on this card"}
    for split, split_info in info["splits"].items():
        count = len(split_info.get("files", [])) or "the"
        files[split_pattern(split)] = f"{count} Parquet shard(s) of the {split} split, audio bytes embedded"
    files.update(spec.file_descriptions)
    body = render_body(
        "dataset_card.md",
        spec=spec,
        repo=spec.repo_id or "<this repo or folder>",
        info=info,
        license_id=license_id,
        attacks=_attack_table(info),
        columns=_column_rows(info),
        files=files,
        first_split=next(iter(info["splits"])),
    )
    return DatasetCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


def write_dataset_card(dataset_dir: str | os.PathLike, spec: DatasetCardSpec) -> Path:
    """Renders the card into `dataset_dir/README.md` (atomically), replacing the plain card of the build."""
    card = render_dataset_card(dataset_dir, spec)
    return write_text_atomic(Path(dataset_dir) / CARD_FILE, str(card))
