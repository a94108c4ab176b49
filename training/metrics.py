"""Anti-spoofing evaluation metrics: DET curve, EER, ASVspoof 5 minDCF / actDCF / CLLR, ASVspoof 2019 and 2021 t-DCF,
the SASV a-DCF (ASVspoof 5 track 2), minCLLR and bootstrap confidence intervals.

Conventions shared by every function here (the EER rule and every cost formula are those of the official ASVspoof
2019 / 2021 / 5 evaluation packages):

- Bona fide is the positive class; a score is the bona fide score (higher = more bona fide).
- A trial is *accepted* (called bona fide) when `score >= threshold`. So at threshold `t`:
  `P_miss(t) = #(bonafide < t) / N_bonafide` and `P_fa(t) = #(spoof >= t) / N_spoof`.
- The DET curve is evaluated at every distinct score (and at `+inf`, where everything is rejected), so it
  holds every operating point the scores can reach, exactly, tied scores included. Cost: two sorts, O(n log n).
  (The official packages step through the sorted scores one trial at a time, which splits tied scores into
  operating points no threshold can reach; without ties both give the same points and the same EER, and our
  threshold is the lowest accepted score where theirs is the highest rejected one.)
- EER: the curve point where `|P_miss - P_fa|` is smallest (the first, i.e. lowest threshold, on a tie), reported
  as the mean of the two rates there, with that point's threshold. It needs no interpolation and is within one
  step of the curve (at most `1 / min(N_bonafide, N_spoof)`) of the interpolated crossing. Scores that carry no
  information give EER 0.5.

Every function raises `ValueError` when a class has no trials or a score is not finite.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypedDict

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    import evaluate

logger = logging.getLogger(__name__)

METRIC_MODULE_PATH = Path(__file__).with_name("metrics_module") / "antispoofing_metrics.py"


class DetCurve(NamedTuple):
    """Error rates at every distinct threshold, thresholds ascending; each array has shape `(n_distinct + 1,)`.

    The first point (lowest score) accepts everything (`P_miss = 0, P_fa = 1`), the last (`+inf`) rejects everything.
    """

    miss_rates: np.ndarray
    false_alarm_rates: np.ndarray
    thresholds: np.ndarray


class EqualErrorRate(NamedTuple):
    eer: float
    threshold: float


class DetectionCost(NamedTuple):
    """A normalised detection cost and the threshold it was measured at."""

    cost: float
    threshold: float


class AntispoofingMetrics(TypedDict):
    eer: float
    eer_threshold: float
    min_dcf: float
    act_dcf: float
    cllr: float


@dataclass(frozen=True)
class DcfCosts:
    """ASVspoof 5 detection cost parameters (bona fide prior `1 - p_spoof`)."""

    p_spoof: float = 0.05
    c_miss: float = 1.0
    c_fa: float = 10.0

    @property
    def beta(self) -> float:
        """`C_miss (1 - P_spoof) / (C_fa P_spoof)`: 1.9 with the defaults."""
        return self.c_miss * (1.0 - self.p_spoof) / (self.c_fa * self.p_spoof)

    @property
    def bayes_threshold(self) -> float:
        """`-ln(beta)`: the Bayes decision threshold for scores that are log-likelihood ratios."""
        return -math.log(self.beta)


@dataclass(frozen=True)
class TDCFPriors:
    """The trial priors of both ASVspoof t-DCF cost models: spoofs, then targets and zero-effort non-targets."""

    p_spoof: float = 0.05
    p_tar: float = 0.95 * 0.99
    p_non: float = 0.95 * 0.01


@dataclass(frozen=True)
class TDCFCosts2019(TDCFPriors):
    """ASVspoof 2019 t-DCF cost model (Kinnunen et al. 2018)."""

    c_miss_asv: float = 1.0
    c_fa_asv: float = 10.0
    c_miss_cm: float = 1.0
    c_fa_cm: float = 10.0


@dataclass(frozen=True)
class TDCFCosts2021(TDCFPriors):
    """ASVspoof 2021 revised t-DCF cost model (Kinnunen et al. 2020)."""

    c_miss: float = 1.0
    c_fa: float = 10.0
    c_fa_spoof: float = 10.0


@dataclass(frozen=True)
class AsvErrorRates:
    """Error rates of a fixed ASV system at its threshold, the input of the t-DCF."""

    threshold: float
    p_miss: float
    """targets rejected"""
    p_fa: float
    """zero-effort non-targets accepted"""
    p_miss_spoof: float
    """spoofs rejected"""

    @property
    def p_fa_spoof(self) -> float:
        """spoofs accepted"""
        return 1.0 - self.p_miss_spoof


@dataclass(frozen=True)
class ADCFCosts:
    """The a-DCF cost model of ASVspoof 5 track 2 (Shim et al., Odyssey 2024): target, non-target and spoof priors,
    the cost of rejecting a target and of accepting a non-target / a spoof."""

    p_tar: float = 0.9
    p_non: float = 0.05
    p_spoof: float = 0.05
    c_miss: float = 1.0
    c_fa_non: float = 10.0
    c_fa_spoof: float = 20.0

    @property
    def normaliser(self) -> float:
        """The cost of the better of the two trivial systems: `min(C_miss P_tar, C_fa_non P_non + C_fa_spoof P_spoof)`."""
        return min(self.c_miss * self.p_tar, self.c_fa_non * self.p_non + self.c_fa_spoof * self.p_spoof)


class GroupEer(NamedTuple):
    """The EER of one group of trials, its threshold, the trial counts it was measured on and, when bootstrapped,
    the EER's confidence interval `(low, high)`."""

    eer: float
    threshold: float
    n_bonafide: int
    n_spoof: int
    eer_ci: tuple[float, float] | None = None


def _as_scores(scores: ArrayLike, name: str) -> np.ndarray:
    """Validate a 1-D score array of shape `(n_trials,)` and return it as float64 (a copy only when needed)."""
    array = np.asarray(scores, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError(f"no {name} scores: these metrics need trials of both classes")
    finite = np.isfinite(array)
    if not finite.all():
        n_nan = int(np.isnan(array).sum())
        raise ValueError(
            f"{name} scores must be finite, got {n_nan} NaN and {array.size - int(finite.sum()) - n_nan} infinite"
        )
    return array


def _bonafide_mask(labels: ArrayLike, n_trials: int) -> np.ndarray:
    """`(n_trials,)` bool mask of the bona fide trials, from labels 1 (bona fide) / 0 (spoof)."""
    labels = np.asarray(labels).reshape(-1)
    if labels.size != n_trials:
        raise ValueError(f"got {n_trials} scores but {labels.size} labels")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 1 (bona fide) or 0 (spoof), got values {np.unique(labels)[:5].tolist()}")
    return labels == 1


def split_by_label(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Split `scores` `(n_trials,)` by `labels` `(n_trials,)` (1 = bona fide, 0 = spoof) into (bonafide, spoof)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    is_bonafide = _bonafide_mask(labels, scores.size)
    return scores[is_bonafide], scores[~is_bonafide]


def _error_counts(bonafide: np.ndarray, spoof: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(#bona fide below t, #spoof below t, t) for each distinct score t, ascending."""
    bonafide_sorted = np.sort(bonafide)
    spoof_sorted = np.sort(spoof)
    thresholds = np.unique(np.concatenate((bonafide_sorted, spoof_sorted)))
    return (
        np.searchsorted(bonafide_sorted, thresholds, side="left"),
        np.searchsorted(spoof_sorted, thresholds, side="left"),
        thresholds,
    )


def compute_det_curve(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> DetCurve:
    """Miss and false-alarm rates at every distinct threshold (scores equal to the threshold are accepted).

    Args:
        bonafide_scores: `(n_bonafide,)` scores of bona fide trials.
        spoof_scores: `(n_spoof,)` scores of spoofed trials.
    """
    bonafide = _as_scores(bonafide_scores, "bona fide")
    spoof = _as_scores(spoof_scores, "spoof")
    bonafide_below, spoof_below, thresholds = _error_counts(bonafide, spoof)
    return DetCurve(
        miss_rates=np.append(bonafide_below, bonafide.size) / bonafide.size,
        false_alarm_rates=np.append(spoof.size - spoof_below, 0) / spoof.size,
        thresholds=np.append(thresholds, np.inf),
    )


def eer_from_det_curve(curve: DetCurve) -> EqualErrorRate:
    """EER of a DET curve: the point minimising `|P_miss - P_fa|` (first on a tie), value the mean of the two."""
    index = int(np.argmin(np.abs(curve.miss_rates - curve.false_alarm_rates)))
    eer = 0.5 * (curve.miss_rates[index] + curve.false_alarm_rates[index])
    return EqualErrorRate(float(eer), float(curve.thresholds[index]))


def compute_eer(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> EqualErrorRate:
    """Equal error rate (a fraction in [0, 1]) and its threshold; see the module docstring for the exact rule.

    The threshold is always finite: the accept-everything point ties with the reject-everything one and comes first.
    """
    return eer_from_det_curve(compute_det_curve(bonafide_scores, spoof_scores))


def min_dcf_from_det_curve(curve: DetCurve, costs: DcfCosts = DcfCosts()) -> DetectionCost:
    """Minimum normalised DCF over the curve, and the (first) threshold reaching it."""
    p_bonafide = 1.0 - costs.p_spoof
    cost = costs.c_miss * p_bonafide * curve.miss_rates + costs.c_fa * costs.p_spoof * curve.false_alarm_rates
    index = int(np.argmin(cost))
    normaliser = min(costs.c_miss * p_bonafide, costs.c_fa * costs.p_spoof)
    return DetectionCost(float(cost[index] / normaliser), float(curve.thresholds[index]))


def compute_act_dcf(
    bonafide_scores: ArrayLike, spoof_scores: ArrayLike, costs: DcfCosts = DcfCosts()
) -> DetectionCost:
    """ASVspoof 5 actDCF: the normalised DCF at the fixed threshold `-ln(beta)` (scores read as LLRs)."""
    bonafide = _as_scores(bonafide_scores, "bona fide")
    spoof = _as_scores(spoof_scores, "spoof")
    threshold = costs.bayes_threshold
    p_miss = np.count_nonzero(bonafide < threshold) / bonafide.size
    p_fa = np.count_nonzero(spoof >= threshold) / spoof.size
    p_bonafide = 1.0 - costs.p_spoof
    cost = costs.c_miss * p_bonafide * p_miss + costs.c_fa * costs.p_spoof * p_fa
    return DetectionCost(float(cost / min(costs.c_miss * p_bonafide, costs.c_fa * costs.p_spoof)), threshold)


def compute_cllr(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> float:
    """Log-likelihood-ratio cost in bits: `0.5 [mean_bona log2(1 + e^-s) + mean_spoof log2(1 + e^s)]`.

    Computed with `logaddexp`, so large scores neither overflow nor lose precision. 1.0 for all-zero scores.
    """
    bonafide = _as_scores(bonafide_scores, "bona fide")
    spoof = _as_scores(spoof_scores, "spoof")
    nats = np.logaddexp(0.0, -bonafide).mean() + np.logaddexp(0.0, spoof).mean()
    return float(0.5 * nats / math.log(2.0))


def compute_metrics(scores: ArrayLike, labels: ArrayLike, costs: DcfCosts = DcfCosts()) -> AntispoofingMetrics:
    """EER (with threshold), ASVspoof 5 minDCF, actDCF and CLLR of `scores` `(n,)`, `labels` `(n,)` (1 bona fide)."""
    bonafide, spoof = split_by_label(scores, labels)
    curve = compute_det_curve(bonafide, spoof)
    eer = eer_from_det_curve(curve)
    return AntispoofingMetrics(
        eer=eer.eer,
        eer_threshold=eer.threshold,
        min_dcf=min_dcf_from_det_curve(curve, costs).cost,
        act_dcf=compute_act_dcf(bonafide, spoof, costs).cost,
        cllr=compute_cllr(bonafide, spoof),
    )


def asv_error_rates(
    target_scores: ArrayLike,
    nontarget_scores: ArrayLike,
    spoof_scores: ArrayLike,
    threshold: float | None = None,
) -> AsvErrorRates:
    """ASV error rates at `threshold` (default: the ASV EER threshold on targets vs zero-effort non-targets).

    Args:
        target_scores: `(n_target,)` ASV scores of bona fide target-speaker trials.
        nontarget_scores: `(n_nontarget,)` ASV scores of bona fide non-target trials.
        spoof_scores: `(n_spoof,)` ASV scores of spoofed target-speaker trials.
    """
    target = _as_scores(target_scores, "ASV target")
    nontarget = _as_scores(nontarget_scores, "ASV non-target")
    spoof = _as_scores(spoof_scores, "ASV spoof")
    if threshold is None:
        threshold = compute_eer(target, nontarget).threshold
    return AsvErrorRates(
        threshold=float(threshold),
        p_miss=np.count_nonzero(target < threshold) / target.size,
        p_fa=np.count_nonzero(nontarget >= threshold) / nontarget.size,
        p_miss_spoof=np.count_nonzero(spoof < threshold) / spoof.size,
    )


def _min_over_curve(normalised_tdcf: np.ndarray, curve: DetCurve) -> DetectionCost:
    index = int(np.argmin(normalised_tdcf))
    return DetectionCost(float(normalised_tdcf[index]), float(curve.thresholds[index]))


def compute_min_tdcf_2019(
    bonafide_scores: ArrayLike,
    spoof_scores: ArrayLike,
    asv: AsvErrorRates,
    costs: TDCFCosts2019 = TDCFCosts2019(),
) -> DetectionCost:
    """ASVspoof 2019 minimum normalised t-DCF of CM scores in tandem with a fixed ASV system.

    `C1 = P_tar (C_miss_cm - C_miss_asv P_miss_asv) - P_non C_fa_asv P_fa_asv`,
    `C2 = C_fa_cm P_spoof (1 - P_miss_spoof_asv)`, `t-DCF(t) = (C1 P_miss_cm(t) + C2 P_fa_cm(t)) / min(C1, C2)`.
    """
    c1 = costs.p_tar * (costs.c_miss_cm - costs.c_miss_asv * asv.p_miss) - costs.p_non * costs.c_fa_asv * asv.p_fa
    c2 = costs.c_fa_cm * costs.p_spoof * (1.0 - asv.p_miss_spoof)
    if c1 <= 0 or c2 <= 0:
        raise ValueError(f"t-DCF undefined for this ASV system: C1 = {c1:.4g} and C2 = {c2:.4g} must both be positive")
    curve = compute_det_curve(bonafide_scores, spoof_scores)
    tdcf = (c1 * curve.miss_rates + c2 * curve.false_alarm_rates) / min(c1, c2)
    return _min_over_curve(tdcf, curve)


def compute_min_tdcf_2021(
    bonafide_scores: ArrayLike,
    spoof_scores: ArrayLike,
    asv: AsvErrorRates,
    costs: TDCFCosts2021 = TDCFCosts2021(),
) -> DetectionCost:
    """ASVspoof 2021 revised minimum normalised t-DCF of CM scores in tandem with a fixed ASV system.

    `C0 = P_tar C_miss P_miss_asv + P_non C_fa P_fa_asv`, `C1 = P_tar C_miss - C0`,
    `C2 = P_spoof C_fa_spoof P_fa_spoof_asv`, `t-DCF(t) = (C0 + C1 P_miss_cm(t) + C2 P_fa_cm(t)) / (C0 + min(C1, C2))`.
    """
    c0 = costs.p_tar * costs.c_miss * asv.p_miss + costs.p_non * costs.c_fa * asv.p_fa
    c1 = costs.p_tar * costs.c_miss - c0
    c2 = costs.p_spoof * costs.c_fa_spoof * asv.p_fa_spoof
    if c1 < 0 or c2 < 0 or c0 + min(c1, c2) <= 0:
        raise ValueError(f"t-DCF undefined for this ASV system: C0 = {c0:.4g}, C1 = {c1:.4g}, C2 = {c2:.4g}")
    curve = compute_det_curve(bonafide_scores, spoof_scores)
    tdcf = (c0 + c1 * curve.miss_rates + c2 * curve.false_alarm_rates) / (c0 + min(c1, c2))
    return _min_over_curve(tdcf, curve)


def _accept_rates(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """`(n_thresholds,)` fraction of `scores` `>= t` for each threshold `t`."""
    return 1.0 - np.searchsorted(np.sort(scores), thresholds, side="left") / scores.size


def compute_min_a_dcf(
    target_scores: ArrayLike, nontarget_scores: ArrayLike, spoof_scores: ArrayLike, costs: ADCFCosts = ADCFCosts()
) -> DetectionCost:
    """ASVspoof 5 track 2 minimum normalised a-DCF of one SASV score per trial (higher = accept as the target):

    `a-DCF(t) = [C_miss P_tar P_miss(t) + C_fa_non P_non P_fa_non(t) + C_fa_spoof P_spoof P_fa_spoof(t)] / normaliser`
    minimised over every distinct score `t` and `+inf` (accepting means `score >= t`).
    """
    target = _as_scores(target_scores, "SASV target")
    nontarget = _as_scores(nontarget_scores, "SASV non-target")
    spoof = _as_scores(spoof_scores, "SASV spoof")
    thresholds = np.append(np.unique(np.concatenate((target, nontarget, spoof))), np.inf)
    cost = (costs.c_miss * costs.p_tar * (1.0 - _accept_rates(target, thresholds))
            + costs.c_fa_non * costs.p_non * _accept_rates(nontarget, thresholds)
            + costs.c_fa_spoof * costs.p_spoof * _accept_rates(spoof, thresholds))
    index = int(np.argmin(cost))
    return DetectionCost(float(cost[index] / costs.normaliser), float(thresholds[index]))


def compute_min_tandem_a_dcf(
    bonafide_scores: ArrayLike, spoof_scores: ArrayLike, asv: AsvErrorRates, costs: ADCFCosts = ADCFCosts()
) -> DetectionCost:
    """Minimum normalised a-DCF of a CM in tandem with a fixed ASV system (a trial is accepted when both accept),
    with the ASV and CM decisions independent, as the t-DCF assumes. With `A_cm(t) = 1 - P_miss_cm(t)`:
    `P_miss(t) = 1 - (1 - P_miss_asv) A_cm(t)`, `P_fa_non(t) = P_fa_asv A_cm(t)` (non-targets are bona fide) and
    `P_fa_spoof(t) = P_fa_spoof_asv P_fa_cm(t)`, minimised over the CM threshold `t`.

    Args:
        bonafide_scores: `(n_bonafide,)` CM scores of bona fide trials.
        spoof_scores: `(n_spoof,)` CM scores of spoofed trials.
        asv: the ASV system's error rates at its threshold (`asv_error_rates`).
    """
    curve = compute_det_curve(bonafide_scores, spoof_scores)
    cm_accepts_bonafide = 1.0 - curve.miss_rates
    cost = (costs.c_miss * costs.p_tar * (1.0 - (1.0 - asv.p_miss) * cm_accepts_bonafide)
            + costs.c_fa_non * costs.p_non * asv.p_fa * cm_accepts_bonafide
            + costs.c_fa_spoof * costs.p_spoof * asv.p_fa_spoof * curve.false_alarm_rates)
    return _min_over_curve(cost / costs.normaliser, curve)


def compute_min_cllr(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> float:
    """CLLR (bits) after the best monotonic calibration: the scores replaced by the log-likelihood ratios of the
    pool-adjacent-violators fit of P(bona fide | score) (scikit-learn's `IsotonicRegression`), with the classes
    weighted equally. The gap `cllr - min_cllr` is the calibration loss."""
    from sklearn.isotonic import IsotonicRegression

    bonafide = _as_scores(bonafide_scores, "bona fide")
    spoof = _as_scores(spoof_scores, "spoof")
    scores = np.concatenate((bonafide, spoof))
    targets = np.concatenate((np.ones(bonafide.size), np.zeros(spoof.size)))
    weights = np.concatenate((np.full(bonafide.size, 0.5 / bonafide.size), np.full(spoof.size, 0.5 / spoof.size)))
    posterior = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True).fit(scores, targets, weights)
    posterior = np.clip(posterior.predict(scores), 0.0, 1.0)
    # log-posterior-odds at prior 0.5 = LLR; log2(1 + e^-llr) = -log2(posterior) for bona fide (0 * inf avoided)
    with np.errstate(divide="ignore"):
        bonafide_bits = -np.log2(posterior[: bonafide.size])
        spoof_bits = -np.log2(1.0 - posterior[bonafide.size :])
    return float(0.5 * (bonafide_bits.mean() + spoof_bits.mean()))


_BOOTSTRAP_BATCH_VALUES = 1 << 22  # resampled values held at once: scipy draws a batch of resamples as one array


def stratified_bootstrap_interval(
    samples: Sequence[np.ndarray], statistic: Callable[..., float], n_resamples: int, confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(*samples)` (`scipy.stats.bootstrap`): each 1-D sample resampled
    with replacement to its own size, independently of the others (stratified: every resample keeps every class),
    `n_resamples` times from `default_rng(seed)`. A sample of one value is every resample of itself."""
    if n_resamples < 1 or not 0 < confidence < 1:
        raise ValueError(f"need n_resamples >= 1 and 0 < confidence < 1, got {n_resamples} and {confidence}")
    varying = [index for index, sample in enumerate(samples) if len(sample) > 1]  # scipy resamples 2 or more
    if not varying:
        value = float(statistic(*samples))
        return value, value

    def resampled_statistic(*resamples: np.ndarray) -> float:
        drawn = list(samples)
        for index, resample in zip(varying, resamples):
            drawn[index] = resample
        return statistic(*drawn)

    values = sum(len(samples[index]) for index in varying)
    result = scipy.stats.bootstrap(
        [samples[index] for index in varying], resampled_statistic, n_resamples=n_resamples,
        batch=max(1, _BOOTSTRAP_BATCH_VALUES // values), vectorized=False, confidence_level=confidence,
        method="percentile", rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def bootstrap_eer_interval(
    bonafide_scores: ArrayLike, spoof_scores: ArrayLike, n_resamples: int = 1000, confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the EER, each class resampled to its own size
    (`stratified_bootstrap_interval`)."""
    bonafide = _as_scores(bonafide_scores, "bona fide")
    spoof = _as_scores(spoof_scores, "spoof")
    return stratified_bootstrap_interval((bonafide, spoof), lambda b, s: compute_eer(b, s).eer, n_resamples,
                                         confidence, seed)


def breakdown(
    scores: ArrayLike, labels: ArrayLike, groups: ArrayLike, pool_bonafide: bool = True, n_resamples: int = 0,
    seed: int = 0,
) -> dict[str, GroupEer]:
    """EER per group of trials (attack, codec, any metadata column), keyed by group name, names sorted.

    Args:
        scores: `(n,)` bona fide scores.
        labels: `(n,)` 1 bona fide, 0 spoof.
        groups: `(n,)` the group of each trial (compared as strings).
        pool_bonafide: the ASVspoof convention for *attacks*: every group is scored as ALL bona fide trials
            against that group's spoofs, and groups holding no spoof (e.g. the bona fide rows' `-` attack) are
            left out. Set False for conditions that apply to both classes (codec, channel, language): a group is
            then its own bona fide trials against its own spoofs, and groups missing a class are left out
            with a warning.
        n_resamples: when positive, each group's 95 % bootstrap EER interval (`bootstrap_eer_interval`) is added,
            so small groups are not over-read.
    """
    scores = _as_scores(scores, "trial")
    is_bonafide = _bonafide_mask(labels, scores.size)
    bonafide_all = scores[is_bonafide]
    if pool_bonafide and bonafide_all.size == 0:
        raise ValueError("no bona fide scores: every group is scored against all bona fide trials")
    groups = np.asarray(groups).astype(str).reshape(-1)
    if groups.shape != scores.shape:
        raise ValueError(f"got {scores.size} scores but {groups.size} group names")
    names, group_index = np.unique(groups, return_inverse=True)
    results: dict[str, GroupEer] = {}
    for index, name in enumerate(names.tolist()):
        in_group = group_index == index
        spoof = scores[in_group & ~is_bonafide]
        bonafide = bonafide_all if pool_bonafide else scores[in_group & is_bonafide]
        if spoof.size == 0 or bonafide.size == 0:
            if not pool_bonafide:
                logger.warning("group %r has %d bona fide, %d spoof trials: no EER", name, bonafide.size, spoof.size)
            continue
        eer = compute_eer(bonafide, spoof)
        interval = bootstrap_eer_interval(bonafide, spoof, n_resamples, seed=seed) if n_resamples > 0 else None
        results[name] = GroupEer(eer.eer, eer.threshold, int(bonafide.size), int(spoof.size), interval)
    return results


def load_metric(**kwargs) -> "evaluate.EvaluationModule":
    """The `evaluate` metric of this module (EER, minDCF, actDCF, CLLR), loaded from the local module file."""
    import evaluate

    return evaluate.load(str(METRIC_MODULE_PATH), **kwargs)
