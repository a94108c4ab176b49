"""The scoring protocols: which samples of a recording reach the model. Defined here once for `nes2net detect`,
`nes2net evaluate`, training's dev crops, the Space and the demo.

- `full`: the whole recording in one forward pass (the paper's In-the-Wild protocol; `pipeline(...)` does this).
  Memory and the front-end's attention cost grow with length, so it is bounded by `max_samples`.
- `4sec`: the first `WINDOW_SAMPLES` samples, tiled when shorter (the paper's ASVspoof 2019/2021 protocol).
- `windows`: windows of `window` samples every `hop` samples, the last one aligned to the end of the recording; a
  recording no longer than one window is one segment, whole (exactly as `full`).

`SAMPLING_RATE` (16 kHz) is the rate every released model expects and the one recordings are decoded to;
`WINDOW_SAMPLES` (64,600 samples, 4.04 s at 16 kHz) is the crop every released model was trained on. The functions
here take a stream of 1-D float32 blocks and yield `(start_sample, waveform)` segments; they hold at most one window
plus one block (`full`: the recording, up to `max_samples`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np

Protocol = Literal["full", "4sec", "windows"]
PROTOCOLS: tuple[str, ...] = ("full", "4sec", "windows")
SAMPLING_RATE = 16_000
WINDOW_SAMPLES = 64_600
HOP_SAMPLES = WINDOW_SAMPLES // 2

WaveformSegment = tuple[int, np.ndarray]


class RecordingTooLongError(ValueError):
    """A recording longer than the `full` protocol's `max_samples`; `samples` is how many were read."""

    def __init__(self, samples: int, max_samples: int) -> None:
        self.samples, self.max_samples = samples, max_samples
        super().__init__(f"more than {max_samples} samples")


def tile(waveform: np.ndarray, num_samples: int) -> np.ndarray:
    """The first `num_samples` of a non-empty `(samples,)` waveform, repeated from its start when shorter."""
    if len(waveform) == 0:
        raise ValueError("cannot tile an empty waveform")
    return np.resize(waveform, num_samples)


def window_segments(blocks: Iterable[np.ndarray], window: int, hop: int) -> Iterator[WaveformSegment]:
    """Cut a stream of blocks into `(start_sample, (window,) waveform)` windows every `hop` samples, plus one
    aligned to the end when the hops do not reach it; a stream shorter than `window` is one segment, whole."""
    buffer, buffer_start, next_start, covered = np.zeros(0, np.float32), 0, 0, 0
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        end = buffer_start + len(buffer)
        while next_start + window <= end:
            offset = next_start - buffer_start
            yield next_start, buffer[offset : offset + window].copy()
            covered, next_start = next_start + window, next_start + hop
        drop = min(next_start, end - window) - buffer_start  # keep the last window for the end-aligned tail
        if drop > 0:
            buffer, buffer_start = buffer[drop:], buffer_start + drop
    end = buffer_start + len(buffer)
    if covered == 0 and end > 0:
        yield 0, buffer
    elif covered < end:
        yield end - window, buffer[-window:].copy()


def first_window_tiled(blocks: Iterable[np.ndarray], window: int) -> Iterator[WaveformSegment]:
    """The `4sec` protocol: the first `window` samples, tiled from the start when the stream is shorter.
    Stops reading once `window` samples are in."""
    parts, total = [], 0
    for block in blocks:
        parts.append(block)
        total += len(block)
        if total >= window:
            break
    if total:
        yield 0, tile(np.concatenate(parts), window)


def whole_recording(blocks: Iterable[np.ndarray], max_samples: int | None = None) -> Iterator[WaveformSegment]:
    """The `full` protocol: one segment holding every sample. Raises `RecordingTooLongError` as soon as more than
    `max_samples` are read, so a refused recording never sits in memory whole."""
    parts, total = [], 0
    for block in blocks:
        total += len(block)
        if max_samples is not None and total > max_samples:
            raise RecordingTooLongError(total, max_samples)
        parts.append(block)
    if parts:
        yield 0, np.concatenate(parts)


def protocol_segments(
    blocks: Iterable[np.ndarray],
    protocol: Protocol,
    window: int = WINDOW_SAMPLES,
    hop: int = HOP_SAMPLES,
    max_samples: int | None = None,
) -> Iterator[WaveformSegment]:
    """The segments `protocol` scores from a stream of blocks (see the module docstring)."""
    if protocol == "windows":
        return window_segments(blocks, window, hop)
    if protocol == "4sec":
        return first_window_tiled(blocks, window)
    if protocol == "full":
        return whole_recording(blocks, max_samples)
    raise ValueError(f"unknown protocol {protocol!r}; choose from {PROTOCOLS}")
