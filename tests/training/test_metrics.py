"""Tests of training.metrics against hand-worked cases, sklearn and direct per-threshold formula evaluation."""

import logging
import math
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from training.metrics import (
    METRIC_MODULE_PATH,
    AsvErrorRates,
    DcfCosts,
    TDCFCosts2019,
    TDCFCosts2021,
    asv_error_rates,
    breakdown,
    compute_act_dcf,
    compute_cllr,
    compute_det_curve,
    compute_eer,
    compute_metrics,
    compute_min_tdcf_2019,
    compute_min_tdcf_2021,
    load_metric,
    min_dcf_from_det_curve,
    split_by_label,
)


def random_trials(seed: int, n_bonafide: int = 300, n_spoof: int = 700, ties: bool = False):
    rng = np.random.default_rng(seed)
    bonafide = rng.normal(1.5, 1.0, n_bonafide)
    spoof = rng.normal(-1.0, 1.5, n_spoof)
    if ties:  # coarse quantisation makes many scores equal across and within classes
        bonafide, spoof = np.round(bonafide * 2) / 2, np.round(spoof * 2) / 2
    return bonafide, spoof


def candidate_thresholds(bonafide: np.ndarray, spoof: np.ndarray) -> list[float]:
    return sorted(set(bonafide.tolist()) | set(spoof.tolist())) + [math.inf]


def rates_at(bonafide: np.ndarray, spoof: np.ndarray, threshold: float) -> tuple[float, float]:
    """(P_miss, P_fa) counted trial by trial: accepted means score >= threshold."""
    misses = sum(1 for score in bonafide if score < threshold)
    false_alarms = sum(1 for score in spoof if score >= threshold)
    return misses / len(bonafide), false_alarms / len(spoof)


# --- DET curve and EER: hand-worked cases ---


def test_det_curve_with_ties_counts_equal_scores_as_accepted():
    curve = compute_det_curve([1, 2, 2, 3], [0, 2, 2])
    np.testing.assert_array_equal(curve.thresholds, [0, 1, 2, 3, np.inf])
    np.testing.assert_allclose(curve.miss_rates, [0, 0, 1 / 4, 3 / 4, 1])
    np.testing.assert_allclose(curve.false_alarm_rates, [1, 2 / 3, 2 / 3, 0, 0])


def test_eer_with_ties_is_mean_of_rates_at_closest_point():
    # |P_miss - P_fa| along the curve above: 1, 2/3, 5/12, 3/4, 1 -> the point at threshold 2.
    eer, threshold = compute_eer([1, 2, 2, 3], [0, 2, 2])
    assert eer == pytest.approx((1 / 4 + 2 / 3) / 2)
    assert threshold == 2.0


def test_all_equal_scores_give_eer_one_half():
    eer, threshold = compute_eer([0.3, 0.3], [0.3, 0.3, 0.3])
    assert eer == 0.5
    assert threshold == 0.3


def test_perfectly_separated_scores():
    assert compute_eer([3.0, 4.0, 5.0], [0.0, 1.0, 2.0]) == (0.0, 3.0)
    assert compute_eer([0.0, 1.0, 2.0], [3.0, 4.0, 5.0]).eer == 1.0


def test_eer_threshold_operating_point_is_reproducible():
    bonafide, spoof = random_trials(0, ties=True)
    eer, threshold = compute_eer(bonafide, spoof)
    p_miss, p_fa = rates_at(bonafide, spoof, threshold)
    assert eer == pytest.approx((p_miss + p_fa) / 2)
    assert math.isfinite(threshold)


@pytest.mark.parametrize(
    "bonafide, spoof, message",
    [
        ([], [0.0, 1.0], "no bona fide scores"),
        ([0.0, 1.0], [], "no spoof scores"),
        ([0.0, float("nan")], [1.0], "1 NaN"),
        ([0.0], [1.0, float("inf")], "1 infinite"),
    ],
)
def test_invalid_inputs_raise(bonafide, spoof, message):
    for metric in (compute_det_curve, compute_eer, compute_act_dcf, compute_cllr):
        with pytest.raises(ValueError, match=message):
            metric(bonafide, spoof)


def test_invalid_labels_raise():
    with pytest.raises(ValueError, match="labels must be 1"):
        split_by_label([0.1, 0.2], [1, 2])
    with pytest.raises(ValueError, match="3 scores but 2 labels"):
        compute_metrics([0.1, 0.2, 0.3], [1, 0])
    with pytest.raises(ValueError, match="no spoof scores"):
        compute_metrics([0.1, 0.2], [1, 1])


# --- DET curve and EER against sklearn and the interpolated crossing ---


@pytest.mark.parametrize("seed, ties", [(1, False), (2, False), (3, True), (4, True)])
def test_det_curve_matches_sklearn_roc_curve(seed, ties):
    bonafide, spoof = random_trials(seed, ties=ties)
    scores = np.concatenate([bonafide, spoof])
    labels = np.r_[np.ones(bonafide.size), np.zeros(spoof.size)]
    fpr, tpr, sk_thresholds = roc_curve(labels, scores, drop_intermediate=False)
    # sklearn lists thresholds descending, starting with +inf (reject all); ours ascend and end there.
    fpr, tpr, sk_thresholds = fpr[::-1], tpr[::-1], sk_thresholds[::-1]
    curve = compute_det_curve(bonafide, spoof)
    np.testing.assert_array_equal(curve.thresholds, sk_thresholds)
    np.testing.assert_allclose(curve.miss_rates, 1 - tpr, atol=1e-12)
    np.testing.assert_allclose(curve.false_alarm_rates, fpr, atol=1e-12)

    # The same EER rule on sklearn's points, with rates rebuilt from counts so both sides are bit-identical.
    sk_miss = (bonafide.size - np.rint(tpr * bonafide.size)) / bonafide.size
    sk_fa = np.rint(fpr * spoof.size) / spoof.size
    index = np.argmin(np.abs(sk_miss - sk_fa))
    assert compute_eer(bonafide, spoof) == ((sk_miss[index] + sk_fa[index]) / 2, sk_thresholds[index])


def test_eer_equals_the_one_trial_at_a_time_curve_without_ties():
    # The official packages' curve: reject the i lowest-scored trials, i = 0..n.
    bonafide, spoof = random_trials(14)
    scores = np.concatenate([bonafide, spoof])
    order = np.argsort(scores)
    bonafide_rejected = np.r_[0, np.cumsum(order < bonafide.size)]
    spoof_rejected = np.arange(scores.size + 1) - bonafide_rejected
    miss = bonafide_rejected / bonafide.size
    false_alarm = (spoof.size - spoof_rejected) / spoof.size
    index = np.argmin(np.abs(miss - false_alarm))
    eer, threshold = compute_eer(bonafide, spoof)
    assert eer == (miss[index] + false_alarm[index]) / 2
    assert threshold == scores[order[index]]  # the lowest accepted score (the official one is the highest rejected)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_eer_within_one_step_of_interpolated_crossing(seed):
    bonafide, spoof = random_trials(seed)
    scores = np.concatenate([bonafide, spoof])
    labels = np.r_[np.ones(bonafide.size), np.zeros(spoof.size)]
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1 - tpr
    # Linear interpolation of the crossing of P_fa and P_miss between the two points that bracket it.
    after = np.flatnonzero(fnr <= fpr)[0]
    before = after - 1
    d_before, d_after = fpr[before] - fnr[before], fpr[after] - fnr[after]
    weight = d_before / (d_before - d_after)
    crossing = fpr[before] + weight * (fpr[after] - fpr[before])
    step = 1 / min(bonafide.size, spoof.size)
    assert abs(compute_eer(bonafide, spoof).eer - crossing) <= step


def test_eer_is_exact_for_large_float32_scores():
    bonafide, spoof = random_trials(8, 20_000, 30_000)
    eer32 = compute_eer(bonafide.astype(np.float32), spoof.astype(np.float32))
    curve = compute_det_curve(bonafide.astype(np.float32), spoof.astype(np.float32))
    assert curve.thresholds.dtype == np.float64
    assert 0.05 < eer32.eer < 0.25
    assert abs(eer32.eer - compute_eer(bonafide, spoof).eer) <= 2 / 20_000


# --- ASVspoof 5 minDCF, actDCF, CLLR ---


def normalised_dcf(p_miss: float, p_fa: float, costs: DcfCosts) -> float:
    cost = costs.c_miss * (1 - costs.p_spoof) * p_miss + costs.c_fa * costs.p_spoof * p_fa
    return cost / min(costs.c_miss * (1 - costs.p_spoof), costs.c_fa * costs.p_spoof)


@pytest.mark.parametrize("costs", [DcfCosts(), DcfCosts(p_spoof=0.5, c_miss=1, c_fa=1)])
@pytest.mark.parametrize("ties", [False, True])
def test_min_dcf_equals_minimum_over_all_thresholds(costs, ties):
    bonafide, spoof = random_trials(9, 60, 90, ties=ties)
    costs_per_threshold = {
        t: normalised_dcf(*rates_at(bonafide, spoof, t), costs) for t in candidate_thresholds(bonafide, spoof)
    }
    expected = min(costs_per_threshold.values())
    result = min_dcf_from_det_curve(compute_det_curve(bonafide, spoof), costs)
    assert result.cost == pytest.approx(expected, abs=1e-12)
    assert costs_per_threshold[result.threshold] == pytest.approx(expected, abs=1e-12)
    # no threshold between (or beyond) the scores does better
    for threshold in np.linspace(-6, 6, 97):
        assert normalised_dcf(*rates_at(bonafide, spoof, threshold), costs) >= result.cost - 1e-12


def test_act_dcf_by_hand():
    costs = DcfCosts()
    assert costs.beta == pytest.approx(1.9)
    assert costs.bayes_threshold == pytest.approx(-math.log(1.9))  # -0.6419
    # bona fide -0.7 is missed (1/4); spoofs -0.6419 (on the threshold: accepted) and 0.1 are false alarms (2/5).
    bonafide = [-0.7, 0.0, 1.0, 2.0]
    spoof = [-3.0, -2.0, -math.log(1.9), 0.1, -1.0]
    expected = (1 * 0.95 * (1 / 4) + 10 * 0.05 * (2 / 5)) / 0.5
    result = compute_act_dcf(bonafide, spoof)
    assert result.cost == pytest.approx(expected)
    assert result.threshold == pytest.approx(-math.log(1.9))
    assert result.cost >= min_dcf_from_det_curve(compute_det_curve(bonafide, spoof)).cost


def test_cllr_matches_formula_and_is_stable():
    bonafide = np.array([2.0, 0.5, -1.0])
    spoof = np.array([-3.0, 0.2])
    expected = 0.5 * (np.mean(np.log2(1 + np.exp(-bonafide))) + np.mean(np.log2(1 + np.exp(spoof))))
    assert compute_cllr(bonafide, spoof) == pytest.approx(expected, rel=1e-12)
    assert compute_cllr([0.0, 0.0], [0.0]) == pytest.approx(1.0)
    # huge well-separated scores cost ~0 and huge wrong ones cost s/ln 2 per trial, without overflow
    assert compute_cllr([1000.0], [-1000.0]) == pytest.approx(0.0, abs=1e-300)
    assert compute_cllr([-1000.0], [1000.0]) == pytest.approx(1000.0 / math.log(2))


def test_compute_metrics_combines_the_single_metrics():
    bonafide, spoof = random_trials(10)
    scores = np.concatenate([spoof, bonafide])
    labels = np.r_[np.zeros(spoof.size, int), np.ones(bonafide.size, int)]
    metrics = compute_metrics(scores, labels)
    assert (metrics["eer"], metrics["eer_threshold"]) == compute_eer(bonafide, spoof)
    assert metrics["min_dcf"] == min_dcf_from_det_curve(compute_det_curve(bonafide, spoof)).cost
    assert metrics["act_dcf"] == compute_act_dcf(bonafide, spoof).cost
    assert metrics["cllr"] == compute_cllr(bonafide, spoof)


# --- t-DCF ---


def test_asv_error_rates_by_hand():
    rates = asv_error_rates([3.0, 2.0, 0.5], [0.0, 1.0, 2.5], [2.0, 0.0, 1.5, 3.5], threshold=1.5)
    assert (rates.p_miss, rates.p_fa, rates.p_miss_spoof) == (1 / 3, 1 / 3, 1 / 4)
    assert rates.p_fa_spoof == 3 / 4
    # default threshold: the ASV EER threshold of targets vs non-targets
    default = asv_error_rates([3.0, 2.0, 0.5], [0.0, 1.0, 2.5], [1.0])
    assert default.threshold == compute_eer([3.0, 2.0, 0.5], [0.0, 1.0, 2.5]).threshold


def tdcf_2019_at(p_miss_cm: float, p_fa_cm: float, asv: AsvErrorRates, costs: TDCFCosts2019) -> float:
    c1 = costs.p_tar * (costs.c_miss_cm - costs.c_miss_asv * asv.p_miss) - costs.p_non * costs.c_fa_asv * asv.p_fa
    c2 = costs.c_fa_cm * costs.p_spoof * (1 - asv.p_miss_spoof)
    return (c1 * p_miss_cm + c2 * p_fa_cm) / min(c1, c2)


def tdcf_2021_at(p_miss_cm: float, p_fa_cm: float, asv: AsvErrorRates, costs: TDCFCosts2021) -> float:
    c0 = costs.p_tar * costs.c_miss * asv.p_miss + costs.p_non * costs.c_fa * asv.p_fa
    c1 = costs.p_tar * costs.c_miss - c0
    c2 = costs.p_spoof * costs.c_fa_spoof * asv.p_fa_spoof
    return (c0 + c1 * p_miss_cm + c2 * p_fa_cm) / (c0 + min(c1, c2))


@pytest.mark.parametrize("ties", [False, True])
def test_min_tdcf_equals_minimum_of_per_threshold_formula(ties):
    bonafide, spoof = random_trials(11, 50, 80, ties=ties)
    rng = np.random.default_rng(12)
    asv = asv_error_rates(rng.normal(3, 1, 200), rng.normal(-2, 1, 300), rng.normal(1.5, 1.5, 250))
    assert 0 < asv.p_miss < 0.2 and 0 < asv.p_miss_spoof < 1
    for compute, formula, costs in (
        (compute_min_tdcf_2019, tdcf_2019_at, TDCFCosts2019()),
        (compute_min_tdcf_2021, tdcf_2021_at, TDCFCosts2021()),
    ):
        per_threshold = {
            t: formula(*rates_at(bonafide, spoof, t), asv, costs) for t in candidate_thresholds(bonafide, spoof)
        }
        result = compute(bonafide, spoof, asv, costs)
        assert result.cost == pytest.approx(min(per_threshold.values()), abs=1e-12)
        assert per_threshold[result.threshold] == pytest.approx(result.cost, abs=1e-12)


def test_tdcf_of_perfect_cm_with_perfect_asv():
    perfect_asv = AsvErrorRates(threshold=0.0, p_miss=0.0, p_fa=0.0, p_miss_spoof=0.0)
    assert compute_min_tdcf_2019([1.0, 2.0], [-1.0], perfect_asv).cost == 0.0
    assert compute_min_tdcf_2021([1.0, 2.0], [-1.0], perfect_asv).cost == 0.0
    # an uninformative CM costs the best of "accept all" / "reject all": 1.0 after normalisation
    assert compute_min_tdcf_2019([0.0], [0.0], perfect_asv).cost == pytest.approx(1.0)
    assert compute_min_tdcf_2021([0.0], [0.0], perfect_asv).cost == pytest.approx(1.0)


def test_tdcf_undefined_for_asv_that_rejects_every_spoof():
    asv = AsvErrorRates(threshold=0.0, p_miss=0.01, p_fa=0.01, p_miss_spoof=1.0)
    with pytest.raises(ValueError, match="t-DCF undefined"):
        compute_min_tdcf_2019([1.0], [0.0], asv)
    with pytest.raises(ValueError, match="t-DCF undefined"):
        compute_min_tdcf_2021([1.0], [0.0], AsvErrorRates(threshold=0.0, p_miss=1.0, p_fa=1.0, p_miss_spoof=0.0))


# --- per-group breakdown ---


def test_breakdown_by_attack_pools_all_bonafide():
    scores = np.array([2.0, 1.5, 0.2, -1.0, 0.5, 1.8, -2.0, 0.0])
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    attacks = np.array(["-", "-", "-", "A01", "A01", "A02", "A02", "A02"])
    result = breakdown(scores, labels, attacks)
    assert list(result) == ["A01", "A02"]  # the bona fide rows' "-" group holds no spoof
    for attack in ("A01", "A02"):
        expected = compute_eer(scores[labels == 1], scores[attacks == attack])
        assert (result[attack].eer, result[attack].threshold) == expected
        assert result[attack].n_bonafide == 3
    assert result["A02"].n_spoof == 3


def test_breakdown_by_condition_matches_both_classes(caplog):
    scores = np.array([2.0, 1.0, -1.0, 0.5, 0.3, -0.2, 3.0])
    labels = np.array([1, 1, 0, 0, 1, 0, 1])
    codecs = ["mp3", "mp3", "mp3", "mp3", "alaw", "alaw", "opus"]
    with caplog.at_level(logging.WARNING, logger="training.metrics"):
        result = breakdown(scores, labels, codecs, pool_bonafide=False)
    assert sorted(result) == ["alaw", "mp3"]
    assert result["mp3"].eer == compute_eer([2.0, 1.0], [-1.0, 0.5]).eer == 0.0
    assert result["alaw"] == (0.0, 0.3, 1, 1, None)
    assert "'opus' has 1 bona fide, 0 spoof" in caplog.text


def test_breakdown_rejects_bad_inputs():
    with pytest.raises(ValueError, match="3 scores but 2 group names"):
        breakdown([0.1, 0.2, 0.3], [1, 0, 0], ["a", "b"])
    with pytest.raises(ValueError, match="1 NaN"):
        breakdown([0.1, float("nan")], [1, 0], ["a", "b"])
    with pytest.raises(ValueError, match="no bona fide scores"):
        breakdown([0.1, 0.2], [0, 0], ["a", "b"])


# --- the `evaluate` module ---


@pytest.mark.slow
def test_evaluate_module_gives_the_same_numbers():
    import evaluate

    bonafide, spoof = random_trials(13, 200, 400, ties=True)
    scores = np.concatenate([bonafide, spoof])
    labels = np.r_[np.ones(bonafide.size, int), np.zeros(spoof.size, int)]
    expected = compute_metrics(scores, labels)
    for metric in (evaluate.load(str(METRIC_MODULE_PATH), keep_in_memory=True), load_metric(keep_in_memory=True)):
        assert metric.compute(predictions=scores.tolist(), references=labels.tolist()) == expected
        # the cached copy of the module uses this package's implementation, not one of its own
        assert sys.modules[type(metric).__module__].compute_metrics is compute_metrics
    batched = load_metric(keep_in_memory=True)
    for start in range(0, scores.size, 128):
        batched.add_batch(predictions=scores[start : start + 128], references=labels[start : start + 128])
    assert batched.compute() == expected
