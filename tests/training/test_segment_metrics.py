"""Localisation timelines and metrics: 10 ms cells from frames and windows, segment / range-based / utterance EER."""

from __future__ import annotations

import numpy as np
import pytest

from modeling_nes2net.localisation import (
    Stretch,
    flagging_threshold,
    frame_cell_scores,
    pool_segments,
    spoofed_stretches,
    stretch_iou,
    window_cell_scores,
)
from training import plots
from training.plots import plot_localisation, plot_margin_sweeps
from training.segment_metrics import (
    LocalisedUtterance,
    bootstrap_interval,
    localisation_metrics,
    margin_sweep,
    range_based_eer,
    segment_eer,
    utterance_eer,
)


def test_frame_scores_go_to_the_nearest_frame_centre():
    # frames every 20 ms centred at 64 ms + 20 k ms (the embedded model's geometry)
    times = 0.064 + 0.02 * np.arange(4)
    cells = frame_cell_scores(np.array([1.0, 2.0, 3.0, 4.0]), times, 14)
    # cell k is centred at (k + 0.5) * 10 ms: up to 74 ms frame 0, up to 94 ms frame 1, ...
    np.testing.assert_array_equal(cells, [1] * 7 + [2] * 2 + [3] * 2 + [4] * 3)


def test_window_scores_average_where_windows_overlap():
    cells = window_cell_scores(np.array([0.0, 0.1]), np.array([0.2, 0.3]), np.array([2.0, -2.0]), 40)
    np.testing.assert_array_equal(cells[:10], 2.0)
    np.testing.assert_array_equal(cells[10:20], 0.0)
    np.testing.assert_array_equal(cells[20:30], -2.0)
    np.testing.assert_array_equal(cells[30:], -2.0)  # past every window: the nearest window


def test_pool_segments_takes_the_minimum_and_refuses_odd_resolutions():
    np.testing.assert_array_equal(pool_segments(np.array([3.0, 1.0, 2.0, 5.0, 4.0]), 20), [1.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="not a multiple of 10 ms"):
        pool_segments(np.zeros(4), 25)


def test_spoofed_stretches_are_runs_below_the_threshold():
    scores = np.array([2.0] * 10 + [-1.0, -3.0] * 10 + [2.0] * 5 + [-1.0] * 3)
    (stretch,) = spoofed_stretches(scores, threshold=0.0, min_seconds=0.1)
    assert (stretch.start, stretch.end, stretch.log_odds) == pytest.approx((0.1, 0.3, -3.0))
    assert str(stretch) == "0.10-0.30 s (log-odds -3.00)"


def test_a_margin_flags_only_runs_with_a_confident_core_and_keeps_their_whole_extent():
    #          genuine dip (never below -2)   spoof: leans from 0.5 s, confident 0.2 s   a short confident blip
    scores = np.array([1.0] * 10 + [-1.5] * 40 + [1.0] * 10 + [-0.5] * 10 + [-3.0] * 20 + [-0.5] * 10 + [1.0] * 10
                      + [-0.2] * 5 + [-4.0] * 10 + [1.0] * 5)
    (stretch,) = spoofed_stretches(scores, threshold=0.0, min_seconds=0.2, margin=2.0)
    assert (stretch.start, stretch.end, stretch.log_odds) == pytest.approx((0.6, 1.0, -3.0))
    without_margin = [(s.start, s.end) for s in spoofed_stretches(scores, 0.0, 0.2)]
    assert np.allclose(without_margin, [(0.1, 0.5), (0.6, 1.0)])  # the dip too, and not the 0.15 s blip
    assert spoofed_stretches(scores, 0.0, 0.2, margin=3.5) == []  # no core of 0.2 s below -3.5
    (narrower,) = spoofed_stretches(scores, 0.0, 0.2, margin=2.0, edge=1.0)  # ends where the scores rise past -1
    assert (narrower.start, narrower.end) == pytest.approx((0.7, 0.9))
    for margin, edge in ((-1.0, 0.0), (2.0, -0.5), (2.0, 2.5)):
        with pytest.raises(ValueError, match="margin must be >= 0 and edge between 0 and the margin"):
            spoofed_stretches(scores, 0.0, 0.2, margin=margin, edge=edge)
    rng = np.random.default_rng(1)  # the margin only ever drops stretches; what it keeps is unchanged
    for _ in range(100):
        scores, margin = rng.normal(size=int(rng.integers(5, 80))).cumsum() / 3, float(rng.uniform(0, 2))
        kept = spoofed_stretches(scores, 0.0, 0.05, margin)
        assert set(kept) <= set(spoofed_stretches(scores, 0.0, 0.05))
        assert bool(kept) == (flagging_threshold(scores, 0.05) < -margin)


def test_the_flagging_threshold_is_where_a_stretch_first_appears():
    scores = np.array([2.0] * 10 + [-1.0] * 10 + [-2.0] * 5 + [0.5] * 10 + [-4.0] * 9)  # the deepest run: 90 ms
    threshold = flagging_threshold(scores, min_seconds=0.1)
    assert threshold == -1.0  # the 10 cells at -1 and below stay under anything above -1; the -4 run is too short
    assert not spoofed_stretches(scores, threshold, 0.1) and spoofed_stretches(scores, threshold + 1e-6, 0.1)
    assert flagging_threshold(scores, min_seconds=0.05) == -4.0
    assert flagging_threshold(scores[:5], min_seconds=0.1) == np.inf  # shorter than a stretch: never flagged
    rng = np.random.default_rng(0)
    for _ in range(100):
        scores, seconds = rng.normal(size=int(rng.integers(5, 60))), float(rng.choice([0.01, 0.05, 0.2]))
        threshold = flagging_threshold(scores, seconds)
        assert not spoofed_stretches(scores, threshold, seconds)
        assert threshold == np.inf or spoofed_stretches(scores, threshold + 1e-9, seconds)


def _utterance(labels, scores, label=None):
    labels = np.asarray(labels, np.int8)
    return LocalisedUtterance(np.asarray(scores, float), labels, float(np.min(scores)), int(labels.min()))


def test_segment_eer_counts_segments_and_range_eer_counts_duration():
    # a 0.3 s spoof stretch scored -1 on its first 0.1 s and 1.5 (above every bona fide cell's 1.0) after
    labels = [1] * 40 + [0] * 30 + [1] * 10
    scores = [1.0] * 40 + [-1.0] * 10 + [1.5] * 20 + [1.0] * 10
    utterances = [_utterance(labels, scores)]
    # 10 ms cells (duration): at threshold 1.5 every bona fide cell is missed and 20/30 spoof cells pass,
    # at 1.0 nothing is missed and 20/30 pass: the closest point is miss 1, fa 2/3 -> EER 5/6
    assert range_based_eer(utterances) == pytest.approx(5 / 6)
    # segments score their minimum: at 320 ms bona fide {1.0}, spoof {-1 (holds the stretch start), 1.0}; at 80 ms
    # bona fide six 1.0s, spoof {-1, -1, 1.5, 1.0}: both are closest at threshold 1.0, miss 0, fa 1/2 -> EER 1/4
    assert segment_eer(utterances, 320) == pytest.approx(0.25)
    assert segment_eer(utterances, 80) == pytest.approx(0.25)


def test_metrics_of_perfect_and_useless_scores_and_their_intervals(tmp_path):
    rng = np.random.default_rng(0)
    perfect, useless = [], []
    for index in range(20):
        labels = np.ones(200, np.int8)
        if index % 2:
            start = rng.integers(0, 150)
            labels[start : start + 40] = 0
        perfect.append(_utterance(labels, labels * 2.0 - 1 + 0.1 * rng.standard_normal(200)))
        useless.append(_utterance(labels, rng.standard_normal(200)))
    good, bad = localisation_metrics(perfect), localisation_metrics(useless)
    assert set(good) == {f"segment_eer_{r}ms" for r in (20, 40, 80, 160, 320, 640)} | {"range_eer", "utterance_eer"}
    assert all(value == 0.0 for value in good.values())
    assert 0.35 < bad["range_eer"] < 0.65 and 0.3 < bad["segment_eer_160ms"] < 0.7
    low, high = bootstrap_interval(utterance_eer, useless, num_resamples=50)
    assert 0.0 <= low <= bad["utterance_eer"] <= high <= 1.0 and high > low
    path = plot_localisation({"perfect": perfect[1].cell_scores}, perfect[1].cell_labels, tmp_path / "timeline.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stretch_iou_counts_10ms_cells_of_the_flagged_stretches_against_the_spoofed_ones():
    labels = np.array([1] * 100 + [0] * 50 + [1] * 50, np.int8)  # spoofed 1.0-1.5 s
    assert stretch_iou([Stretch(1.0, 1.5, -2.0)], labels) == 1.0
    assert stretch_iou([Stretch(1.25, 1.75, -2.0)], labels) == pytest.approx(25 / 75)
    assert stretch_iou([Stretch(0.0, 0.2, -1.0), Stretch(1.0, 1.3, -1.0)], labels) == pytest.approx(30 / 70)
    assert stretch_iou([], labels) == 0.0
    assert stretch_iou([], np.ones(50, np.int8)) == 1.0  # nothing spoofed, nothing flagged


def test_the_margin_sweep_counts_each_verdict_where_its_margin_puts_it(monkeypatch, tmp_path):
    # verdict margins: never flagged, flagged below 0.5 / 1.0, always flagged (an utterance verdict of spoof)
    spliced, originals = [-np.inf, 0.5, 1.0, np.inf], [-np.inf, 0.3, 2.0, np.inf]
    sweep = margin_sweep(spliced, originals, [0.0, 0.5, 1.0, 3.0])
    assert sweep == {"margins": [0.0, 0.5, 1.0, 3.0], "called_bonafide_share": [0.25, 0.5, 0.75, 0.75],
                     "originals_flagged_share": [0.75, 0.5, 0.5, 0.25]}
    figures = []
    monkeypatch.setattr(plots, "_save_png", lambda figure, path: figures.append(figure) or path)
    rows = [{"system": "frame head", "stretch_margin": 0.5, "margin_sweep": sweep}]
    plot_margin_sweeps(rows, tmp_path / "margins.png")
    (axes,) = figures[0].axes
    curve, marked = axes.lines
    np.testing.assert_array_equal(curve.get_xdata(), [75, 50, 50, 25])  # originals flagged (%) along the margins
    np.testing.assert_array_equal(curve.get_ydata(), [25, 50, 75, 75])  # splices called bona fide (%)
    assert (marked.get_xdata()[0], marked.get_ydata()[0]) == (50, 50)  # the model's own margin
    monkeypatch.undo()
    assert plot_margin_sweeps(rows, tmp_path / "margins.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
