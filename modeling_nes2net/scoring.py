"""From logits to the scores anti-spoofing tools and users read. Higher always means more bona fide.

- `bonafide_score`: the paper's score, written to ASVspoof score files: the bona fide logit (`logits[:, 1]` with
  two logits, the single logit otherwise).
- `log_odds`: `log p(bonafide) / p(spoof)` under the model (`logits[:, 1] - logits[:, 0]`, or the single logit);
  decisions compare it with `config.decision_threshold`, and it is the LLR-like score for minDCF / actDCF / CLLR.
- `bonafide_probability`: `sigmoid(log_odds)`, the softmax probability of the bona fide class.
"""

from __future__ import annotations

import torch


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


def verdict(log_odds: float, threshold: float = 0.0) -> str:
    """The decision rule, the one place it is written: `"bonafide"` when `log_odds >= threshold`, else `"spoof"`."""
    return "bonafide" if log_odds >= threshold else "spoof"
