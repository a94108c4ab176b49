"""Tests of training.plots: the PNGs exist, have the requested pixel size and show the plotted data."""

import struct

import numpy as np
import pytest
from matplotlib.image import imread

from training.plots import plot_det_curves, plot_score_histogram


def png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def trials(seed: int, shift: float):
    rng = np.random.default_rng(seed)
    return rng.normal(shift, 1.0, 500), rng.normal(-shift, 1.0, 2000)


def test_det_plot_of_two_systems(tmp_path):
    path = plot_det_curves(
        {"good": trials(0, 1.5), "weak": trials(1, 0.5)}, tmp_path / "plots" / "det.png", title="DET", dpi=80
    )
    assert png_size(path) == (480, 480)
    pixels = imread(path)[..., :3]
    # the two curves use matplotlib's first two colours (blue, orange): both must be drawn
    for colour in ((0.12, 0.47, 0.71), (1.0, 0.5, 0.05)):
        assert (np.abs(pixels - colour).max(axis=-1) < 0.05).sum() > 50
    assert [p.name for p in path.parent.iterdir()] == ["det.png"]  # no temporary left behind


def test_score_histogram_with_thresholds(tmp_path):
    bonafide, spoof = trials(2, 1.0)
    path = plot_score_histogram(bonafide, spoof, tmp_path / "hist.png", size=(5, 3), dpi=100)
    assert png_size(path) == (500, 300)
    assert path.stat().st_size > 5_000
    several = plot_score_histogram(
        bonafide, spoof, tmp_path / "hist2.png", thresholds={"EER": 0.0, "Bayes": -0.64, "a": 1, "b": 2, "c": 3}
    )
    assert png_size(several) == (700, 400)
    assert several.read_bytes() != path.read_bytes()


def test_plots_reject_one_class_empty(tmp_path):
    with pytest.raises(ValueError, match="no spoof scores"):
        plot_score_histogram([0.1, 0.2], [], tmp_path / "x.png")
    with pytest.raises(ValueError, match="no bona fide scores"):
        plot_det_curves({"empty": ([], [0.1])}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
