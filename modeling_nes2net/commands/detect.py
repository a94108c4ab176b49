"""`nes2net detect PATH...`: score audio files and folders for spoofing (a thin layer over `detection`).

Bad inputs never stop the run: each is reported with its reason at the end, and the exit status is 1 when any
input failed (2 when the model cannot be loaded). Output files are written atomically.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from pathlib import Path

from tqdm.auto import tqdm

from ..atomic import atomic_output
from ..configuration_nes2net import Nes2NetConfig
from ..audio import AUDIO_EXTENSIONS, find_audio_files
from ..scoring import verdict
from ..detection import (
    AGGREGATIONS,
    HOP_SAMPLES,
    PROTOCOLS,
    QUANTIZATIONS,
    RESULT_COLUMNS,
    SEGMENT_COLUMNS,
    WINDOW_SAMPLES,
    DetectionFailure,
    DetectionResult,
    Nes2NetDetector,
    resolve_model_path,
)
from ..plotting import PLOT_EXTRA_MISSING, can_plot, plot_timeline

logger = logging.getLogger(__name__)

FORMATS = ("table", "csv", "json", "asvspoof")


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
    parser.add_argument("--protocol", choices=PROTOCOLS, default="windows",
                        help="windows (default: sliding windows, bounded memory); full: whole file in one pass; "
                             "4sec: first 64,600 samples, tiled if shorter")
    parser.add_argument("--aggregation", choices=AGGREGATIONS, default="mean",
                        help="mean of window log-odds (default), or any: the most spoof-like window decides")
    parser.add_argument("--window", type=float, default=None, metavar="SECONDS",
                        help=f"window length for --protocol windows and 4sec (default {WINDOW_SAMPLES:,} samples, "
                             "4.0375 s at 16 kHz)")
    parser.add_argument("--hop", type=float, default=None, metavar="SECONDS",
                        help="hop between windows (default half a window)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows / clips per forward pass (default 8)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default=None,
                        help="opt-in fast path: bf16 (fastest and closest on CPUs with bf16 instructions, and GPUs) "
                             "or int8 (CPU only: dynamic quantisation of Linear layers)")
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
            failures.append(DetectionFailure(path, f"{path}: no audio files found {kind}in this folder "
                                                   f"(looked for {', '.join(sorted(AUDIO_EXTENSIONS))})"))
        files.extend(str(file) for file in found)
    return files, failures


def run(args: argparse.Namespace) -> int:
    if args.plot and not can_plot():
        print(f"nes2net detect: error: --plot: {PLOT_EXTRA_MISSING}", file=sys.stderr)
        return 2
    files, folder_failures = expand_paths(args.paths, args.recursive)
    failures = list(folder_failures)
    results: list[DetectionResult] = []
    if files:
        try:
            rate = Nes2NetConfig.from_pretrained(resolve_model_path(args.model)).sampling_rate  # seconds -> samples
            detector = Nes2NetDetector.from_pretrained(
                args.model,
                device=args.device,
                protocol=args.protocol,
                aggregation=args.aggregation,
                window=WINDOW_SAMPLES if args.window is None else round(args.window * rate),
                hop=HOP_SAMPLES if args.hop is None else round(args.hop * rate),
                batch_size=args.batch_size,
                threshold=args.threshold,
                quantize=args.quantize,
            )
        except (OSError, ValueError) as error:
            print(f"nes2net detect: error: {error}", file=sys.stderr)
            return 2
        for outcome in tqdm(detector.detect_many(files), total=len(files), unit="file", desc="detect", disable=None):
            (failures if isinstance(outcome, DetectionFailure) else results).append(outcome)
    text = format_results(results, args.format, args.segments)
    if args.output:
        with atomic_output(args.output) as temporary:
            temporary.write_text(text, encoding="utf-8")
        logger.info("wrote %d results to %s", len(results), args.output)
    else:
        sys.stdout.write(text)
    if args.plot:
        save_plots(results, args.plot)
    if failures:
        print(f"{len(failures)} of {len(files) + len(folder_failures)} inputs failed:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure.error}", file=sys.stderr)
    return 1 if failures else 0


def format_results(results: list[DetectionResult], fmt: str, segments: bool) -> str:
    """The text of `--format fmt` for `results`."""
    if fmt == "json":
        return json.dumps([result.to_dict(include_segments=segments) for result in results], indent=2) + "\n"
    if fmt == "asvspoof":
        return "".join(f"{Path(result.source).stem} {result.score!r}\n" for result in results)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(SEGMENT_COLUMNS if segments else RESULT_COLUMNS)
        for result in results:
            if segments:
                writer.writerows(_segment_row(result, segment) for segment in result.segments)
            else:
                row = result.to_dict(include_segments=False)
                writer.writerow(["" if row[column] is None else row[column] for column in RESULT_COLUMNS])
        return buffer.getvalue()
    return _table(results, segments)


def _segment_row(result: DetectionResult, segment) -> list:
    label = verdict(segment.log_odds, result.threshold)
    return [result.source, segment.start, segment.end, label, segment.probability, segment.score, segment.log_odds]


def _table(results: list[DetectionResult], segments: bool) -> str:
    width = max([len("file")] + [len(result.source) for result in results])
    lines = [f"{'file':<{width}}  {'label':<8}  {'p(bona fide)':>12}  {'score':>9}  {'log-odds':>9}  {'seconds':>9}"]
    for result in results:
        lines.append(f"{result.source:<{width}}  {result.label:<8}  {result.bonafide_probability:>12.4f}  "
                     f"{result.score:>9.4f}  {result.log_odds:>9.4f}  {result.duration:>9.2f}")
        if segments:
            for segment in result.segments:
                label = verdict(segment.log_odds, result.threshold)
                span = f"  {segment.start:.2f}-{segment.end:.2f} s"
                lines.append(f"{span:<{width}}  {label:<8}  {segment.probability:>12.4f}  "
                             f"{segment.score:>9.4f}  {segment.log_odds:>9.4f}")
            lines.extend(f"  spoofed stretch {stretch}" for stretch in result.stretches)
    return "\n".join(lines) + "\n"


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
            plot_timeline(result).savefig(temporary, format=target.suffix.lstrip(".") or "png", dpi=120)
        written.append(target)
    return written
