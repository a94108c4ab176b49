"""The Speech Anti-Spoofing Arena's `eer_percent` rule, written threshold by threshold.

The oracle `training.arena.arena_eer_percent` is tested against (`tests/training/test_arena.py`): for each distinct
score `t` in ascending order, the false acceptance rate (spoofs scored `>= t`) and the false rejection rate (bona fide
scored `< t`) are counted one threshold at a time; the EER is the mean of the two rates interpolated linearly between
the first pair of neighbouring thresholds where their difference changes sign, or, when it never does, the mean at
the threshold where they are closest.
"""

from __future__ import annotations

import numpy as np


def reference_eer_percent(bonafide: np.ndarray, spoof: np.ndarray) -> float:
    thresholds = sorted(set(bonafide.tolist()) | set(spoof.tolist()))
    false_acceptance = [sum(score >= t for score in spoof) / len(spoof) for t in thresholds]
    false_rejection = [sum(score < t for score in bonafide) / len(bonafide) for t in thresholds]
    differences = [fa - fr for fa, fr in zip(false_acceptance, false_rejection)]
    for i in range(len(thresholds) - 1):
        if np.sign(differences[i]) != np.sign(differences[i + 1]):
            fraction = 0.0 if differences[i] == differences[i + 1] else (
                differences[i] / (differences[i] - differences[i + 1]))
            fa = false_acceptance[i] + fraction * (false_acceptance[i + 1] - false_acceptance[i])
            fr = false_rejection[i] + fraction * (false_rejection[i + 1] - false_rejection[i])
            return 100 * (fa + fr) / 2
    closest = min(range(len(thresholds)), key=lambda i: abs(differences[i]))
    return 100 * (false_acceptance[closest] + false_rejection[closest]) / 2
