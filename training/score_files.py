"""Score files in the formats the ASVspoof tools read, and their join with a protocol / metadata table.

Formats (`fmt`):
- `"cm"`: ASVspoof 2019 / 2021 CM score file, one `utt_id score` per line, no header.
- `"cm-keyed"`: the 2019 t-DCF script's CM file, `utt_id attack key score` (attack `-` for bona fide, key
  `bonafide` / `spoof`).
- `"asvspoof5"`: ASVspoof 5, tab-separated with the header `filename<TAB>cm-score`.
- `"arena"`: the Speech Anti-Spoofing Arena's `scores.txt`, `utt_id score` with the score to 6 decimals (read as `cm`).
- `"csv"`: ours, header `utt_id,score[,label][,<metadata>...]`, label written `bonafide` / `spoof`.
Scores are written with `repr` (but in `arena`), so a write/read round trip is exact. Every write is atomic.

In every format but `csv`, an id is one whitespace-free field: whitespace, `%` and control characters are
percent-escaped on writing (`a b` -> `a%20b`, `escape_id`) and unescaped on reading, so any id survives a round trip
and no id can add a field or a line. `nes2net detect --format asvspoof` writes its lines with `cm_line` too.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import numpy as np

from modeling_nes2net.atomic import atomic_output
from modeling_nes2net.audio import has_audio_extension
from modeling_nes2net.configuration_nes2net import ID2LABEL

logger = logging.getLogger(__name__)

FORMATS = ("cm", "cm-keyed", "asvspoof5", "arena", "csv")
ASVSPOOF5_HEADER = ("filename", "cm-score")
LABEL_VALUES = {"bonafide": 1, "bona-fide": 1, "bona fide": 1, "genuine": 1, "real": 1, "1": 1,
                "spoof": 0, "spoofed": 0, "deepfake": 0, "fake": 0, "0": 0}
_EXAMPLES_SHOWN = 5
_UNSAFE_ID_CHARACTER = re.compile(r"[\s%\x00-\x1f\x7f]")


def parse_labels(values: Sequence) -> np.ndarray:
    """`(n,)` int64 labels (1 bona fide, 0 spoof) from the names of `LABEL_VALUES` (any case) or 1/0."""
    try:
        return np.array([LABEL_VALUES[str(value).strip().lower()] for value in values], dtype=np.int64)
    except KeyError as error:
        raise ValueError(f"unknown label {error.args[0]!r}: expected one of {sorted(LABEL_VALUES)}") from None


def utterance_key(name: str) -> str:
    """The id a trial is matched on: the base name without an audio suffix (`audio/x/LA_E_1.flac` -> `LA_E_1`)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return os.path.splitext(base)[0] if has_audio_extension(base) else base


def escape_id(utt_id: str) -> str:
    """`utt_id` as one field of a whitespace-separated score file: whitespace, `%` and control characters
    percent-escaped as their UTF-8 bytes (`a b` -> `a%20b`); reading unescapes it (`urllib.parse.unquote`)."""
    return _UNSAFE_ID_CHARACTER.sub(lambda match: "".join(f"%{byte:02X}" for byte in match[0].encode()), utt_id)


def cm_line(utt_id: str, score: float) -> str:
    """One line of a `cm` score file: the escaped id and the score by `repr` (exact round trip)."""
    return f"{escape_id(utt_id)} {score!r}\n"


def _examples(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:_EXAMPLES_SHOWN])
    return shown + (", ..." if len(ids) > _EXAMPLES_SHOWN else "")


@dataclass
class ScoreTable:
    """Scores of `n` trials: ids `(n,)`, scores `(n,)` float64, optional labels `(n,)` and metadata columns `(n,)`."""

    utt_ids: list[str]
    scores: np.ndarray
    labels: np.ndarray | None = None
    metadata: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.utt_ids = [str(utt_id) for utt_id in self.utt_ids]
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        columns = {"scores": self.scores, **({} if self.labels is None else {"labels": self.labels}), **self.metadata}
        for name, column in columns.items():
            if len(column) != len(self.utt_ids):
                raise ValueError(f"{len(self.utt_ids)} utterance ids but {len(column)} values in {name!r}")
        if self.labels is not None and not np.isin(self.labels, (0, 1)).all():
            raise ValueError("labels must be 1 (bona fide) or 0 (spoof)")
        duplicates = [utt_id for utt_id, count in Counter(self.utt_ids).items() if count > 1]
        if duplicates:
            raise ValueError(f"{len(duplicates)} utterance ids occur more than once: {_examples(duplicates)}")

    def __len__(self) -> int:
        return len(self.utt_ids)


def _format_from_suffix(path: Path) -> str:
    return {".csv": "csv", ".tsv": "asvspoof5"}.get(path.suffix.lower(), "cm")


def _cm_keyed_rows(table: ScoreTable) -> Iterator[tuple[str, str, str, float]]:
    if table.labels is None:
        raise ValueError("the cm-keyed format needs labels")
    attacks = table.metadata.get("attack")
    if attacks is None:
        if (table.labels == 0).any():
            raise ValueError("the cm-keyed format needs an 'attack' metadata column for spoofed trials")
        attacks = ["-"] * len(table)
    for utt_id, attack, label, score in zip(table.utt_ids, attacks, table.labels, table.scores.tolist()):
        yield utt_id, attack, ID2LABEL[2][int(label)], score


def write_scores(path: str | os.PathLike, table: ScoreTable, fmt: str | None = None) -> Path:
    """Write `table` to `path` atomically; `fmt` defaults from the suffix (`.csv`, `.tsv` = asvspoof5, else cm)."""
    path = Path(path)
    fmt = fmt or _format_from_suffix(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown score file format {fmt!r}: expected one of {FORMATS}")
    if fmt != "csv" and not all(table.utt_ids):
        raise ValueError(f"the {fmt} format needs non-empty utterance ids")
    scores = table.scores.tolist()
    with atomic_output(path) as temporary, open(temporary, "w", encoding="utf-8", newline="") as handle:
        if fmt == "cm":
            handle.writelines(map(cm_line, table.utt_ids, scores))
        elif fmt == "arena":
            handle.writelines(f"{escape_id(u)} {s:.6f}\n" for u, s in zip(table.utt_ids, scores))
        elif fmt == "cm-keyed":
            handle.writelines(f"{escape_id(u)} {escape_id(a)} {k} {s!r}\n" for u, a, k, s in _cm_keyed_rows(table))
        elif fmt == "asvspoof5":
            handle.write("\t".join(ASVSPOOF5_HEADER) + "\n")
            handle.writelines(f"{escape_id(u)}\t{s!r}\n" for u, s in zip(table.utt_ids, scores))
        else:
            writer = csv.writer(handle)
            has_labels = table.labels is not None
            writer.writerow(["utt_id", "score", *(["label"] if has_labels else []), *table.metadata])
            label_names = [ID2LABEL[2][int(label)] for label in table.labels] if has_labels else []
            for index, (utt_id, score) in enumerate(zip(table.utt_ids, scores)):
                label = [label_names[index]] if has_labels else []
                writer.writerow([utt_id, repr(score), *label, *(column[index] for column in table.metadata.values())])
    logger.info("wrote %d scores to %s (%s)", len(table), path, fmt)
    return path


def _split_lines(path: Path, n_fields: int, separator: str | None = None) -> list[list[str]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            fields = line.split(separator) if separator else line.split()
            if not fields or fields == [""]:
                continue
            if len(fields) != n_fields:
                raise ValueError(f"{path}:{line_number}: expected {n_fields} fields, got {len(fields)}: {line!r}")
            rows.append([f.strip() for f in fields])
    return rows


def _float_scores(values: Sequence[str], path: Path) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64)
    except ValueError as error:
        raise ValueError(f"{path}: a score is not a number ({error})") from None


def _detect_format(path: Path) -> str:
    with open(path, encoding="utf-8") as handle:
        first_line = handle.readline().rstrip("\r\n")
    if tuple(first_line.split("\t")) == ASVSPOOF5_HEADER:
        return "asvspoof5"
    if path.suffix.lower() == ".csv":
        return "csv"
    n_fields = len(first_line.split())
    if n_fields not in (2, 4):
        raise ValueError(f"{path}: cannot tell the score file format from its first line {first_line!r}")
    return "cm" if n_fields == 2 else "cm-keyed"


def read_scores(path: str | os.PathLike, fmt: str | None = None) -> ScoreTable:
    """Read a score file in one of `FORMATS` (detected from the header / suffix / field count when `fmt` is None).

    Raises `ValueError`, one line naming the file, for a file that cannot be read or is not such a score file, a
    repeated utterance id, or a score that is not a finite number (NaN or infinite: no metric or fit takes it)."""
    path = Path(path)
    try:
        table = _read_score_table(path, fmt or _detect_format(path))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text score file (not UTF-8 text)") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror or error})") from None
    except ValueError as error:
        message = str(error)
        raise ValueError(message if message.startswith(f"{path}: ") else f"{path}: {message}") from None
    not_finite = [utt_id for utt_id, score in zip(table.utt_ids, table.scores) if not np.isfinite(score)]
    if not_finite:
        raise ValueError(f"{path}: {len(not_finite)} score(s) are not finite numbers (NaN or infinite): "
                         f"{_examples(not_finite)}")
    return table


def _read_score_table(path: Path, fmt: str) -> ScoreTable:
    if fmt in ("cm", "arena"):
        rows = _split_lines(path, 2)
        return ScoreTable([unquote(r[0]) for r in rows], _float_scores([r[1] for r in rows], path))
    if fmt == "cm-keyed":
        rows = _split_lines(path, 4)
        return ScoreTable(
            [unquote(r[0]) for r in rows],
            _float_scores([r[3] for r in rows], path),
            labels=parse_labels([r[2] for r in rows]),
            metadata={"attack": [unquote(r[1]) for r in rows]},
        )
    if fmt == "asvspoof5":
        rows = _split_lines(path, 2, separator="\t")
        if not rows or tuple(rows[0]) != ASVSPOOF5_HEADER:
            raise ValueError(f"{path}: an ASVspoof 5 score file starts with the header {' '.join(ASVSPOOF5_HEADER)!r}")
        return ScoreTable([unquote(r[0]) for r in rows[1:]], _float_scores([r[1] for r in rows[1:]], path))
    if fmt == "csv":
        columns = read_protocol(path)
        missing = {"utt_id", "score"} - set(columns)
        if missing:
            raise ValueError(f"{path}: missing CSV column(s) {sorted(missing)}")
        labels = columns.pop("label", None)
        return ScoreTable(
            columns.pop("utt_id"),
            _float_scores(columns.pop("score"), path),
            labels=None if labels is None else parse_labels(labels),
            metadata=columns,
        )
    raise ValueError(f"unknown score file format {fmt!r}: expected one of {FORMATS}")


def read_protocol(
    path: str | os.PathLike, column_names: Sequence[str] | None = None, delimiter: str | None = None
) -> dict[str, list[str]]:
    """Read a protocol / metadata table as `{column: values}`.

    Args:
        path: a CSV (`.csv`, comma-separated) or a whitespace-separated protocol file (the ASVspoof layouts).
        column_names: names of the leading fields when the file has no header (later fields are ignored, e.g.
            the `- - - -` tail of the 2021 DF keys); None reads the names from the first row.
        delimiter: the field separator; None means `,` for `.csv` and any whitespace otherwise.
    """
    path = Path(path)
    delimiter = delimiter or ("," if path.suffix.lower() == ".csv" else None)
    with open(path, encoding="utf-8", newline="") as handle:
        if delimiter is None:
            rows = [line.split() for line in handle if line.strip()]
        else:
            rows = [row for row in csv.reader(handle, delimiter=delimiter) if row]
    if not rows:
        raise ValueError(f"{path}: empty protocol")
    names = list(column_names) if column_names is not None else rows.pop(0)
    for line_number, row in enumerate(rows, 1 if column_names is not None else 2):
        if len(row) < len(names):
            raise ValueError(f"{path}:{line_number}: expected {len(names)} fields {names}, got {len(row)}")
    return {name: [row[index] for row in rows] for index, name in enumerate(names)}


@dataclass
class ProtocolJoin:
    """Scores joined with a protocol: `table` in protocol order, and the ids found on one side only."""

    table: ScoreTable
    missing_ids: list[str]
    """protocol trials without a score"""
    extra_ids: list[str]
    """scored trials not in the protocol"""


def join_with_protocol(
    table: ScoreTable,
    protocol: Mapping[str, Sequence],
    id_column: str = "utt_id",
    label_column: str | None = "label",
    strict: bool = True,
) -> ProtocolJoin:
    """Attach protocol columns to scores by utterance id (matched with `utterance_key`, so paths and audio
    suffixes on either side do not matter).

    The joined table follows the protocol's order; its labels come from `label_column` when the protocol has it
    (else from the score file), every other protocol column becomes metadata. With `strict`, any protocol trial
    without a score or any score not in the protocol raises `ValueError`; otherwise both are logged and dropped.
    """
    if id_column not in protocol:
        raise ValueError(f"the protocol has no {id_column!r} column; columns: {list(protocol)}")
    protocol_keys = [utterance_key(str(name)) for name in protocol[id_column]]
    if len(set(protocol_keys)) != len(protocol_keys):
        raise ValueError(f"the protocol's {id_column!r} column holds duplicate utterance ids")
    score_row = {utterance_key(utt_id): index for index, utt_id in enumerate(table.utt_ids)}
    if len(score_row) != len(table):
        raise ValueError("two scored utterances share an id once paths and audio suffixes are removed")
    protocol_key_set = set(protocol_keys)
    missing = [str(name) for name, key in zip(protocol[id_column], protocol_keys) if key not in score_row]
    extra = [utt_id for utt_id in table.utt_ids if utterance_key(utt_id) not in protocol_key_set]
    problems = []
    if missing:
        problems.append(f"{len(missing)} of {len(protocol_keys)} protocol trials have no score ({_examples(missing)})")
    if extra:
        problems.append(f"{len(extra)} of {len(table)} scored trials are not in the protocol ({_examples(extra)})")
    if problems and strict:
        raise ValueError("; ".join(problems))
    for problem in problems:
        logger.warning("%s: left out", problem)

    protocol_rows = [row for row, key in enumerate(protocol_keys) if key in score_row]
    score_rows = np.array([score_row[protocol_keys[row]] for row in protocol_rows], dtype=np.int64)
    if label_column is not None and label_column in protocol:
        labels = parse_labels([protocol[label_column][row] for row in protocol_rows])
    else:
        labels = None if table.labels is None else table.labels[score_rows]
    metadata = {name: [table.metadata[name][row] for row in score_rows] for name in table.metadata}
    metadata.update(
        {
            name: [str(column[row]) for row in protocol_rows]
            for name, column in protocol.items()
            if name not in (id_column, label_column)
        }
    )
    joined = ScoreTable([table.utt_ids[row] for row in score_rows], table.scores[score_rows], labels, metadata)
    return ProtocolJoin(joined, missing, extra)
