"""Score calibration and fusion by prior-weighted logistic regression, as the BOSARIS toolkit and WeDefense's
`logits_to_llr` do: find weights `w` and an offset `b` such that `llr = scores @ w + b` is a log-likelihood ratio
`log p(scores | bona fide) / p(scores | spoof)`.

Calibrating one system is fusing one system: `fit_llr_fusion(scores[:, None], labels)` gives the scale and offset
of the affine calibration a model applies to its log-odds (`Nes2NetConfig.calibration_scale / _offset`); with
several columns it fuses systems.

The objective is the cross-entropy of `sigmoid(llr + logit(target_prior))` where bona fide and spoof trials weigh
`target_prior` and `1 - target_prior` in total, whatever their counts (the quantity CLLR measures at prior 0.5). A
tiny ridge on `w` keeps the weights finite when the dev scores separate the classes perfectly.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

RIDGE = 1e-6
MAX_ITERATIONS = 100
TOLERANCE = 1e-10


def _objective(parameters: np.ndarray, design: np.ndarray, targets: np.ndarray, weights: np.ndarray,
               prior_logit: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted cross-entropy (plus ridge), its gradient and Hessian at `parameters` = `[w..., b]`."""
    activation = design @ parameters + prior_logit
    # log(1 + exp(-y a)) with y = +-1, computed stably.
    signs = 2.0 * targets - 1.0
    loss = float(weights @ np.logaddexp(0.0, -signs * activation))
    probability = expit(activation)
    gradient = design.T @ (weights * (probability - targets))
    hessian = (design * (weights * probability * (1.0 - probability))[:, None]).T @ design
    ridge = np.full(len(parameters), RIDGE)
    ridge[-1] = 0.0  # the offset is not penalised
    loss += 0.5 * float(ridge @ parameters**2)
    return loss, gradient + ridge * parameters, hessian + np.diag(ridge)


def fit_llr_fusion(scores: np.ndarray, labels: np.ndarray, target_prior: float = 0.5) -> tuple[np.ndarray, float]:
    """Fit `llr = scores @ weights + offset` by prior-weighted logistic regression (Newton's method).

    Args:
        scores: `(n_trials, n_systems)` scores, higher meaning more bona fide (one column calibrates one system).
        labels: `(n_trials,)` 1 for bona fide, 0 for spoof; both classes must be present.
        target_prior: the prior of bona fide speech the regression is weighted for (0.5: equal weight per class).

    Returns:
        `(weights, offset)`: `weights` `(n_systems,)` and the scalar `offset`.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(f"scores must be (n_trials, n_systems) and labels (n_trials,), got {scores.shape} and "
                         f"{labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 1 (bona fide) or 0 (spoof)")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    if not 0.0 < target_prior < 1.0:
        raise ValueError(f"target_prior must be in (0, 1), got {target_prior}")
    targets = labels.astype(np.float64)
    num_bonafide = targets.sum()
    if num_bonafide == 0 or num_bonafide == len(targets):
        raise ValueError("calibration needs both bona fide and spoof trials")
    weights = np.where(targets == 1, target_prior / num_bonafide, (1.0 - target_prior) / (len(targets) - num_bonafide))
    prior_logit = float(np.log(target_prior / (1.0 - target_prior)))
    design = np.concatenate([scores, np.ones((len(scores), 1))], axis=1)
    parameters = np.zeros(design.shape[1])
    parameters[:-1] = 1.0 / scores.shape[1]  # start from the mean of the systems
    loss, gradient, hessian = _objective(parameters, design, targets, weights, prior_logit)
    for _ in range(MAX_ITERATIONS):
        step = np.linalg.solve(hessian, gradient)
        size = 1.0
        while True:  # backtracking: Newton steps can overshoot far from the optimum
            candidate = parameters - size * step
            candidate_loss, candidate_gradient, candidate_hessian = _objective(
                candidate, design, targets, weights, prior_logit)
            if candidate_loss <= loss or size < 1e-8:
                break
            size /= 2
        converged = loss - candidate_loss < TOLERANCE
        parameters, loss, gradient, hessian = candidate, candidate_loss, candidate_gradient, candidate_hessian
        if converged:
            break
    return parameters[:-1], float(parameters[-1])


def calibrate_model(model, log_odds: np.ndarray, labels: np.ndarray, target_prior: float = 0.5) -> tuple[float, float]:
    """Fit the score calibration on `log_odds` `(n_trials,)` the model gave (with its current calibration) for trials
    of `labels` `(n_trials,)`, and fold it into `model.config` (`calibration_scale`, `calibration_offset`): the new
    log-odds are `w * current + c`. Returns the new `(scale, offset)`.

    Raises `ValueError` when the fit is not increasing (the scores rank spoof above bona fide: nothing to calibrate).
    """
    (weight,), offset = fit_llr_fusion(np.asarray(log_odds, dtype=np.float64)[:, None], labels, target_prior)
    if not weight > 0:
        raise ValueError(f"the scores rank spoof above bona fide (fitted scale {weight:.3g}): cannot calibrate them")
    config = model.config
    config.calibration_scale = float(weight * config.calibration_scale)
    config.calibration_offset = float(weight * config.calibration_offset + offset)
    return config.calibration_scale, config.calibration_offset
