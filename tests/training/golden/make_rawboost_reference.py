"""Makes `rawboost_reference.npz`: outputs of the RawBoost authors' code for fixed seeds (see README.md here).

Run once, outside the package's environment, with numpy < 2 (the authors' code calls `int()` on shape-(1,) arrays,
which numpy 2 refuses) and the authors' two files in one folder:

    python make_rawboost_reference.py AUTHORS_FOLDER rawboost_reference.npz

`AUTHORS_FOLDER` holds `RawBoost.py` (TakHemlata/SSL_Anti-spoofing) and `process_rawboost.py`: the function
`process_Rawboost_feature` of the Nes2Net authors' `data_utils_SSL.py` (Liu-Tianchi/Nes2Net_ASVspoof_ITW), with its
two imports (`from RawBoost import ...`, `import random`). Neither file is part of this repository.
"""

from __future__ import annotations

import sys
import types

import numpy as np

SAMPLE_RATE = 16_000
SAMPLES = 4_000

# The authors' defaults (their main.py argparse), under their names.
DEFAULTS = dict(N_f=5, nBands=5, minF=20, maxF=8000, minBW=100, maxBW=1000, minCoeff=10, maxCoeff=100, minG=0, maxG=0,
                minBiasLinNonLin=5, maxBiasLinNonLin=20, P=10, g_sd=2, SNRmin=10, SNRmax=40,
                LnL_ratio=1.0, ISD_ratio=1.0, SSI_ratio=1.0)
CUSTOM = dict(DEFAULTS, N_f=3, nBands=3, minF=200, maxF=6000, minBW=300, maxBW=1500, minCoeff=20, maxCoeff=60,
              minG=-3, maxG=3, minBiasLinNonLin=2, maxBiasLinNonLin=10, P=20, g_sd=1, SNRmin=5, SNRmax=15)
HALF = dict(DEFAULTS, LnL_ratio=0.5, ISD_ratio=0.5, SSI_ratio=0.5)


def test_input(samples: int, sample_rate: int) -> np.ndarray:
    """A voiced-speech stand-in: harmonics of 140 Hz in a 4 Hz envelope over faint noise, peak 0.5, float32."""
    t = np.arange(samples) / sample_rate
    voiced = sum(np.sin(2 * np.pi * k * 140 * t) / k for k in range(1, 12))
    clip = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) * voiced + 0.05 * np.random.RandomState(0).standard_normal(samples)
    return (0.5 * clip / np.abs(clip).max()).astype(np.float32)


# (name, algorithm, seed, options, sample rate)
CASES = (
    [(f"algorithm{algorithm}", algorithm, 100 + algorithm, DEFAULTS, SAMPLE_RATE) for algorithm in range(12)]
    + [(f"algorithm{algorithm}_half_seed{seed}", algorithm, seed, HALF, SAMPLE_RATE)
       for algorithm in (10, 11) for seed in (1, 2, 6)]  # gates: LnL / both / ISD (10), LnL+SSI / LnL+ISD / ISD (11)
    + [("algorithm4_custom_22050", 4, 7, CUSTOM, 22_050)]
)


def main(authors_folder: str, output: str) -> None:
    sys.path.insert(0, authors_folder)
    import process_rawboost  # the authors' process_Rawboost_feature

    # Algorithms 10 and 11 draw their gates from Python's `random`; here they come first from numpy's global stream,
    # as the package's one generator per item draws them.
    process_rawboost.random = types.SimpleNamespace(random=lambda: float(np.random.random_sample()))
    arrays = {}
    for name, algorithm, seed, options, sample_rate in CASES:
        x = test_input(round(SAMPLES * sample_rate / SAMPLE_RATE), sample_rate)
        np.random.seed(seed)
        y = process_rawboost.process_Rawboost_feature(x.copy(), sample_rate, types.SimpleNamespace(**options), algorithm)
        arrays[f"input/{sample_rate}"] = x
        arrays[f"{name}/output"] = np.asarray(y, dtype=np.float32)
        arrays[f"{name}/case"] = np.array([algorithm, seed, sample_rate])
        arrays[f"{name}/options"] = np.array([f"{key}={value}" for key, value in options.items()])
    np.savez_compressed(output, **arrays, numpy_version=np.array(np.__version__))


if __name__ == "__main__":
    main(*sys.argv[1:])
