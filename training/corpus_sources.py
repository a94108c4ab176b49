"""The corpora of a cached-states recipe (`data.corpora`, see `training.recipe`) as built datasets: a built folder or
Hub id is used as it is, a source folder (audio and a generic `metadata.csv`: `file_name`, `label`, `split`,
`system`) is built once by the generic builder, with `attack` = `system` and, when its table has no dev split, one
carved out of train.

    built = build_corpora({"mini": {"source": "../shared/data/mini-antispoof"}, "mine": {"dataset": "data/mine"}},
                          cache_dir / "data")   # name -> built folder (or Hub id)
"""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hub_cards.published_files import BUILD_INFO_FILE
from training.data import build_dataset
from training.data.generic import GENERIC_KEYS
from training.data.schema import SPOOF

DEV_FRACTION = 0.15


def carve_dev_split(rows: list[dict[str, str]], fraction: float = DEV_FRACTION) -> list[dict[str, str]]:
    """Move `fraction` of the `train` rows to a `dev` split, stratified by (label, system), without randomness.

    Within each (label, system) group of the train split, rows are ordered by the SHA-256 of their `file_name` and the
    first `floor(n * fraction + 0.5)` go to dev (so groups of 1-3 clips stay in train at 15 %). The same table always
    gives the same dev split, on any machine. Returns new rows; the input is not modified.
    """
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        if row["split"] == "train":
            groups[(row["label"], row["system"])].append(row)
    dev = set()
    for members in groups.values():
        ordered = sorted(members, key=lambda row: hashlib.sha256(row["file_name"].encode("utf-8")).hexdigest())
        dev.update(row["file_name"] for row in ordered[: int(len(ordered) * fraction + 0.5)])
    return [{**row, "split": "dev" if row["file_name"] in dev else row["split"]} for row in rows]


def _with_attack_names(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """`attack` = the `system` of each spoofed row (bona fide rows get the builder's `bonafide`)."""
    return [
        {**row, "attack": row["system"] if GENERIC_KEYS[row["label"].strip().lower()] == SPOOF else ""}
        for row in rows
    ]


def build_demo_dataset(source: str | os.PathLike, output_dir: str | os.PathLike, overwrite: bool = False) -> dict[str, Any]:
    """Build a real-audio set at `source` (mini-antispoof, antispoof-plus) into `output_dir` (Parquet shards: train,
    dev, test) with the generic builder.

    The builder reads a derived `metadata.csv` (`attack` from `system`; a dev split carved by `carve_dev_split` when
    the table has none) in a staging
    folder whose other entries link to `source`'s, so the audio is read in place. Returns the build info.
    """
    source = Path(source).resolve()
    table = source / "metadata.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found: a corpus source is a folder of audio with a generic metadata.csv")
    with open(table, encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        fieldnames, rows = list(reader.fieldnames or []), list(reader)
    missing = {"file_name", "label", "split", "system"} - set(fieldnames)
    if missing:
        raise ValueError(f"{table} lacks the column(s) {', '.join(sorted(missing))}")
    has_dev = any(row["split"] == "dev" for row in rows)
    rows = _with_attack_names(rows if has_dev else carve_dev_split(rows))
    with tempfile.TemporaryDirectory(prefix="mini-antispoof-demo.") as staging:
        staging = Path(staging)
        for entry in source.iterdir():
            if entry.name != table.name:
                (staging / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        with open(staging / table.name, "w", encoding="utf-8", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=[*fieldnames, "attack"], lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        command = (f"training.corpus_sources.build_demo_dataset ({source.name}/metadata.csv"
                   + (")" if has_dev else f", carve_dev_split fraction {DEV_FRACTION})"))
        return build_dataset("generic", staging, output_dir, overwrite=overwrite, build_command=command, progress=False,
                             allow_outside_root=True)  # the staging folder's links lead to `source` on purpose


def build_corpora(corpora: Mapping[str, Mapping[str, str]], data_dir: Path) -> dict[str, str]:
    """Each corpus of a recipe's `data.corpora` as a built dataset: `{dataset: FOLDER_OR_HUB_ID}` as it is,
    `{source: FOLDER}` built (once) by `build_demo_dataset` into `data_dir / name`; name -> built folder or Hub id.
    A source that cannot be built is a `FileNotFoundError` in one line naming its key."""
    built = {}
    for name, corpus in corpora.items():
        if "dataset" in corpus:
            built[name] = corpus["dataset"]
            continue
        folder = data_dir / name
        if not (folder / BUILD_INFO_FILE).is_file():
            try:
                build_demo_dataset(corpus["source"], folder)
            except (OSError, ValueError) as error:
                message = " ".join(str(error).split())
                raise FileNotFoundError(f"data.corpora.{name}.source {corpus['source']!r} cannot be built: "
                                        f"{message}") from None
        built[name] = str(folder)
    return built
