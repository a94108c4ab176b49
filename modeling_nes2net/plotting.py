"""Timeline figure of a scored recording: waveform envelope, score over time, threshold, spoofed stretches.

Used by `nes2net detect --plot`, `nes2net demo` and by the Space (matplotlib: the `plot` extra, imported when a
figure is drawn). Builds a `matplotlib.figure.Figure` directly (no pyplot, so no
global state and no GUI backend: safe in servers and threads); `figure.savefig(path)` renders it with Agg.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .detection import DetectionResult
from .localisation import CELL_SECONDS
from .scorer import ENVELOPE_SECONDS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SPOOF_COLOUR = "tab:red"
SCORE_COLOUR = "tab:blue"
TIMELINE_COLOUR = "0.45"


PLOT_EXTRA_MISSING = "timeline plots need matplotlib, which is not installed: pip install 'nes2net[plot]'"


def can_plot() -> bool:
    """Whether matplotlib (the `plot` extra) is installed."""
    return importlib.util.find_spec("matplotlib") is not None


def plot_format(path: str | Path) -> str:
    """The image format of a figure path, from its extension (`png` when it has none); a `ValueError` naming the path
    when matplotlib cannot write that format, so a command refuses it before it scores anything."""
    if not can_plot():
        raise ImportError(PLOT_EXTRA_MISSING, name="matplotlib")
    from matplotlib.backend_bases import FigureCanvasBase

    image_format = Path(path).suffix.lstrip(".").lower() or "png"
    supported = FigureCanvasBase.get_supported_filetypes()
    if image_format not in supported:
        raise ValueError(f"{path}: matplotlib cannot write .{image_format} figures; use one of "
                         f"{', '.join('.' + name for name in sorted(supported))}")
    return image_format


def plot_timeline(result: DetectionResult, width: float = 10.0) -> Figure:
    """Two stacked panels sharing the time axis: the peak envelope of the waveform, and the log-odds (bona fide) of
    each window at its centre and of the 10 ms timeline (a frame head's, where the model has one) with the decision
    threshold; the result's spoofed stretches (the one rule the label and `--segments` follow:
    `localisation.spoofed_stretches` on the timeline) are shaded red on both."""
    if not can_plot():
        raise ImportError(PLOT_EXTRA_MISSING, name="matplotlib")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, 4.2), layout="constrained")
    wave_axes, score_axes = figure.subplots(2, 1, sharex=True, height_ratios=(1, 1.4))
    envelope = np.asarray(result.envelope, dtype=np.float32)
    times = (np.arange(len(envelope)) + 0.5) * ENVELOPE_SECONDS
    wave_axes.fill_between(times, -envelope, envelope, color="0.35", linewidth=0)
    peak = 1.05 * max(float(envelope.max(initial=0.0)), 1e-3)
    wave_axes.set_ylim(-peak, peak)
    wave_axes.set_ylabel("amplitude")

    segments = result.segments
    if result.timeline is not None:
        cell_times = (np.arange(len(result.timeline)) + 0.5) * CELL_SECONDS
        score_axes.plot(cell_times, result.timeline, color=TIMELINE_COLOUR, linewidth=1, label="per 10 ms")
    if len(segments) == 1:
        score_axes.hlines(segments[0].log_odds, segments[0].start, segments[0].end, color=SCORE_COLOUR, linewidth=2,
                          label="recording")
    else:
        centres = [(segment.start + segment.end) / 2 for segment in segments]
        score_axes.plot(centres, [segment.log_odds for segment in segments], color=SCORE_COLOUR, marker=".",
                        linestyle="none" if result.timeline is not None else "-", label="windows")
    score_axes.axhline(result.threshold, color="black", linestyle="--", linewidth=1,
                       label=f"threshold {result.threshold:g}")
    for stretch in result.stretches:
        for axes in (wave_axes, score_axes):
            axes.axvspan(stretch.start, stretch.end, color=SPOOF_COLOUR, alpha=0.2, linewidth=0)
    score_axes.set_ylabel("log-odds (bona fide)")
    score_axes.set_xlabel("time (s)")
    score_axes.set_xlim(0, max(result.duration, segments[-1].end))
    score_axes.legend(loc="upper right", fontsize="small")
    figure.suptitle(
        f"{Path(result.source).name}: {result.label} (p(bona fide) = {result.bonafide_probability:.3f}, "
        f"{result.protocol}{', ' + result.aggregation if result.aggregation else ''})",
        fontsize="medium",
    )
    return figure
