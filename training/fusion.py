"""`nes2net fuse`: logistic-regression fusion of several systems' score files into one, as the ASVspoof / BOSARIS
tools do, reporting CLLR and minCLLR of every system and of the fusion.

    nes2net fuse a/scores.csv b/scores.csv --output fused.csv                      # fit and apply on the same trials
    nes2net fuse a/eval.csv b/eval.csv --dev a/dev.csv b/dev.csv --output fused.csv  # fit on dev, apply to eval
    nes2net fuse a.txt b.txt --protocol keys.csv --output fused.csv                 # labels from a protocol

Score files are any format of `training.score_files`; trials are matched by utterance id (`utterance_key`) to the first
file's order. Labels come from the score files (CSV `label`, cm-keyed) or from `--protocol` (`utt_id`, `label`).
The weights come from `training.llr_fitting.fit_llr_fusion`; `fusion.json` next to the output holds them and the
metrics before and after.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modeling_nes2net.atomic import refuse_overwriting_inputs, write_text_atomic
from training.llr_fitting import fit_llr_fusion
from training.metrics import compute_cllr, compute_eer, compute_min_cllr, split_by_label
from training.score_files import ScoreTable, read_protocol, read_scores, join_with_protocol, utterance_key, write_scores

logger = logging.getLogger(__name__)


def aligned_scores(paths: Sequence[str | os.PathLike], protocol: str | os.PathLike | None = None
                   ) -> tuple[ScoreTable, np.ndarray]:
    """The first file's trials (labels from `protocol` or the file) and `(n_trials, n_files)` scores of every file
    in that order; a trial missing from a file raises `ValueError` naming the file."""
    tables = [read_scores(path) for path in paths]
    first = tables[0]
    if protocol is not None:
        first = join_with_protocol(first, read_protocol(protocol)).table
    if first.labels is None:
        raise ValueError(f"{paths[0]} has no labels: give a CSV with a label column or --protocol")
    keys = [utterance_key(utt_id) for utt_id in first.utt_ids]
    columns = []
    for path, table in zip(paths, tables):
        rows = {utterance_key(utt_id): row for row, utt_id in enumerate(table.utt_ids)}
        missing = [key for key in keys if key not in rows]
        if missing:
            raise ValueError(f"{path}: {len(missing)} of {len(keys)} trials have no score (e.g. {missing[0]})")
        order = [rows[key] for key in keys]
        if protocol is None and table.labels is not None:
            disagree = np.flatnonzero(np.asarray(table.labels)[order] != np.asarray(first.labels))
            if len(disagree):
                raise ValueError(f"{path}: {len(disagree)} trial(s) labelled otherwise than in {paths[0]} (e.g. "
                                 f"{keys[disagree[0]]}); the score files must describe the same trials")
        columns.append(table.scores[order])
    return first, np.stack(columns, axis=1)


def system_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """EER, CLLR and minCLLR of `(n,)` scores; `cllr - min_cllr` is what calibration can still gain."""
    bonafide, spoof = split_by_label(scores, labels)
    return {"eer": compute_eer(bonafide, spoof).eer, "cllr": compute_cllr(bonafide, spoof),
            "min_cllr": compute_min_cllr(bonafide, spoof)}


def fuse_score_files(
    paths: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    dev_paths: Sequence[str | os.PathLike] | None = None,
    protocol: str | os.PathLike | None = None,
    target_prior: float = 0.5,
) -> dict[str, Any]:
    """Fit fusion weights on `dev_paths` (default: `paths` themselves), write the fused scores of `paths` to
    `output` (format from its suffix) and `fusion.json` beside it; returns that report."""
    if len(paths) < 2 or (dev_paths is not None and len(dev_paths) != len(paths)):
        raise ValueError("fusion needs two or more score files, and as many --dev files when given")
    inputs = [*paths, *(dev_paths or []), *([protocol] if protocol else [])]
    for written in (output, Path(output).with_name("fusion.json")):
        refuse_overwriting_inputs(written, inputs)
    table, scores = aligned_scores(paths, protocol)
    dev_table, dev_scores = aligned_scores(dev_paths, protocol) if dev_paths else (table, scores)
    weights, offset = fit_llr_fusion(dev_scores, dev_table.labels, target_prior)
    fused = scores @ weights + offset
    write_scores(output, ScoreTable(table.utt_ids, fused, table.labels, table.metadata))
    report = {
        "systems": [{"scores": str(path), "weight": float(weight), **system_metrics(scores[:, column], table.labels)}
                    for column, (path, weight) in enumerate(zip(paths, weights))],
        "offset": offset,
        "target_prior": target_prior,
        "fitted_on": [str(path) for path in (dev_paths or paths)],
        "fused": {"scores": str(output), **system_metrics(fused, table.labels)},
    }
    write_text_atomic(Path(output).with_name("fusion.json"), json.dumps(report, indent=2) + "\n")
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scores", nargs="+", help="score files of the systems to fuse (same trials)")
    parser.add_argument("--output", required=True, help="the fused score file (.csv, .tsv = ASVspoof 5, else cm)")
    parser.add_argument("--dev", nargs="+", metavar="SCORES",
                        help="score files to fit the weights on, one per system in the same order (default: the "
                             "fused files themselves)")
    parser.add_argument("--protocol", help="a protocol with utt_id and label columns, when the score files lack labels")
    parser.add_argument("--target-prior", type=float, default=0.5, help="bona fide prior of the fit (default: 0.5)")


def run(args: argparse.Namespace) -> int:
    try:
        report = fuse_score_files(args.scores, args.output, args.dev, args.protocol, args.target_prior)
    except (OSError, ValueError) as error:
        print(f"nes2net fuse: error: {error}", file=sys.stderr)
        return 2
    rows = [*report["systems"], {**report["fused"], "weight": None}]
    print(f"{'system':<48} {'weight':>8} {'EER %':>7} {'CLLR':>7} {'minCLLR':>8}")
    for row in rows:
        weight = "" if row["weight"] is None else f"{row['weight']:.4f}"
        print(f"{row['scores'][-48:]:<48} {weight:>8} {100 * row['eer']:>7.2f} {row['cllr']:>7.4f} "
              f"{row['min_cllr']:>8.4f}")
    return 0
