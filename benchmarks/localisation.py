"""Benchmark: where is it fake? The default's frame head against its sliding windows, on held-back splices.

Data: `nes2net data build splices` of each corpus of the frame model's recipe (`training/recipes/frozen_frontend/
frames.yaml`: mini-antispoof, antispoof-plus, antispoof-modern), built into `--work-dir` as `python -m
training.frame_model` builds them (reused when there). Scored: their test splits (`eval`), whose hosts are speakers
no train split holds and, where the set flags `unseen_in_train`, whose hosts and pieces come only from sources
unseen in training; one bona fide original and two splices per host.

Systems, each through `Nes2NetDetector` with its defaults (4.04 s windows, 50 % hop, state windows where the model's
config asks, mean aggregation, threshold 0): what `nes2net detect --segments` prints.
- `windows`: the default model (no frame head): each 10 ms takes the mean log-odds of the windows covering it.
- `frame head`: the frame model (`--frame-model`, `default_frame_model` unless told): its frame log-odds.
- `frame head, full` (with `--full`): the same, the whole file in one pass (`--protocol full`; the states it was
  trained on were encoded from whole clips).

Reported per system, pooled over the corpora: segment EER at PartialSpoof's 20-640 ms, range-based EER, utterance
EER (the detector's log-odds), with 95 % bootstrap intervals over utterances at 160 ms and for the utterance; and on
the spliced utterances, the intersection over union of the flagged stretches (`DetectionResult.stretches`, the rule
`--segments`, the plot, the demo and the Space share) with the inserted spans: its mean, the share of splices at
IoU >= 0.5, and the share called `bonafide` (neither spoof nor partly spoofed); on the bona fide originals, the share
called spoof or partly spoofed (the price of a frame head in every verdict).
And the trade-off the model's `stretch_margin` sets: both shares again at every margin from 0 to 3 log-odds and at
the model's own (`segment_metrics.margin_sweep`), drawn with the model's margin marked into
`docs/localisation-margins.png`.

Run: `nice -n 19 python benchmarks/localisation.py [--frame-model DIR] [--max-utterances N] [--full] [--threads 2]
[--device cuda]`; writes `localisation.json` next to this script (rendered into the README by `benchmarks/render.py`)
and the plot.
`--device cuda` scores on the GPU; on a machine without CUDA it prints one line and exits.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.results import add_device_argument, cuda_missing, machine_record, write_results  # noqa: E402
from modeling_nes2net import Nes2NetForAudioClassification, Nes2NetForAudioFrameClassification  # noqa: E402
from modeling_nes2net.configuration_nes2net import BONAFIDE_LABEL  # noqa: E402
from modeling_nes2net.detection import Nes2NetDetector  # noqa: E402
from modeling_nes2net.localisation import stretch_iou  # noqa: E402
from modeling_nes2net.model_loading import DEFAULT_FRAME_MODEL_DIR, DEFAULT_MODEL_DIR  # noqa: E402
from training.frame_model import DEFAULT_RECIPE, DEFAULT_WORK_DIR, FrameRecipe, build_sources  # noqa: E402
from training.localisation import score_detections  # noqa: E402
from training.plots import plot_margin_sweeps  # noqa: E402
from training.segment_metrics import (  # noqa: E402
    IOU_HIT,
    PARTIALSPOOF_RESOLUTIONS_MS,
    bootstrap_interval,
    localisation_metrics,
    margin_sweep,
    segment_eer,
    utterance_eer,
    verdict_margin,
)

HELD_BACK_SPLIT = "eval"
SWEPT_MARGINS = np.round(np.arange(0.0, 3.0 + 1e-9, 0.05), 2)
"""The stretch margins (log-odds) at which the verdicts are counted again, with the model's own."""
MARGIN_PLOT = REPO_ROOT / "docs" / "localisation-margins.png"


def system_row(name: str, model_dir: Path, protocol: str, splices: dict[str, Path], max_utterances: int | None,
               device: str = "cpu") -> dict:
    """One system's figures on the held-back splices of every corpus (at most `max_utterances` of each, the same
    seeded subset for every system; see the module docstring), scored on `device`."""
    model_class = Nes2NetForAudioFrameClassification if name.startswith("frame") else Nes2NetForAudioClassification
    detector = Nes2NetDetector(model_class.from_pretrained(model_dir), protocol=protocol, device=device)
    scored, corpora = [], {}
    for corpus, folder in splices.items():
        results = score_detections(detector, folder, HELD_BACK_SPLIT, max_utterances)
        corpora[corpus] = {"utterances": len(results), "spliced": sum(u.label == 0 for u, _ in results)}
        scored += results
        logging.info("%s: %s scored (%d utterances)", name, corpus, len(results))
    utterances = [utterance for utterance, _ in scored]
    spliced = [(utterance, result) for utterance, result in scored if utterance.label == 0]
    originals = [result for utterance, result in scored if utterance.label == 1]
    ious = np.array([stretch_iou(result.stretches, utterance.cell_labels) for utterance, result in spliced])
    margin = detector.stretch_margin
    spliced_margins = [verdict_margin(result.log_odds, result.timeline, result.threshold) for _, result in spliced]
    original_margins = [verdict_margin(result.log_odds, result.timeline, result.threshold) for result in originals]
    sweep = margin_sweep(spliced_margins, original_margins, np.union1d(SWEPT_MARGINS, [margin]))
    return {
        "system": name, "model": str(model_dir.relative_to(REPO_ROOT) if model_dir.is_relative_to(REPO_ROOT)
                                     else model_dir), "protocol": protocol,
        "state_windows": detector.scorer.state_windows is not None, "corpora": corpora,
        "metrics": localisation_metrics(utterances),
        "intervals": {"segment_eer_160ms": bootstrap_interval(lambda u: segment_eer(u, 160), utterances),
                      "utterance_eer": bootstrap_interval(utterance_eer, utterances)},
        "iou_mean": float(ious.mean()),
        "iou_hit_share": float((ious >= IOU_HIT).mean()),
        "called_bonafide_share": float(np.mean([result.label == BONAFIDE_LABEL for _, result in spliced])),
        "originals_flagged_share": float(np.mean([result.label != BONAFIDE_LABEL for result in originals])),
        "stretch_margin": margin,
        "margin_sweep": sweep,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="the windows baseline's model folder")
    parser.add_argument("--frame-model", type=Path, default=DEFAULT_FRAME_MODEL_DIR)
    parser.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE, help="the frame model's recipe (its corpora)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="where the splices are built")
    parser.add_argument("--max-utterances", type=int, help="score a seeded random subset of each corpus' splices")
    parser.add_argument("--full", action="store_true", help="also score the frame head with --protocol full")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("localisation.json"))
    add_device_argument(parser)
    args = parser.parse_args(argv)
    if cuda_missing(args.device):
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not (args.frame_model / "config.json").is_file():
        raise SystemExit(f"--frame-model: {args.frame_model} holds no model; build it with python -m "
                         "training.frame_model")
    torch.set_num_threads(args.threads)
    machine = machine_record(args.device, args.threads)
    sources = build_sources(FrameRecipe.load(args.recipe), args.work_dir / "data")
    splices = {name.removeprefix("splices-"): folder for name, folder in sources.items() if name.startswith("splices-")}
    systems = [("windows", args.model, "windows"), ("frame head", args.frame_model, "windows")]
    systems += [("frame head, full", args.frame_model, "full")] if args.full else []
    rows = [system_row(name, model_dir, protocol, splices, args.max_utterances, args.device)
            for name, model_dir, protocol in systems]
    for row in rows:
        figures = ", ".join(f"{metric} {100 * value:.1f}" for metric, value in row["metrics"].items())
        print(f"{row['system']}: {figures}; IoU mean {row['iou_mean']:.2f}, >= {IOU_HIT}: "
              f"{100 * row['iou_hit_share']:.0f} %, called bona fide {100 * row['called_bonafide_share']:.0f} %; "
              f"bona fide originals flagged {100 * row['originals_flagged_share']:.0f} %")
    wins = all(rows[1]["metrics"][f"segment_eer_{r}ms"] < rows[0]["metrics"][f"segment_eer_{r}ms"]
               for r in PARTIALSPOOF_RESOLUTIONS_MS)
    print(f"frame head beats the windows at every resolution: {wins}")
    write_results(args.output, "localisation", machine, rows)
    plot_margin_sweeps(rows, MARGIN_PLOT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
