"""DET curves, per-class score histograms, EER per channel condition, localisation timelines and the stretch
margin's trade-off, saved as PNG (matplotlib's Agg canvas, no pyplot global state)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from itertools import cycle
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from scipy.special import ndtri

from modeling_nes2net.atomic import atomic_output
from modeling_nes2net.localisation import CELL_SECONDS, spoofed_stretches
from training.metrics import compute_det_curve, compute_eer, eer_from_det_curve

DET_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)
"""Axis ticks of the standard DET plot (as rates; labelled in percent)."""


def _new_figure(size: tuple[float, float], dpi: int) -> Figure:
    figure = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save_png(figure: Figure, path: str | os.PathLike) -> Path:
    """Save with the figure's own size and dpi (no tight bounding box), atomically."""
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=figure.dpi)
    return Path(path)


def _format_rate(rate: float) -> str:
    return f"{100 * rate:g}"


def _draw_det_axes(axes: Axes, limits: tuple[float, float]) -> None:
    ticks = [tick for tick in DET_TICKS if limits[0] <= tick <= limits[1]]
    for set_ticks, set_labels, set_limits in (
        (axes.set_xticks, axes.set_xticklabels, axes.set_xlim),
        (axes.set_yticks, axes.set_yticklabels, axes.set_ylim),
    ):
        set_ticks(ndtri(ticks))
        set_labels([_format_rate(tick) for tick in ticks])
        set_limits(ndtri(limits[0]), ndtri(limits[1]))
    axes.plot(ndtri(limits), ndtri(limits), color="0.6", linestyle=":", linewidth=1)
    axes.set_xlabel("False alarm rate: spoof accepted (%)")
    axes.set_ylabel("Miss rate: bona fide rejected (%)")
    axes.set_aspect("equal")
    axes.grid(True, color="0.85")


def plot_det_curves(
    systems: Mapping[str, tuple[ArrayLike, ArrayLike]],
    path: str | os.PathLike,
    title: str | None = None,
    limits: tuple[float, float] = (0.001, 0.5),
    size: tuple[float, float] = (6.0, 6.0),
    dpi: int = 100,
) -> Path:
    """DET curves on normal-deviate axes, one per system, each with its EER point marked.

    Args:
        systems: name -> (bonafide scores `(n_bonafide,)`, spoof scores `(n_spoof,)`).
        path: the PNG to write; its size is `size * dpi` pixels.
        limits: the rate range shown on both axes.
    """
    if not systems:
        raise ValueError("no systems to plot")
    figure = _new_figure(size, dpi)
    axes = figure.add_subplot()
    _draw_det_axes(axes, limits)
    # Rates of 0 and 1 have infinite deviates: pin them just outside the visible range so lines run off the edge.
    low, high = limits[0] / 2, 1 - (1 - limits[1]) / 2
    for name, (bonafide, spoof) in systems.items():
        curve = compute_det_curve(bonafide, spoof)
        eer = eer_from_det_curve(curve).eer
        (line,) = axes.plot(
            ndtri(np.clip(curve.false_alarm_rates, low, high)),
            ndtri(np.clip(curve.miss_rates, low, high)),
            label=f"{name} (EER {100 * eer:.2f}%)",
        )
        deviate = ndtri(np.clip(eer, low, high))
        axes.plot(deviate, deviate, marker="o", color=line.get_color(), markerfacecolor="none")
    axes.legend(loc="upper right", fontsize="small")
    if title:
        axes.set_title(title)
    return _save_png(figure, path)


def plot_score_histogram(
    bonafide_scores: ArrayLike,
    spoof_scores: ArrayLike,
    path: str | os.PathLike,
    thresholds: Mapping[str, float] | None = None,
    title: str | None = None,
    bins: int = 60,
    size: tuple[float, float] = (7.0, 4.0),
    dpi: int = 100,
) -> Path:
    """Score densities of each class on shared bins, with vertical threshold lines.

    Args:
        bonafide_scores: `(n_bonafide,)` scores; spoof_scores: `(n_spoof,)` scores.
        thresholds: label -> threshold to draw; default: the EER threshold.
        path: the PNG to write; its size is `size * dpi` pixels.
    """
    eer, eer_threshold = compute_eer(bonafide_scores, spoof_scores)
    if thresholds is None:
        thresholds = {f"EER threshold (EER {100 * eer:.2f}%)": eer_threshold}
    bonafide = np.asarray(bonafide_scores, dtype=np.float64).reshape(-1)
    spoof = np.asarray(spoof_scores, dtype=np.float64).reshape(-1)
    edges = np.histogram_bin_edges(np.concatenate((bonafide, spoof)), bins=bins)
    figure = _new_figure(size, dpi)
    axes = figure.add_subplot()
    for scores, label, colour in ((bonafide, "bona fide", "tab:green"), (spoof, "spoof", "tab:red")):
        axes.hist(scores, bins=edges, density=True, alpha=0.5, color=colour, label=f"{label} ({scores.size})")
    for (label, threshold), style in zip(thresholds.items(), cycle(("--", "-.", ":"))):
        axes.axvline(threshold, color="black", linestyle=style, linewidth=1.2, label=f"{label}: {threshold:.3g}")
    axes.set_xlabel("score (higher = more bona fide)")
    axes.set_ylabel("density")
    axes.legend(fontsize="small")
    if title:
        axes.set_title(title)
    return _save_png(figure, path)


def plot_condition_eers(
    conditions: Mapping[str, tuple[float, tuple[float, float] | None]],
    path: str | os.PathLike,
    reference: str,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Horizontal bars of the EER (%) per channel condition, top to bottom in the given order, with bootstrap
    intervals where given; `reference` (the clean condition) is drawn in another colour with a guide line.

    Args:
        conditions: condition name -> (EER as a fraction, `(low, high)` interval or None).
    """
    names = list(conditions)
    eers = np.array([100 * conditions[name][0] for name in names])
    figure = _new_figure((6.4, 0.9 + 0.32 * len(names)), dpi)
    axes = figure.add_subplot()
    positions = np.arange(len(names))[::-1]
    colours = ["0.55" if name == reference else "tab:red" for name in names]
    axes.barh(positions, eers, color=colours, height=0.7)
    for position, name, eer in zip(positions, names, eers):
        interval = conditions[name][1]
        label_at = eer
        if interval is not None:
            low, high = 100 * np.asarray(interval)
            axes.errorbar(eer, position, xerr=[[eer - low], [high - eer]], color="black", capsize=2, linewidth=1)
            label_at = max(eer, high)
        axes.annotate(f"{eer:.1f}", (label_at, position), xytext=(4, -3), textcoords="offset points", fontsize=8)
    if reference in conditions:
        axes.axvline(100 * conditions[reference][0], color="0.55", linestyle="--", linewidth=1)
    axes.set_yticks(positions, names, fontsize=8)
    axes.set_xlabel("EER (%), 95% bootstrap interval")
    axes.set_xlim(0, max(50.0, float(eers.max()) * 1.1))
    axes.grid(True, axis="x", color="0.9")
    if title:
        axes.set_title(title, fontsize=9)
    return _save_png(figure, path)


def plot_localisation(
    timelines: Mapping[str, ArrayLike],
    cell_labels: ArrayLike,
    path: str | os.PathLike,
    threshold: float = 0.0,
    title: str | None = None,
    size: tuple[float, float] = (9.0, 3.5),
    dpi: int = 100,
) -> Path:
    """Scores over time, one line per system, with the true spoofed stretches shaded.

    Args:
        timelines: name -> `(cells,)` log-odds on the 10 ms grid (`modeling_nes2net.localisation`).
        cell_labels: `(cells,)` 10 ms labels, 1 bona fide, 0 spoof.
        threshold: the decision threshold drawn as a horizontal line.
    """
    labels = np.asarray(cell_labels, dtype=np.float64)
    figure = _new_figure(size, dpi)
    axes = figure.add_subplot()
    for index, stretch in enumerate(spoofed_stretches(labels, threshold=0.5, min_seconds=CELL_SECONDS)):
        axes.axvspan(stretch.start, stretch.end, color="tab:red", alpha=0.2, label="spoofed" if index == 0 else None)
    for name, scores in timelines.items():
        scores = np.asarray(scores, dtype=np.float64)
        axes.plot((np.arange(len(scores)) + 0.5) * CELL_SECONDS, scores, linewidth=1.2, label=name)
    axes.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    axes.set_xlabel("time (s)")
    axes.set_ylabel("log-odds (higher = more bona fide)")
    axes.set_xlim(0, len(labels) * CELL_SECONDS)
    axes.legend(fontsize="small", loc="lower right")
    if title:
        axes.set_title(title)
    return _save_png(figure, path)


def plot_margin_sweeps(rows: Sequence[Mapping], path: str | os.PathLike, dpi: int = 120) -> Path:
    """What each stretch margin costs: one line per system of `rows` (`benchmarks/localisation.py`'s, each with a
    `margin_sweep` of `segment_metrics.margin_sweep` and its model's `stretch_margin`), the splices called bona fide
    (%) against the bona fide recordings flagged (%) as the margin goes from 0 (right) upwards, the model's own margin
    marked."""
    figure = _new_figure((6.4, 4.2), dpi)
    axes = figure.add_subplot()
    for row in rows:
        sweep = row["margin_sweep"]
        flagged = 100 * np.asarray(sweep["originals_flagged_share"])
        missed = 100 * np.asarray(sweep["called_bonafide_share"])
        (line,) = axes.plot(flagged, missed, marker=".", markersize=3, linewidth=1.2, label=row["system"])
        own = sweep["margins"].index(row["stretch_margin"])
        axes.plot(flagged[own], missed[own], marker="o", markersize=8, color=line.get_color(), linestyle="none")
        axes.annotate(f"margin {row['stretch_margin']:.2f}", (flagged[own], missed[own]), xytext=(6, 4),
                      textcoords="offset points", fontsize=8, color=line.get_color())
    axes.set_xlabel("bona fide recordings called spoof or partly spoofed (%)")
    axes.set_ylabel("splices called bona fide (%)")
    axes.set_xlim(0, 100)
    axes.set_ylim(0, None)
    axes.grid(True, color="0.9")
    axes.legend(fontsize="small", title="stretch margin 0 to 3 log-odds", title_fontsize="small")
    return _save_png(figure, path)
