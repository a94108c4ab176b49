"""The measured part of a results file (`hub_cards.results`): metrics, counts and per-group breakdowns of a split's
scores, with ASV scores for the tandem metrics when given, and the same per channel condition."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.metrics import (
    asv_error_rates,
    bootstrap_eer_interval,
    breakdown,
    compute_metrics,
    compute_min_tandem_a_dcf,
    compute_min_tdcf_2019,
    compute_min_tdcf_2021,
    split_by_label,
)

ASV_KEYS = ("target", "nontarget", "spoof")


def read_asv_scores(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """ASV scores for the t-DCF, one trial per line: any whitespace-separated fields, one of them the key
    `target` / `nontarget` / `spoof`, the last one the score (the ASVspoof 2019 `SOURCE KEY SCORE` layout among
    others). Returns key -> `(n,)` scores."""
    scores: dict[str, list[float]] = {key: [] for key in ASV_KEYS}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        keys = [field for field in fields[:-1] if field in scores]
        if len(keys) != 1:
            raise ValueError(f"{path}:{number}: expected one of {'/'.join(ASV_KEYS)} and a score, got {line!r}")
        try:
            score = float(fields[-1])
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise ValueError(f"{path}:{number}: the score must be a finite number, got {fields[-1]!r}")
        scores[keys[0]].append(score)
    missing = [key for key, values in scores.items() if not values]
    if missing:
        raise ValueError(f"{path}: no {'/'.join(missing)} trials; the t-DCF needs target, nontarget and spoof ASV "
                         "scores")
    return {key: np.asarray(values) for key, values in scores.items()}


def measure(
    scores: np.ndarray,
    labels: np.ndarray,
    groups: dict[str, Sequence[str]] | None = None,
    asv_scores: dict[str, np.ndarray] | None = None,
    tdcf: str = "2019",
    n_resamples: int = 0,
) -> dict[str, Any]:
    """The `metrics`, counts and `per_group` of a results file, from `(n,)` scores and labels (1 = bona fide).

    `groups` maps a column name to each trial's value (`attack` groups pool all bona fide trials, as ASVspoof
    does; other columns compare each group's own bona fide and spoofed trials). `asv_scores` adds `min_tdcf` and
    the tandem `min_a_dcf`; `n_resamples > 0` adds 95 % bootstrap EER intervals (`eer_ci`) overall and per group.
    """
    measured = compute_metrics(scores, labels)
    metrics = {"eer": measured["eer"], "threshold": measured["eer_threshold"]}
    metrics.update({name: measured[name] for name in ("min_dcf", "act_dcf", "cllr")})
    bonafide, spoof = split_by_label(scores, labels)
    if n_resamples > 0:
        metrics["eer_ci"] = list(bootstrap_eer_interval(bonafide, spoof, n_resamples))
    if asv_scores is not None:
        asv = asv_error_rates(asv_scores["target"], asv_scores["nontarget"], asv_scores["spoof"])
        min_tdcf = compute_min_tdcf_2019 if tdcf == "2019" else compute_min_tdcf_2021
        metrics["min_tdcf"] = min_tdcf(bonafide, spoof, asv).cost
        metrics["min_a_dcf"] = compute_min_tandem_a_dcf(bonafide, spoof, asv).cost
    n_bonafide = int(np.count_nonzero(labels == 1))
    result: dict[str, Any] = {
        "metrics": metrics, "n_trials": len(scores), "n_bonafide": n_bonafide, "n_spoof": len(scores) - n_bonafide
    }
    per_group = {}
    for column, values in (groups or {}).items():
        rows = breakdown(scores, labels, values, pool_bonafide=column == "attack", n_resamples=n_resamples)
        per_group[column] = {
            name: {"eer": row.eer, "threshold": row.threshold, "n_trials": row.n_bonafide + row.n_spoof,
                   "n_bonafide": row.n_bonafide, "n_spoof": row.n_spoof,
                   **({} if row.eer_ci is None else {"eer_ci": list(row.eer_ci)})}
            for name, row in rows.items()
        }
    if per_group:
        result["per_group"] = per_group
    return result


def measure_conditions(
    condition_scores: dict[str, np.ndarray], labels: np.ndarray, n_resamples: int = 0
) -> dict[str, dict[str, Any]]:
    """The `conditions` of a results file: for each channel condition, the `metrics` and counts of its `(n,)` scores
    of the same trials (`labels`), as `measure` gives them."""
    conditions = {}
    for name, scores in condition_scores.items():
        measured = measure(scores, labels, n_resamples=n_resamples)
        counts = {key: measured[key] for key in ("n_trials", "n_bonafide", "n_spoof")}
        conditions[name] = {**measured["metrics"], **counts}
    return conditions
