"""The generic builder: any folder of audio files labelled by a CSV/TSV table or by `bonafide/` + `spoof/` folders.

Table layout: one `*.csv` or `*.tsv` at the top of ROOT (or the one named by `metadata`) with a header holding
a path column (`path`, `file_name`, `file` or `audio`; relative to ROOT) and `label`; optional `split`
(its values become the splits, else everything is `train`), `speaker`, `attack`, `utt_id` (else the path
without its suffix); every other column is kept as metadata, typed int64 / float64 when all its values are.

Folder layout: `ROOT/{bonafide,spoof}/**/*.flac` (any of `AUDIO_EXTENSIONS`; one `train` split) or
`ROOT/<split>/{bonafide,spoof}/**` (one split per folder).

Audio files must lie inside ROOT: a table path with `..`, an absolute path, or a symlink that leads outside is
refused unless `allow_outside_root` (`--allow-outside-root`) says otherwise, so a table cannot pack (and `--push-to-hub`
upload) files from elsewhere on the machine.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Any

from datasets import Value

from modeling_nes2net.audio import AUDIO_EXTENSIONS, has_audio_extension

from .layout import (
    CorpusBuilder,
    CorpusScan,
    LayoutProblem,
    ProtocolLineError,
    list_audio_files,
    parse_key,
    read_text,
)
from .schema import ATTACK_UNKNOWN, BONAFIDE, SPOOF, Utterance, attack_name

GENERIC_KEYS = {
    **dict.fromkeys(("bonafide", "bona-fide", "bona fide", "genuine", "real"), BONAFIDE),
    **dict.fromkeys(("spoof", "spoofed", "fake", "deepfake"), SPOOF),
}
PATH_COLUMNS = ("path", "file_name", "file", "audio")
RESERVED_COLUMNS = {"label", "split", "speaker", "attack", "utt_id"}
LABEL_FOLDERS = {"bonafide": BONAFIDE, "spoof": SPOOF}
SPLIT_NAME = re.compile(r"^\w+$")
DEFAULT_SPLIT = "train"
SPLIT_ORDER = ("train", "validation", "dev", "eval", "test")


class GenericBuilder(CorpusBuilder):
    name = "generic"
    title = "Generic anti-spoofing folder"
    description = "Audio files labelled bona fide or spoof by a metadata table or by their folder."
    layout = (
        "ROOT holds a CSV/TSV table (path column path|file_name|file|audio relative to ROOT, label bonafide|spoof, "
        "optional split, speaker, attack, utt_id and any metadata columns) or bonafide/ and spoof/ folders, "
        "optionally inside one folder per split"
    )

    def __init__(self, metadata: str | None = None, allow_outside_root: bool = False):
        self.metadata, self.allow_outside_root = metadata, allow_outside_root

    def scan(self, root: Path) -> CorpusScan:
        problems: list[LayoutProblem] = []
        table = self._find_table(root, problems)
        if problems:
            return CorpusScan({}, {}, problems)
        if table is not None:
            scan = _scan_table(root, table, self.allow_outside_root)
        else:
            scan = _scan_folders(root, self.allow_outside_root)
        claimed = {utterance.audio_path for rows in scan.splits.values() for utterance in rows}
        scan.problems.extend(
            LayoutProblem("extra", path, "audio file not labelled by the layout")
            for path in list_audio_files(root, recursive=True)
            if path not in claimed and _outside_root(root, path) is None
        )
        return scan

    def _find_table(self, root: Path, problems: list[LayoutProblem]) -> Path | None:
        if self.metadata is not None:
            if not (root / self.metadata).is_file():
                problems.append(LayoutProblem("missing", root / self.metadata, "metadata table not found"))
            return root / self.metadata
        tables = sorted(path for path in root.iterdir() if path.suffix.lower() in (".csv", ".tsv") and path.is_file())
        preferred = [path for path in tables if path.stem == "metadata"]
        if len(tables) > 1 and len(preferred) != 1:
            names = ", ".join(path.name for path in tables)
            problems.append(
                LayoutProblem("malformed", root, f"several metadata tables ({names}): pick one with --metadata")
            )
        return (preferred or tables or [None])[0]


def _scan_table(root: Path, table: Path, allow_outside_root: bool) -> CorpusScan:
    problems: list[LayoutProblem] = []
    delimiter = "\t" if table.suffix.lower() == ".tsv" else ","
    text = read_text(table, problems)
    if text is None:
        return CorpusScan({}, {}, problems)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [name.strip() for name in next(reader, [])]
    path_column = next((name for name in PATH_COLUMNS if name in header), None)
    if path_column is None or "label" not in header:
        problems.append(LayoutProblem("malformed", table, _header_problem(header, path_column, delimiter), 1))
        return CorpusScan({}, {}, problems)
    metadata_columns = [name for name in header if name != path_column and name not in RESERVED_COLUMNS]
    rows = []
    for fields in reader:
        if not fields:
            continue
        line = reader.line_num
        if len(fields) != len(header):
            message = f"expected {len(header)} fields, found {len(fields)}"
            problems.append(LayoutProblem("malformed", table, message, line))
            continue
        record = dict(zip(header, fields, strict=True))
        try:
            rows.append((line, _table_row(root, record, path_column)))
        except ProtocolLineError as error:
            problems.append(LayoutProblem("malformed", table, str(error), line))
    metadata_features = {}
    for name in metadata_columns:
        feature, convert = _infer_type([record[name] for _, (_, _, record) in rows])
        metadata_features[name] = feature
        for _, (_, utterance, record) in rows:
            utterance.metadata[name] = convert(record[name])
    splits: dict[str, list[Utterance]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for line, (split, utterance, record) in rows:
        key = (split, utterance.utt_id)
        outside = None if allow_outside_root else _outside_root(root, utterance.audio_path)
        if key in first_line:
            message = f"{utterance.utt_id} already listed on line {first_line[key]}"
            problems.append(LayoutProblem("duplicate", table, message, line))
        elif outside is not None:
            message = f"{record[path_column].strip()!r} {outside}"
            problems.append(LayoutProblem("outside-root", table, message, line))
        elif not os.path.lexists(utterance.audio_path):
            problems.append(LayoutProblem("missing-audio", table, f"audio file {utterance.audio_path} not found", line))
        else:
            first_line[key] = line
            splits.setdefault(split, []).append(utterance)
    return CorpusScan(_in_split_order(splits), metadata_features, problems)


def _header_problem(header: list[str], path_column: str | None, delimiter: str) -> str:
    """Why a table header is refused: the columns it lacks, and the delimiter it seems to use instead."""
    lacking = [f"path column ({'|'.join(PATH_COLUMNS)})"] if path_column is None else []
    lacking += ["label column"] if "label" not in header else []
    message = f"header {header} has no {' and no '.join(lacking)}"
    used = next((mark for mark in ",;\t|" if mark != delimiter and len(header) == 1 and mark in header[0]), None)
    if used is not None:
        kind = ".tsv" if delimiter == "\t" else ".csv"
        message += f"; its fields look {used!r}-separated, but a {kind} table is read {delimiter!r}-separated"
    return message


def _outside_root(root: Path, path: Path) -> str | None:
    """Why `path` is outside `root` (through `..`, as an absolute path or by a symlink), or None if it is inside."""
    target = Path(os.path.realpath(path))  # realpath, not resolve: a symbolic link loop is reported, not raised
    if target.is_relative_to(os.path.realpath(root)):
        return None
    return f"leads outside the corpus root, to {target}: pass --allow-outside-root to read it"


def _in_split_order(splits: dict[str, list[Utterance]]) -> dict[str, list[Utterance]]:
    """train, validation, dev, eval, test first, then any other split alphabetically."""
    rank = {name: index for index, name in enumerate(SPLIT_ORDER)}
    return dict(sorted(splits.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def _table_row(root: Path, record: dict[str, str], path_column: str) -> tuple[str, Utterance, dict[str, str]]:
    relative = record[path_column].strip()
    if not has_audio_extension(relative):
        raise ProtocolLineError(f"{relative!r} is not an audio file ({', '.join(sorted(AUDIO_EXTENSIONS))})")
    label = parse_key(record["label"].strip().lower(), GENERIC_KEYS)
    split = record.get("split", DEFAULT_SPLIT).strip()
    if not SPLIT_NAME.match(split):
        raise ProtocolLineError(f"split {split!r} is not a valid split name (letters, digits, _)")
    utt_id = record.get("utt_id", "").strip() or str(Path(relative).with_suffix("").as_posix())
    speaker = record.get("speaker", "").strip() or None
    attack = attack_name(record.get("attack", "").strip(), label)
    return split, Utterance(utt_id, root / relative, label, speaker, attack), record


def _infer_type(values: list[str]) -> tuple[Value, Any]:
    """The narrowest of int64 / float64 / string that holds every non-empty value, and its converter
    (empty cells become None)."""
    present = [value.strip() for value in values if value.strip()]
    for dtype, cast in (("int64", int), ("float64", float)):
        try:
            for value in present:
                cast(value)
        except ValueError:
            continue
        return Value(dtype), lambda value, cast=cast: cast(value) if value.strip() else None
    return Value("string"), lambda value: value.strip() or None


def _scan_folders(root: Path, allow_outside_root: bool) -> CorpusScan:
    problems: list[LayoutProblem] = []
    if any((root / name).is_dir() for name in LABEL_FOLDERS):
        split_roots = {DEFAULT_SPLIT: root}
    else:
        split_roots = {
            path.name: path
            for path in sorted(root.iterdir())
            if path.is_dir() and any((path / name).is_dir() for name in LABEL_FOLDERS)
        }
    if not split_roots:
        problems.append(
            LayoutProblem("missing", root, "no metadata table (*.csv, *.tsv) and no bonafide/ or spoof/ folder")
        )
    splits = {}
    for split, split_root in split_roots.items():
        if not SPLIT_NAME.match(split):
            problems.append(LayoutProblem("malformed", split_root, f"{split!r} is not a valid split name"))
            continue
        splits[split] = []
        for folder, label in LABEL_FOLDERS.items():
            for path in list_audio_files(split_root / folder, recursive=True) if (split_root / folder).is_dir() else []:
                outside = None if allow_outside_root else _outside_root(root, path)
                if outside is not None:
                    problems.append(LayoutProblem("outside-root", path, outside))
                    continue
                utt_id = path.relative_to(split_root).with_suffix("").as_posix()
                splits[split].append(Utterance(utt_id, path, label, None, attack_name(ATTACK_UNKNOWN, label)))
    return CorpusScan(_in_split_order(splits), {}, problems)
