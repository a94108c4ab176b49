"""From logits to the scores anti-spoofing tools and users read, and the one decision rule. Higher always means more
bona fide.

The model's forward pass already applies its score calibration (`Nes2NetScoreCalibration`), so its logits are
calibrated and the decision is the argmax of the logits, `pipeline`'s top label:

- `bonafide_score`: the paper's score, written to ASVspoof score files: the bona fide logit (`logits[:, 1]` with
  two logits, the single logit otherwise).
- `log_odds`: `log p(bonafide) / p(spoof)` under the model (`logits[:, 1] - logits[:, 0]`, or the single logit), the
  LLR-like score for minDCF / actDCF / CLLR.
- `bonafide_probability`: `sigmoid(log_odds)`, the softmax probability of the bona fide class (what `pipeline`
  reports for `bonafide`); `odds_probability` is the same sigmoid on log-odds already computed (numbers or arrays).
- `is_bonafide` / `verdict`: bona fide when the log-odds exceed the threshold, `DECISION_THRESHOLD` = 0 unless a user
  asks for another operating point: exactly the argmax of the logits (a tie goes to class 0, spoof).
"""

from __future__ import annotations

import numpy as np
import torch

from .configuration_nes2net import BONAFIDE_LABEL, SPOOF_LABEL, Nes2NetConfig

DECISION_THRESHOLD = 0.0


def bonafide_score(logits: torch.Tensor) -> torch.Tensor:
    """`(batch, num_labels)` -> `(batch,)` bona fide logit."""
    return logits[:, -1]


def log_odds(logits: torch.Tensor) -> torch.Tensor:
    """`(batch, num_labels)` -> `(batch,)` log p(bonafide) / p(spoof)."""
    if logits.shape[-1] == 1:
        return logits[:, 0]
    return logits[:, 1] - logits[:, 0]


def bonafide_probability(logits: torch.Tensor) -> torch.Tensor:
    """`(batch, num_labels)` -> `(batch,)` probability of bona fide speech."""
    return torch.sigmoid(log_odds(logits))


def odds_probability(odds: float | np.ndarray) -> float | np.ndarray:
    """`sigmoid(odds)`: the probability of bona fide speech for log-odds `odds` (a number or an array), computed as
    `(1 + tanh(odds / 2)) / 2`, which never overflows."""
    probability = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(odds, np.float64)))
    return float(probability) if np.ndim(probability) == 0 else probability


def is_bonafide(odds: float | np.ndarray, threshold: float = DECISION_THRESHOLD) -> bool | np.ndarray:
    """The decision on calibrated log-odds (a number or an array): bona fide when they exceed `threshold`."""
    return odds > threshold


def verdict(odds: float, threshold: float = DECISION_THRESHOLD) -> str:
    """`"bonafide"` or `"spoof"` for calibrated log-odds `odds` (see `is_bonafide`)."""
    return BONAFIDE_LABEL if is_bonafide(odds, threshold) else SPOOF_LABEL


def is_calibrated(config: Nes2NetConfig) -> bool:
    """Whether the model's calibration is fitted (not the identity that keeps the raw logits)."""
    return (config.calibration_scale, config.calibration_offset) != (1.0, 0.0)
