"""`nes2net calibrate`: fit a model's affine score calibration on a dev score file and write the calibrated folder.

    nes2net evaluate MODEL DATA --split dev --score log_odds --output-dir dev-eval
    nes2net calibrate MODEL dev-eval/scores.csv calibrated-model             # labels from the score file
    nes2net calibrate MODEL dev.txt calibrated-model --protocol keys.csv     # or from a protocol

The output folder is written whole (atomically); it must not be an input (the model folder, the score file) and
must be new or empty unless `--overwrite` says to replace it.

The scores must be the model's own log-odds (`evaluate --score log_odds`; a `results.json` beside the score file is
checked for it). The fit is `training.llr_fitting.calibrate_model` (logistic regression to log-likelihood ratios),
folded into the config's `calibration_scale` / `calibration_offset`, so the saved model's forward pass, `pipeline`
and `nes2net detect` all give calibrated verdicts. CLLR and minCLLR before and after are printed; minCLLR does not
change (an increasing affine map keeps the ranking), CLLR falls towards it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from modeling_nes2net import Nes2NetForAudioClassification, save_model_folder
from modeling_nes2net.atomic import refuse_foreign_folder, refuse_overwriting_inputs
from modeling_nes2net.model_loading import ModelNotFoundError, load_model
from modeling_nes2net.weight_checks import ModelLoadError
from training.llr_fitting import calibrate_model
from training.fusion import aligned_scores
from training.metrics import compute_cllr, compute_min_cllr, split_by_label

logger = logging.getLogger(__name__)


def check_log_odds(score_file: Path) -> None:
    """Refuse a score file that `evaluate` wrote with another score than the log-odds (when its results.json says)."""
    results = score_file.parent / "results.json"
    if results.is_file():
        score = json.loads(results.read_text(encoding="utf-8")).get("score")
        if score not in (None, "log_odds"):
            raise ValueError(f"{score_file}: scored as {score!r} ({results}); calibration needs the log-odds: "
                             "rerun nes2net evaluate with --score log_odds")


def calibrate_from_scores(
    model: Nes2NetForAudioClassification, score_file: str | Path, protocol: str | Path | None = None
) -> dict[str, float]:
    """Fit `model`'s calibration on the log-odds of `score_file` (labels from it or `protocol`); returns the new
    scale and offset and the CLLR / minCLLR (bits) before and after."""
    score_file = Path(score_file)
    check_log_odds(score_file)
    table, scores = aligned_scores([score_file], protocol)
    labels = np.asarray(table.labels, dtype=np.int64)
    before = scores[:, 0]
    old_scale, old_offset = model.config.calibration_scale, model.config.calibration_offset
    try:
        scale, offset = calibrate_model(model, before, labels)
    except ValueError as error:  # scores that cannot be fitted (one class only): the file is the reason
        raise ValueError(f"{score_file}: {error}") from None
    weight = scale / old_scale
    after = weight * before + (offset - weight * old_offset)
    return {
        "calibration_scale": scale,
        "calibration_offset": offset,
        "cllr_before": compute_cllr(*split_by_label(before, labels)),
        "cllr_after": compute_cllr(*split_by_label(after, labels)),
        "min_cllr": compute_min_cllr(*split_by_label(before, labels)),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model folder or Hub id whose log-odds the score file holds")
    parser.add_argument("scores", help="dev score file of that model's log-odds (nes2net evaluate --score log_odds)")
    parser.add_argument("output_dir", help="where the calibrated model folder is written")
    parser.add_argument("--protocol", default=None, help="labels by utt_id when the score file has none")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUTPUT_DIR when it is a non-empty folder (never an input)")


def run(args: argparse.Namespace) -> int:
    try:
        inputs = [args.scores] + [path for path in (args.model, args.protocol) if path and Path(path).exists()]
        refuse_overwriting_inputs(args.output_dir, inputs)
        refuse_foreign_folder(args.output_dir, args.overwrite, "calibrated model folder")
        model = load_model(args.model)
        report = calibrate_from_scores(model, args.scores, args.protocol)
    except (ModelNotFoundError, ModelLoadError, FileNotFoundError, ValueError) as error:
        print(f"nes2net calibrate: error: {error}", file=sys.stderr)
        return 2
    save_model_folder(model, args.output_dir)
    print(f"calibration scale {report['calibration_scale']:.4f}, offset {report['calibration_offset']:.4f}; "
          f"CLLR {report['cllr_before']:.4f} -> {report['cllr_after']:.4f} bits (minCLLR {report['min_cllr']:.4f}); "
          f"wrote {args.output_dir}")
    return 0
