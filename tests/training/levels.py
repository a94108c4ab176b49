"""What the augmentation and channel tests measure, written independently of the package's own mixing."""

from __future__ import annotations

import numpy as np


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """`10 log10(sum(clean^2) / sum((noisy - clean)^2))` in float64; shapes `(samples,)`."""
    clean = clean.astype(np.float64)
    return float(10 * np.log10(np.sum(clean**2) / np.sum((noisy.astype(np.float64) - clean) ** 2)))
