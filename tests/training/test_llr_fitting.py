"""`training.llr_fitting.fit_llr_fusion`: logistic-regression calibration and fusion to log-likelihood ratios."""

import re

import numpy as np
import pytest

from training.llr_fitting import fit_llr_fusion


def gaussian_trials(rng, n_bonafide, n_spoof, mean_bonafide=2.0, mean_spoof=-1.0, std=1.5):
    """Scores whose true LLR is known: equal-variance Gaussians give `llr = a x + b` exactly."""
    scores = np.concatenate([rng.normal(mean_bonafide, std, n_bonafide), rng.normal(mean_spoof, std, n_spoof)])
    labels = np.concatenate([np.ones(n_bonafide, int), np.zeros(n_spoof, int)])
    scale = (mean_bonafide - mean_spoof) / std**2
    offset = -(mean_bonafide**2 - mean_spoof**2) / (2 * std**2)
    return scores, labels, scale, offset


def weighted_cross_entropy(llr, labels, prior=0.5):
    """The calibration objective by its definition: mean log-loss per class, classes weighted by the prior."""
    activation = llr + np.log(prior / (1 - prior))
    bonafide = np.mean(np.log1p(np.exp(-activation[labels == 1])))
    spoof = np.mean(np.log1p(np.exp(activation[labels == 0])))
    return prior * bonafide + (1 - prior) * spoof


def test_recovers_the_true_llr_of_gaussian_scores_whatever_the_class_balance():
    rng = np.random.default_rng(0)
    scores, labels, scale, offset = gaussian_trials(rng, 20_000, 80_000)
    (weight,), fitted_offset = fit_llr_fusion(scores[:, None], labels)
    assert weight == pytest.approx(scale, rel=0.03)
    assert fitted_offset == pytest.approx(offset, abs=0.05)


def test_the_fit_is_the_minimum_of_the_prior_weighted_cross_entropy():
    rng = np.random.default_rng(1)
    scores, labels, *_ = gaussian_trials(rng, 300, 700)
    second = 0.5 * scores + rng.normal(0, 1.0, len(scores))  # a second, weaker and correlated system
    fused = np.stack([scores, second], axis=1)
    for prior in (0.5, 0.05):
        weights, offset = fit_llr_fusion(fused, labels, target_prior=prior)
        best = weighted_cross_entropy(fused @ weights + offset, labels, prior)
        for delta in ([0.05, 0, 0], [0, 0.05, 0], [0, 0, 0.05], [-0.05, 0, 0], [0, -0.05, 0], [0, 0, -0.05]):
            moved = fused @ (weights + delta[:2]) + offset + delta[2]
            assert weighted_cross_entropy(moved, labels, prior) > best


def test_duplicating_one_class_changes_nothing_and_separable_scores_stay_finite():
    rng = np.random.default_rng(2)
    scores, labels, *_ = gaussian_trials(rng, 200, 200)
    weights, offset = fit_llr_fusion(scores[:, None], labels)
    spoof = labels == 0
    doubled_scores = np.concatenate([scores, scores[spoof]])[:, None]
    doubled_labels = np.concatenate([labels, labels[spoof]])
    doubled_weights, doubled_offset = fit_llr_fusion(doubled_scores, doubled_labels)
    np.testing.assert_allclose(doubled_weights, weights, rtol=1e-6)
    assert doubled_offset == pytest.approx(offset, abs=1e-6)
    separable_weights, separable_offset = fit_llr_fusion(np.array([[-2.0], [-1.0], [1.0], [2.0]]), np.array([0, 0, 1, 1]))
    assert np.isfinite(separable_weights).all() and separable_weights[0] > 0 and np.isfinite(separable_offset)


@pytest.mark.parametrize(("scores", "labels", "message"), [
    (np.zeros((3, 1)), np.ones(3, int), "both bona fide and spoof"),
    (np.zeros(3), np.array([0, 1, 1]), "n_trials, n_systems"),
    (np.array([[0.0], [np.nan]]), np.array([0, 1]), "finite"),
    (np.zeros((2, 1)), np.array([0, 2]), "1 (bona fide) or 0"),
])
def test_bad_inputs_are_refused(scores, labels, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        fit_llr_fusion(scores, labels)
