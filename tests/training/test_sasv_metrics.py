"""Tests of the SASV a-DCF, minCLLR and bootstrap intervals in training.metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.metrics import (
    ADCFCosts,
    AsvErrorRates,
    bootstrap_eer_interval,
    breakdown,
    compute_cllr,
    compute_eer,
    compute_min_a_dcf,
    compute_min_cllr,
    compute_min_tandem_a_dcf,
)


def test_a_dcf_costs_are_those_of_asvspoof5_track2():
    costs = ADCFCosts()
    assert (costs.p_tar, costs.p_non, costs.p_spoof) == (0.9, 0.05, 0.05)
    assert (costs.c_miss, costs.c_fa_non, costs.c_fa_spoof) == (1.0, 10.0, 20.0)
    # all-reject costs C_miss P_tar = 0.9, all-accept C_fa_non P_non + C_fa_spoof P_spoof = 0.5 + 1.0 = 1.5
    assert costs.normaliser == pytest.approx(0.9)


def test_min_a_dcf_by_hand():
    # SASV scores, accepted when score >= t. Weights: C_miss P_tar = 0.9, C_fa_non P_non = 0.5,
    # C_fa_spoof P_spoof = 1.0; normaliser min(0.9, 1.5) = 0.9.
    #   t      P_miss  P_fa_non  P_fa_spoof   cost                          normalised
    #   -1     0       1         1            0.5 + 1.0 = 1.5               1.667
    #   0      0       1         1/2          0.5 + 0.5 = 1.0               1.111
    #   1      0       1/2       1/2          0.25 + 0.5 = 0.75             0.833
    #   2      1/2     1/2       1/2          0.45 + 0.25 + 0.5 = 1.2       1.333
    #   2.5    1/2     0         1/2          0.45 + 0.5 = 0.95             1.056
    #   3      1/2     0         0            0.45                          0.5    <- minimum
    #   inf    1       0         0            0.9                           1.0
    result = compute_min_a_dcf(target_scores=[3.0, 1.0], nontarget_scores=[2.0, 0.0], spoof_scores=[2.5, -1.0])
    assert result.cost == pytest.approx(0.5)
    assert result.threshold == 3.0


def test_min_a_dcf_of_a_perfect_system_is_zero_and_of_a_useless_one_is_one():
    assert compute_min_a_dcf([5.0, 6.0], [0.0, 1.0], [-1.0, 2.0]).cost == 0.0
    # every class with the same score: the best threshold rejects everything, cost 0.9 / 0.9
    assert compute_min_a_dcf([1.0], [1.0], [1.0]).cost == pytest.approx(1.0)


def test_min_tandem_a_dcf_by_hand():
    # fixed ASV: P_miss_asv 0.1, P_fa_asv 0.2, P_fa_spoof_asv = 1 - 0.4 = 0.6.
    # CM bona fide [1, 2], spoof [0, 1.5]; A_cm = CM accepts bona fide, F_cm = CM accepts spoof.
    # cost = 0.9 (1 - 0.9 A_cm) + 0.5 * 0.2 A_cm + 1.0 * 0.6 F_cm
    #   t     A_cm  F_cm   cost
    #   0     1     1      0.09 + 0.1 + 0.6 = 0.79
    #   1     1     1/2    0.09 + 0.1 + 0.3 = 0.49   <- minimum, normalised 0.49 / 0.9 = 0.5444
    #   1.5   1/2   1/2    0.495 + 0.05 + 0.3 = 0.845
    #   2     1/2   0      0.495 + 0.05 = 0.545
    #   inf   0     0      0.9
    asv = AsvErrorRates(threshold=0.0, p_miss=0.1, p_fa=0.2, p_miss_spoof=0.4)
    result = compute_min_tandem_a_dcf([1.0, 2.0], [0.0, 1.5], asv)
    assert result.cost == pytest.approx(0.49 / 0.9)
    assert result.threshold == 1.0


def test_min_cllr_by_hand():
    # sorted scores 0 (spoof), 1 (bona), 2 (spoof), 3 (bona); PAV of the labels 0 1 0 1 pools the middle pair:
    # P(bona | score) = 0, 1/2, 1/2, 1. Bona fide bits -log2(1/2), -log2(1) -> mean 1/2; spoof bits
    # -log2(1 - 0), -log2(1 - 1/2) -> mean 1/2; minCLLR = (1/2 + 1/2) / 2 = 0.5.
    assert compute_min_cllr([1.0, 3.0], [0.0, 2.0]) == pytest.approx(0.5)
    assert compute_min_cllr([2.0, 3.0], [0.0, 1.0]) == pytest.approx(0.0)  # separable: perfectly calibratable


def test_min_cllr_ignores_miscalibration_that_cllr_pays_for():
    rng = np.random.default_rng(0)
    bonafide, spoof = rng.normal(1.0, 1.0, 400), rng.normal(-1.0, 1.0, 600)
    well = compute_min_cllr(bonafide, spoof)
    assert compute_min_cllr(10 * bonafide + 7, 10 * spoof + 7) == pytest.approx(well)  # monotonic maps: same
    assert compute_cllr(10 * bonafide + 7, 10 * spoof + 7) > compute_cllr(bonafide, spoof) + 0.5
    assert well <= compute_cllr(bonafide, spoof)


def test_bootstrap_interval_holds_the_eer_and_narrows_with_more_trials():
    rng = np.random.default_rng(1)

    def trials(n):
        return rng.normal(1.0, 1.0, n), rng.normal(-1.0, 1.0, n)

    small, large = trials(30), trials(3000)
    low, high = bootstrap_eer_interval(*small, n_resamples=300, seed=0)
    assert low <= compute_eer(*small).eer <= high
    large_low, large_high = bootstrap_eer_interval(*large, n_resamples=100, seed=0)
    assert (large_high - large_low) < (high - low) / 3  # width ~ 1 / sqrt(n): 10x the trials, ~1/3.2 the width
    # the true EER of two unit normals 2 apart is Phi(-1) = 0.1587; the large interval covers it
    assert large_low < 0.5 * math.erfc(1 / math.sqrt(2)) < large_high
    assert bootstrap_eer_interval(*small, n_resamples=300, seed=0) == (low, high)
    assert bootstrap_eer_interval([2.0, 3.0], [0.0, 1.0], n_resamples=50) == (0.0, 0.0)
    lonely_low, lonely_high = bootstrap_eer_interval([0.5], small[1], n_resamples=50)  # one bona fide trial
    assert 0.0 <= lonely_low <= compute_eer([0.5], small[1]).eer <= lonely_high <= 1.0


def test_breakdown_adds_intervals_when_asked():
    scores = np.array([2.0, 1.5, 3.0, 0.0, 1.0, -1.0, 2.5])
    labels = np.array([1, 1, 1, 0, 0, 0, 0])
    attacks = np.array(["-", "-", "-", "A1", "A1", "A2", "A2"])
    plain = breakdown(scores, labels, attacks)
    assert plain["A1"].eer_ci is None
    with_ci = breakdown(scores, labels, attacks, n_resamples=200, seed=3)
    assert with_ci["A1"].eer == plain["A1"].eer == 0.0
    assert with_ci["A1"].eer_ci == (0.0, 0.0)  # every resample stays separable
    low, high = with_ci["A2"].eer_ci
    assert low <= with_ci["A2"].eer <= high and high > low
