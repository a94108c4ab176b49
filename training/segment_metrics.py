"""Localisation metrics of partially spoofed speech (PartialSpoof, Zhang et al.), from one model's scores.

Inputs are per utterance: its 10 ms cell scores (log-odds, higher = more bona fide; see
`modeling_nes2net.localisation`), its 10 ms cell labels (1 bona fide, 0 spoof, as the PartialSpoof and splices
builders store `segment_labels_10ms`), and an utterance score and label.

- Segment EER at a resolution (20 ... 640 ms): every segment of every utterance is one trial, scored by the minimum
  of its cells and labelled as the builders label it (spoof when any part is), pooled over utterances.
- Range-based EER (Zhang et al., Interspeech 2023): miss and false-alarm rates as fractions of bona fide and spoof
  *duration* rather than of segments, so no resolution is chosen; measured on the 10 ms grid the labels are exact on
  (each cell one equal-duration trial scored by its own score).
- Utterance EER: one trial per utterance.
- `stretch_iou` (`modeling_nes2net.localisation`): how well the stretches a detector flags cover the spoofed cells of
  one utterance (intersection over union on the 10 ms grid), the figure a user reading `nes2net detect --segments`
  sees; a splice whose stretches reach `IOU_HIT` counts as found.
- `margin_sweep`: the verdicts a detector would give at every `Nes2NetConfig.stretch_margin`, from each recording's
  `verdict_margin`: the share of splices it calls bona fide against the share of bona fide recordings it flags, the
  trade-off the margin sets.

Every EER is `training.metrics.compute_eer`'s; `bootstrap_interval` resamples utterances (segments of one utterance
are not independent) for a confidence interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from modeling_nes2net.decision import is_bonafide
from modeling_nes2net.detection import MIN_STRETCH_SECONDS
from modeling_nes2net.localisation import flagging_threshold, pool_segments
from training.metrics import compute_eer, stratified_bootstrap_interval

PARTIALSPOOF_RESOLUTIONS_MS = (20, 40, 80, 160, 320, 640)
IOU_HIT = 0.5
"""The intersection over union at which the flagged stretches of a splice count as finding its inserted spans."""


@dataclass(frozen=True)
class LocalisedUtterance:
    """One scored utterance: `cell_scores` and `cell_labels` `(cells,)` on the 10 ms grid, `score` and `label`."""

    cell_scores: np.ndarray
    cell_labels: np.ndarray
    score: float
    label: int


def _eer(scores: np.ndarray, labels: np.ndarray) -> float:
    return compute_eer(scores[labels == 1], scores[labels == 0]).eer


def segment_eer(utterances: Sequence[LocalisedUtterance], resolution_ms: int) -> float:
    """Pooled EER over the `resolution_ms` segments of every utterance."""
    scores = np.concatenate([pool_segments(u.cell_scores, resolution_ms) for u in utterances])
    labels = np.concatenate([pool_segments(u.cell_labels, resolution_ms) for u in utterances])
    return _eer(scores, labels)


def range_based_eer(utterances: Sequence[LocalisedUtterance]) -> float:
    """EER of duration-weighted miss / false-alarm rates, on the 10 ms grid."""
    scores = np.concatenate([u.cell_scores for u in utterances])
    labels = np.concatenate([u.cell_labels for u in utterances])
    return _eer(scores, labels)


def utterance_eer(utterances: Sequence[LocalisedUtterance]) -> float:
    return _eer(np.asarray([u.score for u in utterances]), np.asarray([u.label for u in utterances]))


def bootstrap_interval(
    metric: Callable[[Sequence[LocalisedUtterance]], float],
    utterances: Sequence[LocalisedUtterance],
    num_resamples: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `metric` over utterances drawn with replacement, each label's utterances
    to their own count (`training.metrics.stratified_bootstrap_interval`), so every resample holds both classes."""
    labels = np.asarray([u.label for u in utterances])
    by_label = [np.flatnonzero(labels == label) for label in np.unique(labels)]

    def metric_of(*indices: np.ndarray) -> float:
        return metric([utterances[index] for index in np.concatenate(indices)])

    return stratified_bootstrap_interval(by_label, metric_of, num_resamples, confidence, seed)


def localisation_metrics(
    utterances: Sequence[LocalisedUtterance], resolutions_ms: Sequence[int] = PARTIALSPOOF_RESOLUTIONS_MS
) -> dict[str, float]:
    """`{"segment_eer_20ms": ..., ..., "range_eer": ..., "utterance_eer": ...}`, EERs as fractions."""
    metrics = {f"segment_eer_{resolution}ms": segment_eer(utterances, resolution) for resolution in resolutions_ms}
    metrics["range_eer"] = range_based_eer(utterances)
    metrics["utterance_eer"] = utterance_eer(utterances)
    return metrics


def verdict_margin(log_odds: float, timeline: np.ndarray | None, threshold: float = 0.0) -> float:
    """The `Nes2NetConfig.stretch_margin` below which `Nes2NetDetector` does not call a recording bona fide: inf when
    its utterance `log_odds` say spoof at `threshold`; else how far below `threshold` its 10 ms `timeline` `(cells,)`
    first holds a stretch of `MIN_STRETCH_SECONDS` (`flagging_threshold`), which makes it partly spoofed at every
    smaller margin; -inf without a timeline."""
    if not is_bonafide(log_odds, threshold):
        return np.inf
    if timeline is None:
        return -np.inf
    return threshold - flagging_threshold(timeline, MIN_STRETCH_SECONDS)


def margin_sweep(spliced: Sequence[float], originals: Sequence[float], margins: Sequence[float]) -> dict[str, list]:
    """At each stretch margin of `margins`, from the `verdict_margin`s of splices (`spliced`) and of bona fide
    recordings (`originals`): `{"margins", "called_bonafide_share", "originals_flagged_share"}`, the share of
    splices called bona fide (margin at or above theirs) and of originals called spoof or partly spoofed."""
    spliced, originals = np.asarray(spliced, np.float64), np.asarray(originals, np.float64)
    return {"margins": [float(margin) for margin in margins],
            "called_bonafide_share": [float(np.mean(spliced <= margin)) for margin in margins],
            "originals_flagged_share": [float(np.mean(originals > margin)) for margin in margins]}
