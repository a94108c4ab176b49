"""`nes2net demo`: the README's main job. Score example recordings with the embedded default model.

Examples are made on the spot: espeak-ng speech (machine-made), and, where the mini real-audio set is found next to
the repository (`../shared/data/mini-antispoof`), a few of its held-out bona fide and spoofed clips plus a spliced
recording (real - synthetic - real) whose timeline shows where the synthetic part sits. Writes `results.csv` and
`timeline.png` to the output folder and prints a table, then the spliced recording's flagged stretches against where
its synthetic sentence is (their intersection over union on the 10 ms grid).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..audio import SAMPLING_RATE, load_audio
from ..configuration_nes2net import BONAFIDE_LABEL, PARTLY_SPOOFED_LABEL, SPOOF_LABEL
from ..detection import DetectionResult, Nes2NetDetector
from ..examples import SENTENCES, VOICES, espeak_available, splice, synthesize_speech
from ..localisation import CELL_SECONDS, stretch_iou
from ..plotting import PLOT_EXTRA_MISSING, can_plot
from ..scorer import DetectionFailure
from ..weight_checks import ModelLoadError
from .detect import LABEL_WIDTH, format_results, save_plots

logger = logging.getLogger(__name__)

MINI_ANTISPOOF = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mini-antispoof"
SPLICED_NAME = "spliced_real_synthetic_real.wav"
SPLICE_PAUSE = 0.3  # seconds of silence between the spliced recordings
Span = tuple[float, float]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: the embedded model)")
    parser.add_argument("--output-dir", default="outputs/demo", help="where results.csv and timeline.png go")
    parser.add_argument("--per-label", type=int, default=4, help="clips per label taken from the mini set")
    parser.add_argument("--data", default=str(MINI_ANTISPOOF), help="mini-antispoof folder (optional)")


def held_out_clips(data_dir: Path, per_label: int) -> list[tuple[Path, str]]:
    """Up to `per_label` test clips of each label of the mini set, each from a different system where possible,
    with their labels (empty when the set is absent)."""
    metadata = data_dir / "metadata.csv"
    if not metadata.is_file():
        return []
    with metadata.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    chosen = []
    for label in (BONAFIDE_LABEL, SPOOF_LABEL):
        candidates = sorted((row for row in rows if row["label"] == label), key=lambda row: row["file_name"])
        first_of_system = {row["system"]: row for row in reversed(candidates)}
        picks = sorted(first_of_system.values(), key=lambda row: row["system"])[:per_label]
        chosen += [(data_dir / row["file_name"], label) for row in picks]
    return chosen


def make_examples(work_dir: Path, data_dir: Path, per_label: int) -> tuple[list[tuple[Path, str]], Span | None]:
    """`(path, expected label)` for every example recording, written into `work_dir`, and where the spliced one's
    synthetic sentence is (`(start, end)` seconds; None without a spliced example)."""
    examples = held_out_clips(data_dir, per_label)
    if espeak_available():
        for index, (sentence, voice) in enumerate(zip(SENTENCES, VOICES)):
            examples.append((synthesize_speech(sentence, work_dir / f"espeak_{voice}_{index}.wav", voice), SPOOF_LABEL))
    bona_fide = [path for path, label in examples if label == BONAFIDE_LABEL]
    synthetic = [path for path, label in examples if label == SPOOF_LABEL]
    if len(bona_fide) >= 2 and synthetic:
        spliced = splice([bona_fide[0], synthetic[-1], bona_fide[1]], work_dir / SPLICED_NAME, pause=SPLICE_PAUSE)
        examples.append((spliced, PARTLY_SPOOFED_LABEL))
        start = len(load_audio(bona_fide[0])) / SAMPLING_RATE + SPLICE_PAUSE
        return examples, (start, start + len(load_audio(synthetic[-1])) / SAMPLING_RATE)
    return examples, None


def spliced_report(result: DetectionResult, span: Span) -> str:
    """One line: the spliced recording's flagged stretches against its synthetic sentence at `span`."""
    cells = np.ones(round(result.duration / CELL_SECONDS), np.int8)
    cells[round(span[0] / CELL_SECONDS) : round(span[1] / CELL_SECONDS)] = 0
    flagged = ", ".join(f"{stretch.start:.1f}-{stretch.end:.1f} s" for stretch in result.stretches) or "none"
    return (f"spliced example: synthetic sentence at {span[0]:.1f}-{span[1]:.1f} s, flagged {flagged}: IoU "
            f"{stretch_iou(result.stretches, cells):.2f} (verdict: {result.label})")


def run(args: argparse.Namespace) -> int:
    try:
        detector = Nes2NetDetector.from_pretrained(args.model)
    except (OSError, ValueError, ModelLoadError) as error:  # ModelNotFoundError included
        print(f"nes2net demo: error: {error}", file=sys.stderr)
        return 2
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nes2net-demo-") as work_dir:
        examples, span = make_examples(Path(work_dir), Path(args.data), args.per_label)
        if not examples:
            logger.error("no example audio: install espeak-ng or provide the mini set with --data")
            return 2
        outcomes = list(detector.detect_many([path for path, _ in examples]))
    print(f"model: {detector.config.name_or_path}")
    print(f"trained on: {detector.config.training_data or 'unknown'}")
    print(f"threshold (log-odds): {detector.threshold:+.3f}\n")
    print(f"{'recording':<58} {'expected':>{LABEL_WIDTH}} {'verdict':>{LABEL_WIDTH}} {'p(bona fide)':>13}")
    results, correct = [], 0
    for (path, expected), outcome in zip(examples, outcomes):
        if isinstance(outcome, DetectionFailure):
            print(f"{path.name[:58]:<58} {expected:>{LABEL_WIDTH}} {'error':>{LABEL_WIDTH}}  {outcome.error}")
            continue
        print(f"{path.name[:58]:<58} {expected:>{LABEL_WIDTH}} {outcome.label:>{LABEL_WIDTH}} "
              f"{outcome.bonafide_probability:>13.3f}")
        results.append(outcome)
        correct += outcome.is_spoof == (expected != BONAFIDE_LABEL)  # a spoof caught in part is caught
    if results:
        print(f"\n{correct} of {len(results)} labelled examples classified correctly")
    with atomic_output(output_dir / "results.csv") as temporary:
        temporary.write_text(format_results(results, "csv", segments=False), encoding="utf-8")
    longest = max(results, key=lambda result: result.duration, default=None)
    if longest is not None:
        if can_plot():
            save_plots([longest], str(output_dir / "timeline.png"))
            print(f"timeline of the longest recording ({longest.duration:.1f} s): {output_dir / 'timeline.png'}")
        else:
            print(f"no timeline.png: {PLOT_EXTRA_MISSING}")
        spans = ", ".join(f"{stretch.start:.1f}-{stretch.end:.1f} s" for stretch in longest.stretches) or "none"
        print(f"  spoofed stretches: {spans} (verdict: {longest.label})")
    spliced = [result for (path, _), result in zip(examples, outcomes) if path.name == SPLICED_NAME]
    if span is not None and spliced and not isinstance(spliced[0], DetectionFailure):
        print(spliced_report(spliced[0], span))
    print(f"results: {output_dir / 'results.csv'}")
    return 0 if len(results) == len(outcomes) else 1
