"""The corpora of a cached-states recipe (`data.corpora`, see `training.recipe`) as built datasets: a built folder or
Hub id is used as it is, a source folder (audio and a generic `metadata.csv`: `file_name`, `label`, `split`,
`system`) is built once by the generic builder, with `attack` = `system` and, when its table has no dev split, one
carved out of train. A vocoded corpus (`{vocoded: NAME, vocoders: [...]}`) is the copy-synthesis of the train-split
bona fide clips of the source corpus NAME (`training.data.vocoded`): spoofed clips only, in a train split only, each
naming in `PAIR_SOURCE_COLUMN` the genuine source of the clip it copies.

    built = build_corpora({"mini": {"source": "../shared/data/mini-antispoof"}, "mine": {"dataset": "data/mine"},
                           "mini-vocoded": {"vocoded": "mini", "vocoders": ["hifigan", "world"]}},
                          cache_dir / "data")   # name -> built folder (or Hub id)
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from hub_cards.published_files import BUILD_INFO_FILE
from training.data import build_dataset
from training.data.generic import GENERIC_KEYS
from training.data.schema import SPOOF
from training.data.vocoded import SOURCE_SYSTEM_COLUMN, default_cache_dir, write_vocoded_corpus
from training.data.vocoders import get_vocoder
from training.recipe import VOCODED

DEV_FRACTION = 0.15
PAIR_SOURCE_COLUMN = "pair_source"
"""A vocoded clip's `corpus/system`: the genuine source of the bona fide clip it copies (the group cross-validation
holds out with that clip, `training.cross_validation`)."""


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


def _source_table(source: Path) -> tuple[list[str], list[dict[str, str]], bool]:
    """The columns and rows of `source`'s `metadata.csv`, with `attack` added and a dev split carved out of train when
    the table has none (`carve_dev_split`), and whether it had one."""
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
    return [*fieldnames, "attack"], _with_attack_names(rows if has_dev else carve_dev_split(rows)), has_dev


@contextlib.contextmanager
def _staged(source: Path, fieldnames: list[str], rows: list[dict[str, str]]) -> Iterator[Path]:
    """A temporary folder whose `metadata.csv` holds `rows` and whose other entries link to `source`'s, so that the
    audio is read in place."""
    with tempfile.TemporaryDirectory(prefix="nes2net-corpus.") as staging:
        staging = Path(staging)
        for entry in source.iterdir():
            if entry.name != "metadata.csv":
                (staging / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        _write_table(staging / "metadata.csv", fieldnames, rows)
        yield staging


def _write_table(path: Path, fieldnames: list[str], rows: list[dict[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=fieldnames, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def build_demo_dataset(source: str | os.PathLike, output_dir: str | os.PathLike, overwrite: bool = False) -> dict[str, Any]:
    """Build a real-audio set at `source` (mini-antispoof, antispoof-plus) into `output_dir` (Parquet shards: train,
    dev, test) with the generic builder.

    The builder reads a derived `metadata.csv` (`attack` from `system`; a dev split carved by `carve_dev_split` when
    the table has none) in a staging folder whose other entries link to `source`'s, so the audio is read in place.
    Returns the build info.
    """
    source = Path(source).resolve()
    fieldnames, rows, has_dev = _source_table(source)
    command = (f"training.corpus_sources.build_demo_dataset ({source.name}/metadata.csv"
               + (")" if has_dev else f", carve_dev_split fraction {DEV_FRACTION})"))
    with _staged(source, fieldnames, rows) as staging:
        return build_dataset("generic", staging, output_dir, overwrite=overwrite, build_command=command, progress=False,
                             allow_outside_root=True)  # the staging folder's links lead to `source` on purpose


def build_vocoded_corpus(source: str | os.PathLike, source_name: str, vocoders: list[str],
                         output_dir: str | os.PathLike) -> dict[str, Any]:
    """Build the copy-synthesis by each of `vocoders` (`training.data.vocoders` names) of the bona fide clips in the
    train split of `source` (split as `build_demo_dataset` splits it, so no dev or test clip is copied) into
    `output_dir`: a train split of spoofed clips, `system` = the vocoder, `PAIR_SOURCE_COLUMN` =
    `source_name/<system of the copied clip>`. Copies are cached between builds (`training.data.vocoded`). Returns
    the build info."""
    source = Path(source).resolve()
    fieldnames, rows, _ = _source_table(source)
    with _staged(source, fieldnames, rows) as staging, \
            tempfile.TemporaryDirectory(prefix="nes2net-vocoded.") as work:
        copies = Path(work) / "copies"
        written = write_vocoded_corpus(staging, copies, [get_vocoder(name) for name in vocoders], splits=["train"],
                                       cache_dir=default_cache_dir(), allow_outside_root=True, copies_only=True)
        spoofed = []
        for row in written:
            clip_system = row.pop(SOURCE_SYSTEM_COLUMN)
            spoofed.append({**row, "attack": row["system"], PAIR_SOURCE_COLUMN: f"{source_name}/{clip_system}"})
        _write_table(copies / "metadata.csv", [*spoofed[0].keys()], spoofed)
        command = (f"training.corpus_sources.build_vocoded_corpus ({source.name}/metadata.csv, train bona fide, "
                   f"{', '.join(vocoders)})")
        return build_dataset("generic", copies, output_dir, build_command=command, progress=False)


def corpus_splits(corpus: Mapping[str, Any], splits: Iterable[str]) -> tuple[str, ...]:
    """The splits of `splits` that a `data.corpora` entry has once built: a vocoded corpus has only `train`."""
    return tuple(split for split in splits if VOCODED not in corpus or split == "train")


def build_corpora(corpora: Mapping[str, Mapping[str, str]], data_dir: Path) -> dict[str, str]:
    """Each corpus of a recipe's `data.corpora` as a built dataset: `{dataset: FOLDER_OR_HUB_ID}` as it is,
    `{source: FOLDER}` built (once) by `build_demo_dataset` and `{vocoded: NAME, vocoders: [...]}` by
    `build_vocoded_corpus` from NAME's source folder, into `data_dir / name`; name -> built folder or Hub id. A
    source that cannot be built is a `FileNotFoundError` in one line naming its key."""
    built = {}
    for name, corpus in corpora.items():
        if "dataset" in corpus:
            built[name] = corpus["dataset"]
            continue
        folder = data_dir / name
        if not (folder / BUILD_INFO_FILE).is_file():
            try:
                if VOCODED in corpus:
                    build_vocoded_corpus(corpora[corpus[VOCODED]]["source"], corpus[VOCODED], corpus["vocoders"],
                                         folder)
                else:
                    build_demo_dataset(corpus["source"], folder)
            except (OSError, ValueError) as error:
                key = VOCODED if VOCODED in corpus else next(iter(corpus))
                message = " ".join(str(error).split())
                raise FileNotFoundError(f"data.corpora.{name}.{key} {corpus[key]!r} cannot be built: {message}") from None
        built[name] = str(folder)
    return built
