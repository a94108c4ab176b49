"""Checking a corpus folder against its owners' layout, and reporting every problem at once.

A builder's `scan` walks the protocols and the audio folders without reading any audio. Each problem is
recorded with the file (and protocol line) it comes from, so one run lists everything there is to fix.
"""

from __future__ import annotations

import abc
import io
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from datasets import Value

from modeling_nes2net.audio import has_audio_extension

from .schema import ATTACK_UNKNOWN, Utterance, attack_name

ProblemKind = Literal["missing", "missing-audio", "extra", "malformed", "duplicate", "unreadable", "outside-root",
                      "damaged", "leak", "conflicting-label"]
ENTRY_COLUMNS = ("utt_id", "key", "speaker", "attack")  # the protocol columns every ProtocolEntry has a field for


@dataclass(frozen=True)
class LayoutProblem:
    """One thing wrong with a corpus folder: `kind`, the file concerned, its 1-based line if any, and why."""

    kind: ProblemKind
    path: Path
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{self.kind}: {where}: {self.message}"


class CorpusLayoutError(ValueError):
    """Raised when a corpus folder does not match its layout; `problems` lists every problem found."""

    def __init__(self, corpus: str, root: Path, problems: list[LayoutProblem], layout: str | None = None):
        self.problems = problems
        counts = ", ".join(f"{count} {kind}" for kind, count in Counter(problem.kind for problem in problems).items())
        listing = "\n".join(f"  {problem}" for problem in problems)
        expected = f"\nexpected layout: {layout}" if layout else ""
        super().__init__(f"{corpus} layout check failed under {root} ({counts}):\n{listing}{expected}")


@dataclass
class CorpusScan:
    """What a builder found: the rows of each split, the types of its metadata columns, and the problems."""

    splits: dict[str, list[Utterance]]
    metadata_features: dict[str, Any] = field(default_factory=dict)
    problems: list[LayoutProblem] = field(default_factory=list)

    def errors(self, *, strict: bool = False, skip_missing_audio: bool = False) -> list[LayoutProblem]:
        """The problems that stop a build: all of them when `strict`; extra files never otherwise; missing
        audio files not when `skip_missing_audio` (their rows are simply absent from `splits`)."""
        if strict:
            return list(self.problems)
        return [
            problem
            for problem in self.problems
            if problem.kind != "extra" and not (skip_missing_audio and problem.kind == "missing-audio")
        ]


class ProtocolLineError(ValueError):
    """A protocol line that cannot be parsed; its message becomes the problem's message."""


class CorpusBuilder(abc.ABC):
    """Turns one corpus, as its owners distribute it, into rows of the shared schema.

    Subclasses set `name` (the CLI name), `title`, `description` and `layout` (the expected folder layout,
    shown in errors and written to the build info), and implement `scan`.
    """

    name: str
    title: str
    description: str
    layout: str
    license: str | None = None

    @abc.abstractmethod
    def scan(self, root: Path) -> CorpusScan:
        """Parse the protocols under `root` and match them with the audio files, reading no audio."""


def first_existing(root: Path, candidates: Iterable[str], problems: list[LayoutProblem], what: str) -> Path | None:
    """The first of `candidates` (paths relative to `root`) that exists; records a problem if none does."""
    candidates = list(candidates)
    for candidate in candidates:
        if (root / candidate).exists():
            return root / candidate
    names = " or ".join(candidates)
    problems.append(LayoutProblem("missing", root / candidates[0], f"{what} not found (expected {names})"))
    return None


def protocol_lines(
    path: Path, num_fields: Iterable[int], problems: list[LayoutProblem]
) -> Iterator[tuple[int, list[str]]]:
    """Yield `(line_number, fields)` of a whitespace-separated protocol, skipping blank lines and recording
    every line whose field count is not one of `num_fields` as malformed."""
    allowed = sorted(set(num_fields))
    text = read_text(path, problems)
    if text is not None:
        for line_number, line in enumerate(io.StringIO(text), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) not in allowed:
                expected = " or ".join(map(str, allowed))
                problems.append(
                    LayoutProblem("malformed", path, f"expected {expected} fields, found {len(fields)}", line_number)
                )
                continue
            yield line_number, fields


def read_text(path: Path, problems: list[LayoutProblem]) -> str | None:
    """The text of a protocol or table, read as UTF-8 (a byte-order mark dropped); None, with a problem naming the
    line of the first byte that is not UTF-8, when it is not."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        message = f"not UTF-8 text (byte 0x{data[error.start]:02x}): save it as UTF-8"
        problems.append(LayoutProblem("malformed", path, message, line))
        return None


def parse_key(value: str, keys: dict[str, int]) -> int:
    """The label (1 = bona fide) a corpus writes as `value`; raises ProtocolLineError for anything else."""
    if value not in keys:
        raise ProtocolLineError(f"unknown key {value!r} (expected {' or '.join(map(repr, keys))})")
    return keys[value]


def list_audio_files(folder: Path, recursive: bool = False) -> list[Path]:
    """The audio files in `folder` (`has_audio_extension`, hidden files skipped), sorted; recursive walks the whole
    tree."""
    if recursive:
        found = (
            Path(directory) / name
            for directory, _, names in os.walk(folder)
            for name in names
            if not name.startswith(".") and has_audio_extension(name)
        )
    else:
        found = (
            Path(entry.path)
            for entry in os.scandir(folder)
            if entry.is_file() and not entry.name.startswith(".") and has_audio_extension(entry.name)
        )
    return sorted(found)


@dataclass
class ProtocolEntry:
    """One parsed protocol line, not yet matched to its audio file."""

    line: int
    utt_id: str
    label: int
    speaker: str | None
    attack: str
    metadata: dict[str, Any] = field(default_factory=dict)
    file_name: str | None = None
    """The audio file name when it is not `utt_id + suffix` (In-the-Wild names files in the protocol)."""


def match_audio(
    entries: list[ProtocolEntry], protocol: Path, audio_dir: Path, suffix: str, problems: list[LayoutProblem]
) -> list[Utterance]:
    """Pair each protocol entry with `audio_dir/<utt_id><suffix>`; record duplicate ids, missing files, and
    files of the folder that no entry names (any audio suffix counts as a file)."""
    present = {path.name: path for path in list_audio_files(audio_dir)}
    utterances, seen = [], {}
    for entry in entries:
        if entry.utt_id in seen:
            problems.append(
                LayoutProblem(
                    "duplicate", protocol, f"{entry.utt_id} already listed on line {seen[entry.utt_id]}", entry.line
                )
            )
            continue
        seen[entry.utt_id] = entry.line
        file_name = entry.file_name or entry.utt_id + suffix
        path = present.pop(file_name, None)
        if path is None:
            problems.append(
                LayoutProblem("missing-audio", protocol, f"audio file {audio_dir / file_name} not found", entry.line)
            )
            continue
        utterances.append(Utterance(entry.utt_id, path, entry.label, entry.speaker, entry.attack, entry.metadata))
    problems.extend(LayoutProblem("extra", path, f"not listed in {protocol.name}") for path in present.values())
    return utterances


@dataclass(frozen=True)
class SplitSource:
    """Where one split lives: its protocol and audio folder (each the first existing of several candidate
    paths relative to the corpus root) and the audio files' suffix."""

    protocols: tuple[str, ...]
    audio_dirs: tuple[str, ...]
    suffix: str = ".flac"


class ProtocolCorpusBuilder(CorpusBuilder):
    """A corpus made of one protocol (a text file, one utterance a line) and one audio folder per split.

    Subclasses set `sources` (split name -> SplitSource), `num_fields` (the allowed field counts of a protocol line),
    and `columns` and `keys`, which `parse_fields` reads each line by (or override `parse_fields`).
    """

    sources: dict[str, SplitSource]
    num_fields: tuple[int, ...]
    columns: tuple[str | None, ...] = ()
    """The protocol's columns in order: `utt_id`, `key`, and `speaker` and `attack` where the corpus has them; any
    other name is a string metadata column, None a column left out, as are the columns past the last."""
    keys: dict[str, int] = {}
    """How the `key` column writes each label (1 = bona fide)."""

    @property
    def metadata_features(self) -> dict[str, Any]:
        """The types of the metadata columns, in protocol order."""
        return {name: Value("string") for name in self.columns if name is not None and name not in ENTRY_COLUMNS}

    def parse_fields(self, fields: list[str], line: int) -> ProtocolEntry:
        """Turn the fields of one protocol line into an entry; raise ProtocolLineError if they are invalid."""
        row = dict(zip(self.columns, fields))
        row.pop(None, None)
        label = parse_key(row.pop("key"), self.keys)
        attack = attack_name(row.pop("attack", ATTACK_UNKNOWN), label)
        return ProtocolEntry(line, row.pop("utt_id"), label, row.pop("speaker", None), attack, row)

    def protocol_fields(self, protocol: Path, problems: list[LayoutProblem]) -> Iterator[tuple[int, list[str]]]:
        """`(line_number, fields)` of each protocol line; whitespace-separated unless overridden."""
        return protocol_lines(protocol, self.num_fields, problems)

    def read_entries(self, protocol: Path, problems: list[LayoutProblem]) -> list[ProtocolEntry]:
        entries = []
        for line, fields in self.protocol_fields(protocol, problems):
            try:
                entries.append(self.parse_fields(fields, line))
            except ProtocolLineError as error:
                problems.append(LayoutProblem("malformed", protocol, str(error), line))
        return entries

    def scan(self, root: Path) -> CorpusScan:
        problems: list[LayoutProblem] = []
        splits = {}
        for split, source in self.sources.items():
            protocol = first_existing(root, source.protocols, problems, f"{split} protocol")
            audio_dir = first_existing(root, source.audio_dirs, problems, f"{split} audio folder")
            entries = self.read_entries(protocol, problems) if protocol is not None else []
            if protocol is not None and audio_dir is not None:
                splits[split] = match_audio(entries, protocol, audio_dir, source.suffix, problems)
        return CorpusScan(splits, dict(self.metadata_features), problems)
