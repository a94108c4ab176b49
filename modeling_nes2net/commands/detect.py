"""`nes2net detect PATH...`: score audio files and folders for spoofing (a thin layer over `detection`).

Bad inputs never stop the run: each is reported with its reason at the end, and the exit status is 1 when any
input failed (2 when the model cannot be loaded or the output cannot be written or would overwrite an input, checked
before scoring starts).

`--output FILE` is written as results come: each finished row is appended to `FILE.partial` at once, and the
complete file replaces FILE atomically at the end, also when the run fails or is interrupted (Ctrl-C); after a kill,
`FILE.partial` keeps every finished row (JSON output: one object per line there).

Names in outputs: CSV and JSON carry each input's path exactly (quoted / escaped by the format); the table and the
error lines show control characters escaped (`\\n`), so a name cannot add lines; ASVspoof score files use the file
stem as the id, or the path when two inputs share a stem, written by `training.score_files.cm_line` (whitespace, `%`
and control characters percent-escaped, `a b.wav` -> `a%20b`), so every line keeps exactly two fields and every id
is unique.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from tqdm.auto import tqdm

from training.score_files import cm_line

from ..atomic import atomic_output, refuse_overwriting_inputs
from ..audio import AUDIO_EXTENSIONS, find_audio_files, printable
from ..configuration_nes2net import VERDICT_LABELS
from ..decision import verdict
from ..detection import RESULT_COLUMNS, RUNTIMES, SEGMENT_COLUMNS, DetectionResult, Nes2NetDetector
from ..model_loading import ModelNotFoundError
from ..onnx_export import VARIANTS as ONNX_VARIANTS
from ..plotting import PLOT_EXTRA_MISSING, can_plot, plot_format, plot_timeline
from ..protocols import HOP_SAMPLES, PROTOCOLS, WINDOW_SAMPLES
from ..quantization import QUANTIZATIONS
from ..scorer import AGGREGATIONS, FULL_PROTOCOL_MAX_SECONDS, DetectionFailure
from ..weight_checks import ModelLoadError

logger = logging.getLogger(__name__)

FORMATS = ("table", "csv", "json", "asvspoof")
LABEL_WIDTH = max(len(label) for label in VERDICT_LABELS)  # the table's label column fits every verdict


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio files and/or folders of audio files")
    parser.add_argument("--model", default=None,
                        help="model folder or Hub id (default: the embedded model in modeling_nes2net/default_model)")
    parser.add_argument("--recursive", action="store_true", help="also look for audio in sub-folders")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table (default); csv; json; asvspoof: 'utt_id score' lines (score = bona fide logit)")
    parser.add_argument("--segments", action="store_true", help="include the per-window timeline and the spoofed stretches in the output")
    parser.add_argument("--threshold", type=float, default=None,
                        help="decision threshold on the model's calibrated log-odds (default 0: the argmax of "
                             "its logits)")
    parser.add_argument("--stretch-margin", type=float, default=None, metavar="LOG_ODDS",
                        help="with --segments or a frame model: how far below the threshold a flagged stretch's "
                             "0.2 s core must reach (default: the model's own; lower finds more partial spoofs and "
                             "flags more genuine recordings)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="windows",
                        help="windows (default here: sliding windows, bounded memory); full: whole file in one pass "
                             "(what pipeline() does); 4sec: first 64,600 samples, tiled if shorter (the default of "
                             "`nes2net evaluate`)")
    parser.add_argument("--aggregation", choices=AGGREGATIONS, default="mean",
                        help="mean of window log-odds (default), or any: the most spoof-like window decides")
    parser.add_argument("--window", type=float, default=None, metavar="SECONDS",
                        help=f"window length for --protocol windows and 4sec (default {WINDOW_SAMPLES:,} samples, "
                             "4.0375 s at 16 kHz)")
    parser.add_argument("--hop", type=float, default=None, metavar="SECONDS",
                        help=f"hop between windows (default {HOP_SAMPLES:,} samples, half a window)")
    parser.add_argument("--state-windows", action=argparse.BooleanOptionalAction, default=None,
                        help="--protocol windows: encode a long recording once and score the windows from the "
                             "front-end's states, where the front-end allows it, instead of encoding every window "
                             "(--no-state-windows: encode every window); default: as the model's config says, on for "
                             "the embedded default (see modeling_nes2net/state_windows.py)")
    parser.add_argument("--max-full-seconds", type=float, default=FULL_PROTOCOL_MAX_SECONDS, metavar="SECONDS",
                        help="--protocol full refuses longer recordings, which it would hold whole "
                             f"(default {FULL_PROTOCOL_MAX_SECONDS:g})")
    parser.add_argument("--batch-size", type=int, default=8, help="windows / clips per forward pass (default 8)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--quantize", choices=sorted({*QUANTIZATIONS, *ONNX_VARIANTS}), default=None,
                        help="opt-in fast path: bf16 (fastest and closest on CPUs with bf16 instructions, and GPUs) "
                             "or int8 (CPU only: dynamic quantisation of Linear layers); with --runtime onnx, int8 "
                             "or fp16 picks that file of the export")
    parser.add_argument("--runtime", choices=RUNTIMES, default="torch",
                        help="torch (default); onnx: --model is a folder or .onnx file written by "
                             "`nes2net export onnx`, run by ONNX Runtime on the CPU")
    parser.add_argument("--output", default=None, metavar="FILE", help="write the results here instead of stdout")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="timeline figure; with several inputs one file per input, named PNG-<name>.png")


def expand_paths(paths: list[str], recursive: bool) -> tuple[list[str], list[DetectionFailure]]:
    """Files to score (folders expanded to their audio files) and a failure for each folder without audio."""
    files, failures = [], []
    for path in paths:
        found = find_audio_files(path, recursive)
        if not found:
            kind = "recursively " if recursive else ""
            failures.append(DetectionFailure(path, f"{printable(path)}: no audio files found {kind}in this folder "
                                                   f"(looked for {', '.join(sorted(AUDIO_EXTENSIONS))})"))
        files.extend(str(file) for file in found)
    return files, failures


def run(args: argparse.Namespace) -> int:
    if args.plot and not can_plot():
        print(f"nes2net detect: error: --plot: {PLOT_EXTRA_MISSING}", file=sys.stderr)
        return 2
    try:
        if args.plot:
            plot_format(args.plot)
        files, folder_failures = expand_paths(args.paths, args.recursive)
        for output in filter(None, (args.output, args.output and f"{args.output}.partial", args.plot)):
            refuse_overwriting_inputs(output, files)
        writer = ResultWriter(args.output, args.format, args.segments, files) if args.output else None
        detector = _detector(args) if files else None
    except (ModelNotFoundError, ModelLoadError, OutputError, ValueError) as error:
        print(f"nes2net detect: error: {error}", file=sys.stderr)
        return 2
    failures = list(folder_failures)
    results: list[DetectionResult] = []
    try:
        if detector is not None:
            outcomes = detector.detect_many(files)
            for outcome in tqdm(outcomes, total=len(files), unit="file", desc="detect", disable=None):
                if isinstance(outcome, DetectionFailure):
                    failures.append(outcome)
                    continue
                results.append(outcome)
                if writer is not None:
                    writer.write(outcome)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        sys.stdout.write(format_results(results, args.format, args.segments, files))
    else:
        logger.info("wrote %d results to %s", len(results), args.output)
    if args.plot:
        save_plots(results, args.plot)
    if failures:
        print(f"{len(failures)} of {len(files) + len(folder_failures)} inputs failed:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure.error}", file=sys.stderr)
    return 1 if failures else 0


def _detector(args: argparse.Namespace) -> Nes2NetDetector:
    return Nes2NetDetector.from_pretrained(
        args.model, device=args.device, runtime=args.runtime, protocol=args.protocol, aggregation=args.aggregation,
        window_seconds=args.window, hop_seconds=args.hop, batch_size=args.batch_size, threshold=args.threshold,
        stretch_margin=args.stretch_margin, quantize=args.quantize, max_full_seconds=args.max_full_seconds,
        state_windows=args.state_windows,
    )


class OutputError(OSError):
    """An output path that cannot be written; one line naming it."""


class ResultWriter:
    """`--output FILE`: rows appended to `FILE.partial` as results come, FILE replaced atomically on `close`.

    Checks at construction, before anything is scored, that FILE can be written (its folder exists or can be
    created and accepts a new file; FILE is not a folder)."""

    def __init__(self, path: str | os.PathLike, fmt: str, segments: bool, names: Iterable[str]) -> None:
        self.path, self.fmt, self.segments = Path(path), fmt, segments
        self.ids = score_file_ids(names)
        self.width = _name_width(names)
        if self.path.is_dir():
            raise OutputError(f"{self.path}: is a folder; --output needs a file path")
        self.partial = self.path.with_name(self.path.name + ".partial")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.partial, "w", encoding="utf-8", newline="")
        except OSError as error:
            raise OutputError(f"{self.path}: cannot be written ({error.strerror or error})") from None
        self._rows: list[str] = []

    def write(self, result: DetectionResult) -> None:
        rows = _rows(result, self.fmt, self.segments, self.ids, self.width)
        self._rows.extend(rows)
        lines = [json.dumps(row, allow_nan=False) + "\n" for row in rows] if self.fmt == "json" else rows
        self._handle.write("".join(lines))
        self._handle.flush()

    def close(self) -> None:
        """Write the complete FILE atomically (the rows written so far) and remove `FILE.partial`."""
        self._handle.close()
        with atomic_output(self.path) as temporary:
            temporary.write_text(_document(self.fmt, self.segments, self._rows, self.width), encoding="utf-8")
        self.partial.unlink(missing_ok=True)


def score_file_ids(names: Iterable[str]) -> dict[str, str]:
    """Name -> id for ASVspoof score files: the stem, or the name itself when two names share a stem (`cm_line`
    escapes it)."""
    names = list(dict.fromkeys(names))
    stems = [Path(name).stem for name in names]
    shared = {stem for stem in stems if stems.count(stem) > 1}
    return {name: name if stem in shared else stem for name, stem in zip(names, stems)}


def format_results(results: list[DetectionResult], fmt: str, segments: bool, names: Iterable[str] = ()) -> str:
    """The text of `--format fmt` for `results`; `names` are every input of the run (ids and widths depend on
    them), by default the results' own sources."""
    names = list(names) or [result.source for result in results]
    ids, width = score_file_ids(names + [result.source for result in results]), _name_width(names)
    rows = [row for result in results for row in _rows(result, fmt, segments, ids, width)]
    return _document(fmt, segments, rows, width)


def _name_width(names: Iterable[str]) -> int:
    return max([len("file")] + [len(printable(name)) for name in names])


def _rows(result: DetectionResult, fmt: str, segments: bool, ids: dict[str, str], width: int) -> list:
    """One result's rows: text lines, or dicts for JSON."""
    if fmt == "json":
        return [result.to_dict(include_segments=segments)]
    if fmt == "asvspoof":
        return [cm_line(ids[result.source], result.score)]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if segments:
            writer.writerows(_segment_row(result, segment) for segment in result.segments)
        else:
            row = result.to_dict(include_segments=False)
            writer.writerow(["" if row[column] is None else row[column] for column in RESULT_COLUMNS])
        return [buffer.getvalue()]
    name = printable(result.source)
    lines = [f"{name:<{width}}  {result.label:<{LABEL_WIDTH}}  {result.bonafide_probability:>12.4f}  "
             f"{result.score:>9.4f}  {result.log_odds:>9.4f}  {result.duration:>9.2f}\n"]
    if segments:
        for segment in result.segments:
            span = f"  {segment.start:.2f}-{segment.end:.2f} s"
            lines.append(f"{span:<{width}}  {result.segment_label(segment):<{LABEL_WIDTH}}  "
                         f"{segment.probability:>12.4f}  {segment.score:>9.4f}  {segment.log_odds:>9.4f}\n")
        lines.extend(f"  spoofed stretch {stretch}\n" for stretch in result.stretches)
    return lines


def _document(fmt: str, segments: bool, rows: list, width: int) -> str:
    """Rows of `_rows` with the format's header and framing."""
    if fmt == "json":
        return json.dumps(rows, indent=2, allow_nan=False) + "\n"
    if fmt == "csv":
        return ",".join(SEGMENT_COLUMNS if segments else RESULT_COLUMNS) + "\n" + "".join(rows)
    if fmt == "table":
        header = (f"{'file':<{width}}  {'label':<{LABEL_WIDTH}}  {'p(bona fide)':>12}  {'score':>9}  {'log-odds':>9}  "
                  f"{'seconds':>9}")
        return header + "\n" + "".join(rows)
    return "".join(rows)


def _segment_row(result: DetectionResult, segment) -> list:
    label = verdict(segment.log_odds, result.threshold)
    return [result.source, segment.start, segment.end, label, segment.probability, segment.score, segment.log_odds]


def save_plots(results: list[DetectionResult], path: str) -> list[Path]:
    """One timeline PNG per result: `path` itself for a single result, else `<path stem>-<input stem>.png`."""
    path = Path(path)
    written: list[Path] = []
    for result in results:
        target = path
        if len(results) > 1:
            target = path.with_name(f"{path.stem}-{Path(result.source).stem}{path.suffix or '.png'}")
            count = 2
            while target in written:
                target = path.with_name(f"{path.stem}-{Path(result.source).stem}-{count}{path.suffix or '.png'}")
                count += 1
        with atomic_output(target) as temporary:
            plot_timeline(result).savefig(temporary, format=plot_format(target), dpi=120)
        written.append(target)
    return written
