"""The files `nes2net evaluate` writes for one measured split: score files, `results.json`, plots and the
robustness report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modeling_nes2net.atomic import write_text_atomic
from training.channel import condition_slug
from training.metrics import split_by_label
from training.plots import plot_condition_eers, plot_det_curves, plot_score_histogram
from hub_cards.results import CLEAN_CONDITION, EvaluationResult, robustness_rows, robustness_table, write_result
from training.score_files import ScoreTable, write_scores

SCORE_FILE_NAMES = {"cm": "scores.txt", "cm-keyed": "scores.txt", "asvspoof5": "scores.tsv"}
CONDITIONS_DIR = "conditions"


def write_evaluation(
    output_dir: str | os.PathLike,
    result: dict[str, Any],
    table: ScoreTable,
    condition_tables: dict[str, ScoreTable],
    score_format: str | None = None,
    model_name: str = "model",
) -> None:
    """Write into `output_dir` `scores.csv` (and the scores in `score_format`, an ASVspoof format), `results.json`
    (`result`), `det_curve.png`, `score_histogram.png` and, with channel conditions, each condition's
    `conditions/<condition>/scores.csv` and the robustness report."""
    output_dir = Path(output_dir)
    for name, condition_table in condition_tables.items():
        write_scores(output_dir / CONDITIONS_DIR / condition_slug(name) / "scores.csv", condition_table)
    write_scores(output_dir / "scores.csv", table)
    if score_format is not None:
        write_scores(output_dir / SCORE_FILE_NAMES[score_format], table, fmt=score_format)
    write_result(output_dir / "results.json", result)
    bonafide, spoof = split_by_label(table.scores, table.labels)
    plot_det_curves({model_name: (bonafide, spoof)}, output_dir / "det_curve.png",
                    title=f"{result['dataset']['name']} {result['dataset']['split']} ({result['protocol']})")
    plot_score_histogram(bonafide, spoof, output_dir / "score_histogram.png")
    if condition_tables:
        write_robustness_report(EvaluationResult.from_dict(result), output_dir)


def write_robustness_report(result: EvaluationResult, output_dir: str | os.PathLike) -> None:
    """`robustness.md` (the table of `hub_cards.results.robustness_table`) and `robustness.png` (EER per condition
    next to clean) of a result holding `conditions`."""
    output_dir = Path(output_dir)
    title = f"{result.dataset_name} {result.dataset_split} ({result.protocol})"
    write_text_atomic(output_dir / "robustness.md", f"EER per channel condition: {title}, channel seed "
                                                    f"{result.channel_seed}.\n\n{robustness_table(result)}")
    rows = {row["condition"]: (row["eer"], row["eer_ci"]) for row in robustness_rows(result)}
    plot_condition_eers(rows, output_dir / "robustness.png", reference=CLEAN_CONDITION, title=title)
