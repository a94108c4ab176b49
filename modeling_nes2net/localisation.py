"""Where a recording is spoofed: frame or window scores on one 10 ms timeline, segments, flagged stretches.

Everything is put on a grid of 10 ms cells (the finest PartialSpoof resolution and the label grid of the splices
builder), whatever made the scores:

- `frame_cell_scores`: a frame head's scores, each cell taking the score of the frame whose centre is nearest.
- `window_cell_scores`: sliding-window scores (the `windows` protocol), each cell taking the mean of the windows that
  cover it.

From the cells, `pool_segments` gives the score of each segment of a coarser resolution (the minimum of its cells:
a segment is as spoof-like as its most spoof-like part, the rule the segment labels follow) and `spoofed_stretches`
the stretches flagged: runs below a threshold (less an edge) that hold a confident core (`flagging_threshold`: the
threshold above which a timeline shows a core), and `stretch_iou` how well flagged stretches cover the spoofed cells.
Scores are log-odds, higher = more bona fide.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CELL_SECONDS = 0.01


@dataclass(frozen=True)
class Stretch:
    """A stretch flagged as spoofed: `start` and `end` in seconds and its lowest `log_odds`."""

    start: float
    end: float
    log_odds: float

    def __str__(self) -> str:
        return f"{self.start:.2f}-{self.end:.2f} s (log-odds {self.log_odds:+.2f})"


def frame_cell_scores(frame_scores: np.ndarray, frame_times: np.ndarray, cells: int) -> np.ndarray:
    """`(frames,)` scores at frame centres `frame_times` (seconds, ascending) -> `(cells,)`: each cell the score of
    the frame nearest to its centre."""
    centres = (np.arange(cells) + 0.5) * CELL_SECONDS
    right = np.clip(np.searchsorted(frame_times, centres), 1, len(frame_times) - 1) if len(frame_times) > 1 else None
    if right is None:
        return np.full(cells, float(frame_scores[0]))
    nearer_left = centres - frame_times[right - 1] <= frame_times[right] - centres
    return np.asarray(frame_scores)[np.where(nearer_left, right - 1, right)].astype(np.float64)


def window_cell_scores(starts: np.ndarray, ends: np.ndarray, scores: np.ndarray, cells: int) -> np.ndarray:
    """Windows `[starts, ends)` (seconds) with `scores` -> `(cells,)`: each cell the mean score of the windows covering
    its centre (the window with the nearest centre where none does). O(cells + windows) time; in place, so the
    memory is the result and `(cells,)` int32 counts (a 2-hour timeline: 5.8 + 2.9 MB)."""
    starts, ends, scores = (np.asarray(values, np.float64) for values in (starts, ends, scores))
    first = np.clip(np.ceil(starts / CELL_SECONDS - 0.5), 0, cells).astype(np.int64)
    stop = np.clip(np.ceil(ends / CELL_SECONDS - 0.5), 0, cells).astype(np.int64)
    totals, counts = np.zeros(cells + 1), np.zeros(cells + 1, np.int32)
    np.add.at(totals, first, scores)
    np.add.at(totals, stop, -scores)
    np.add.at(counts, first, 1)
    np.add.at(counts, stop, -1)
    totals, counts = np.cumsum(totals, out=totals)[:cells], np.cumsum(counts, out=counts)[:cells]
    uncovered = np.flatnonzero(counts == 0)
    if len(uncovered):
        centres = (uncovered + 0.5) * CELL_SECONDS
        nearest = np.argmin(np.abs(centres[:, None] - (starts + ends)[None, :] / 2), axis=1)
        totals[uncovered], counts[uncovered] = scores[nearest], 1
    totals /= counts
    return totals


def pool_segments(cell_values: np.ndarray, resolution_ms: int) -> np.ndarray:
    """`(cells,)` -> `(ceil(cells / step),)` with `step = resolution_ms / 10`: the minimum over each segment's cells
    (the last segment may be partial). On labels (1 bona fide, 0 spoof): a segment is spoof when any cell is."""
    step = resolution_ms // round(CELL_SECONDS * 1000)
    if step < 1 or resolution_ms % round(CELL_SECONDS * 1000):
        raise ValueError(f"resolution {resolution_ms} ms is not a multiple of {CELL_SECONDS * 1000:g} ms")
    values = np.asarray(cell_values)
    return np.minimum.reduceat(values, np.arange(0, len(values), step)) if len(values) else values


def spoofed_stretches(cell_scores: np.ndarray, threshold: float = 0.0, min_seconds: float = 0.1,
                      margin: float = 0.0, edge: float = 0.0) -> list[Stretch]:
    """The runs of cells scoring below `threshold - edge` that hold a core of at least `min_seconds` of consecutive
    cells below `threshold - margin`, as `Stretch`es: a two-level (hysteresis) rule, so a stretch is only reported
    where the scores are confidently low, and then covers everything around the core that leans spoof enough.
    `0 <= edge <= margin`; `margin` 0: the runs below `threshold` of at least `min_seconds`."""
    if not 0 <= edge <= margin:
        raise ValueError(f"margin must be >= 0 and edge between 0 and the margin, got margin {margin} and edge {edge}")
    scores = np.asarray(cell_scores)
    min_cells = max(1, round(min_seconds / CELL_SECONDS))
    in_core = np.zeros(len(scores) + 1, np.int64)
    for start, end in true_runs(scores < threshold - margin):
        in_core[start + 1 : end + 1] = end - start >= min_cells
    cores_before = np.cumsum(in_core)  # a core lies inside every run below `threshold - edge` holding any of its cells
    return [
        Stretch(start * CELL_SECONDS, end * CELL_SECONDS, float(np.min(scores[start:end])))
        for start, end in true_runs(scores < threshold - edge)
        if cores_before[end] > cores_before[start]
    ]


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """`(start, end)` indices (end exclusive) of each run of True in the boolean `mask` `(n,)`."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], mask, [False]]).astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def flagging_threshold(cell_scores: np.ndarray, min_seconds: float = 0.1) -> float:
    """The threshold above which `spoofed_stretches(cell_scores, threshold, min_seconds)` finds a stretch (with a
    `margin`: above which `threshold - margin` is): the lowest, over every `min_seconds` run of cells, of the run's
    highest score (inf when the timeline is shorter)."""
    min_cells = max(1, round(min_seconds / CELL_SECONDS))
    if len(cell_scores) < min_cells:
        return math.inf
    return float(np.lib.stride_tricks.sliding_window_view(np.asarray(cell_scores), min_cells).max(axis=1).min())


def stretch_iou(stretches: Sequence[Stretch], cell_labels: np.ndarray) -> float:
    """Intersection over union of the flagged `stretches` (seconds) and the spoofed cells of `cell_labels` `(cells,)`
    (0 spoof), on the 10 ms grid; 1.0 when neither has any cell."""
    flagged = np.zeros(len(cell_labels), bool)
    for stretch in stretches:
        flagged[round(stretch.start / CELL_SECONDS) : round(stretch.end / CELL_SECONDS)] = True
    spoofed = np.asarray(cell_labels) == 0
    union = int((flagged | spoofed).sum())
    return float((flagged & spoofed).sum() / union) if union else 1.0
