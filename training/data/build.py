"""Building a corpus into Parquet shards of the shared schema, with its build info and dataset card.

The output folder is laid out as the Hub expects, so it can be uploaded as is:

    OUT/data/{split}-{index:05d}-of-{count:05d}.parquet   audio bytes embedded, shards of bounded size
    OUT/build_info.json                                   what was built from what (read by the card renderer)
    OUT/README.md                                         a plain dataset card with the `configs` YAML header

Rows are streamed from the corpus to the shards one file at a time, so memory does not grow with the corpus.
The original encoded bytes (FLAC, WAV, ...) are stored untouched: `Audio(sampling_rate=16000)` resamples at
decode time when a file is not 16 kHz already. Each file is read once and refused when damaged, shared between
splits or labelled both ways (`training.data.audit`): the build then fails listing every such file. Everything is
written to a temporary folder next to OUT and moved into place at the end, so a failed build leaves nothing
half-written.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import datasets
from datasets import Features, IterableDataset
from datasets.arrow_writer import ParquetWriter
from tqdm.auto import tqdm

from hub_cards.dataset_card import DatasetCardSpec, dataset_card_from_info
from hub_cards.published_files import BUILD_INFO_FILE, CARD_FILE, public_path

from .audit import CorpusAudit
from .corpora import get_builder
from .layout import CorpusBuilder, CorpusLayoutError, CorpusScan, LayoutProblem
from .schema import ATTACK_BONAFIDE, LABEL_NAMES, SAMPLING_RATE, SHARED_COLUMNS, Utterance, corpus_features

logger = logging.getLogger(__name__)

DEFAULT_MAX_SHARD_BYTES = 500 * 1000**2
ROWS_PER_ROW_GROUP = 100
DATA_DIR = "data"


def scan_corpus(
    corpus: str | CorpusBuilder,
    root: str | os.PathLike,
    *,
    metadata: str | None = None,
    strict: bool = False,
    skip_missing_audio: bool = False,
    allow_outside_root: bool = False,
) -> tuple[CorpusBuilder, CorpusScan]:
    """Check the layout of `root` against `corpus` without reading any audio.

    Raises CorpusLayoutError listing every problem that stops a build (see CorpusScan.errors); extra files
    (and, with `skip_missing_audio`, missing ones) are logged as warnings and kept in `scan.problems`.
    """
    builder = get_builder(corpus, metadata=metadata, allow_outside_root=allow_outside_root)
    root = Path(root)
    if root.is_file():
        raise NotADirectoryError(f"{builder.name}: {root} is a file; ROOT is the corpus folder")
    if not root.is_dir():
        raise FileNotFoundError(f"{builder.name}: corpus folder {root} does not exist")
    scan = builder.scan(root)
    errors = scan.errors(strict=strict, skip_missing_audio=skip_missing_audio)
    if errors:
        raise CorpusLayoutError(builder.name, root, errors, builder.layout)
    if not any(scan.splits.values()):
        raise CorpusLayoutError(
            builder.name, root, [LayoutProblem("missing", root, "no utterances found")], builder.layout
        )
    for kind, count in Counter(problem.kind for problem in scan.problems).items():
        example = next(problem for problem in scan.problems if problem.kind == kind)
        logger.warning(
            "%s: %d %s problem(s) ignored (their rows or files are left out), e.g. %s",
            builder.name,
            count,
            kind,
            example,
        )
    return builder, scan


def check_corpus(
    corpus: str | CorpusBuilder, root: str | os.PathLike, *, progress: bool = True, **scan_options: Any
) -> tuple[CorpusBuilder, CorpusScan]:
    """`scan_corpus`, then read every audio file as a build does (`training.data.audit`), writing nothing.

    Raises CorpusLayoutError listing every damaged file and every clip shared between splits or labelled both ways.
    """
    builder, scan = scan_corpus(corpus, root, **scan_options)
    audit = CorpusAudit()
    for split, utterances in scan.splits.items():
        for utterance in tqdm(utterances, desc=split, unit="file", disable=not progress):
            audit.read(split, utterance)
    audit.raise_problems(builder.name, Path(root))
    return builder, scan


def encode_row(utterance: Utterance, audio_bytes: bytes, metadata_columns: Iterable[str]) -> dict[str, Any]:
    """One row of the shared schema, the audio kept as its original encoded bytes."""
    return {
        "audio": {"bytes": audio_bytes, "path": utterance.audio_path.name},
        "label": utterance.label,
        "utt_id": utterance.utt_id,
        "speaker": utterance.speaker,
        "attack": utterance.attack,
        **{name: utterance.metadata.get(name) for name in metadata_columns},
    }


def build_dataset(
    corpus: str | CorpusBuilder,
    root: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    metadata: str | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    strict: bool = False,
    skip_missing_audio: bool = False,
    allow_outside_root: bool = False,
    overwrite: bool = False,
    license_id: str | None = None,
    build_command: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Build `corpus` found at `root` into Parquet shards under `output_dir`; returns the build info.

    Args:
        corpus: a name of `BUILDERS` (e.g. "asvspoof2019-la", "generic") or a builder.
        metadata: the metadata table of the generic builder, relative to `root`.
        max_shard_bytes: start a new shard once a shard holds this many bytes of audio.
        strict: fail on extra files too (by default they are reported and left out).
        skip_missing_audio: leave out protocol entries whose audio file is missing instead of failing.
        allow_outside_root: let the generic builder read audio files outside `root` (see `training.data.generic`).
        overwrite: replace an existing, non-empty `output_dir`.
        license_id: the Hub licence id to record (e.g. "cc-by-4.0"); defaults to the corpus' known licence.
        build_command: the command line to record in the build info.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{output_dir} exists and is not empty (pass overwrite=True / --overwrite)")
    builder, scan = scan_corpus(corpus, root, metadata=metadata, strict=strict, skip_missing_audio=skip_missing_audio,
                                allow_outside_root=allow_outside_root)
    features = corpus_features(scan.metadata_features)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".partial", dir=output_dir.parent))
    try:
        audit = CorpusAudit()
        split_info = {
            split: _write_split(split, utterances, features, staging, max_shard_bytes, audit, progress)
            for split, utterances in scan.splits.items()
        }
        audit.raise_problems(builder.name, Path(root))
        info = _build_info(
            builder, Path(root), scan, features, split_info, build_command, license_id or builder.license
        )
        (staging / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        card = dataset_card_from_info(info, DatasetCardSpec())
        (staging / CARD_FILE).write_text(str(card), encoding="utf-8")
        move_into_place(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("%s: wrote %d rows to %s", builder.name, info["num_rows"], output_dir)
    return info


def _write_split(
    split: str,
    utterances: list[Utterance],
    features: Features,
    staging: Path,
    max_shard_bytes: int,
    audit: CorpusAudit,
    progress: bool,
) -> dict[str, Any]:
    """Stream one split into shards; returns its statistics. The files `audit` refuses are left out (and the build
    then fails on its problems)."""
    metadata_columns = [name for name in features if name not in SHARED_COLUMNS]
    (staging / DATA_DIR).mkdir(exist_ok=True)
    shards: list[Path] = []
    writer, shard_bytes = None, 0
    labels, attacks, rates, seconds, total_bytes = Counter(), Counter(), Counter(), 0.0, 0
    for utterance in tqdm(utterances, desc=split, unit="file", disable=not progress):
        read = audit.read(split, utterance)
        if read is None:
            continue
        audio_bytes, facts = read
        if writer is None or shard_bytes >= max_shard_bytes:
            writer = _next_shard(writer, staging, split, shards, features)
            shard_bytes = 0
        writer.write(features.encode_example(encode_row(utterance, audio_bytes, metadata_columns)))
        shard_bytes += len(audio_bytes)
        total_bytes += len(audio_bytes)
        labels[LABEL_NAMES[utterance.label]] += 1
        attacks[utterance.attack] += 1
        rates[str(facts.sampling_rate)] += 1
        seconds += facts.seconds
    if writer is None:
        writer = _next_shard(None, staging, split, shards, features)
    writer.finalize()
    files = []
    for index, shard in enumerate(shards):
        name = f"{DATA_DIR}/{split}-{index:05d}-of-{len(shards):05d}.parquet"
        shard.rename(staging / name)
        files.append(name)
    return {
        "num_rows": sum(labels.values()),
        "num_audio_bytes": total_bytes,
        "label_counts": {name: labels[name] for name in LABEL_NAMES},
        "attack_counts": dict(sorted(attacks.items())),
        "duration_hours": round(seconds / 3600, 4),
        "source_sampling_rates": dict(sorted(rates.items())),
        "files": files,
    }


def _next_shard(writer: ParquetWriter | None, staging: Path, split: str, shards: list[Path], features: Features):
    if writer is not None:
        writer.finalize()
    shards.append(staging / DATA_DIR / f"{split}-{len(shards):05d}.parquet.partial")
    return ParquetWriter(features=features, path=str(shards[-1]), writer_batch_size=ROWS_PER_ROW_GROUP)


def _build_info(
    builder: CorpusBuilder,
    root: Path,
    scan: CorpusScan,
    features: Features,
    split_info: dict[str, dict[str, Any]],
    build_command: str | None,
    license_id: str | None,
) -> dict[str, Any]:
    attacks = sorted({attack for info in split_info.values() for attack in info["attack_counts"]} - {ATTACK_BONAFIDE})
    return {
        "corpus": builder.name,
        "title": builder.title,
        "description": builder.description,
        "license": license_id,
        "source_layout": builder.layout,
        "source_root": public_path(root),
        "build_command": build_command or f"nes2net data build {builder.name} {public_path(root)} OUT",
        "built_with": {"nes2net": _package_version("nes2net"), "datasets": datasets.__version__},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sampling_rate": SAMPLING_RATE,
        "label_names": LABEL_NAMES,
        "columns": list(features),
        "metadata_columns": list(scan.metadata_features),
        "features": features.to_dict(),
        "num_rows": sum(info["num_rows"] for info in split_info.values()),
        "splits": split_info,
        "attacks": attacks,
        "layout_warnings": [str(problem) for problem in scan.problems],
    }


def _package_version(name: str) -> str | None:
    try:
        return package_metadata.version(name)
    except package_metadata.PackageNotFoundError:
        return None


def move_into_place(staging: Path, output_dir: Path) -> None:
    """Replace `output_dir` by `staging`; an old `output_dir` is moved aside first and deleted last."""
    if not output_dir.exists():
        os.replace(staging, output_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".old", dir=output_dir.parent))
    os.replace(output_dir, old / output_dir.name)
    os.replace(staging, output_dir)
    shutil.rmtree(old, ignore_errors=True)


def stream_corpus(
    corpus: str | CorpusBuilder,
    root: str | os.PathLike,
    split: str,
    *,
    metadata: str | None = None,
    skip_missing_audio: bool = False,
    allow_outside_root: bool = False,
) -> IterableDataset:
    """An IterableDataset of one split read straight from the corpus folder, in the shared schema, with no
    build step: for a first look at a corpus, or to train on one that is never written out."""
    builder, scan = scan_corpus(corpus, root, metadata=metadata, skip_missing_audio=skip_missing_audio,
                                allow_outside_root=allow_outside_root)
    if split not in scan.splits:
        raise ValueError(f"{builder.name} has no split {split!r}; splits: {', '.join(scan.splits)}")
    features = corpus_features(scan.metadata_features)
    return IterableDataset.from_generator(
        _generate_rows,
        features=features,
        gen_kwargs={"utterances": scan.splits[split], "metadata_columns": tuple(scan.metadata_features)},
    )


def _generate_rows(utterances: list[Utterance], metadata_columns: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    for utterance in utterances:
        yield encode_row(utterance, utterance.audio_path.read_bytes(), metadata_columns)
