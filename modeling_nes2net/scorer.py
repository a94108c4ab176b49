"""The one scoring path: segments of recordings -> batches -> logits. `Nes2NetDetector` (`nes2net detect`, the Space,
`nes2net demo`) and `nes2net evaluate` both score through it, so the paper's numbers and users' verdicts come from
the same code.

- The model is a `ModelCall`: `(input_values (batch, samples) float32, attention_mask (batch, samples) int64 or None)
  -> (logits (batch, num_labels) float32, frame log-odds or None)`, numpy in and out; the second item is, for a
  model with a frame head, each row's `(frames,)` log-odds over its real frames. `TorchModelCall` wraps a
  `Nes2NetForAudioClassification`; any other runtime (an ONNX Runtime session) plugs in with the same signature.
- `SegmentPool` chooses each batch from the segments waiting to be scored: the oldest one with the pooled segments
  closest to it in length (little padding; results flow in input order), at most `batch_size` of them and at most
  `max_batch_samples` padded samples, so three clips and a 2-hour file never share a batch: a segment over the budget
  goes alone. A batch is scored once the pool is full, or as soon as `batch_size` segments of the oldest one's length
  are pooled (a batch without padding, which a fuller pool could not improve: the windows of a long recording).
- `Segmenter` turns one recording into the segments the model scores: `AudioStream` decoding (soundfile and soxr,
  or ffmpeg) at the model's rate, then `protocols.protocol_segments`. `nes2net evaluate` cuts its trials with it.
- Under `windows`, a `Scorer` with `state_windows` scores a recording longer than one window from its front-end's
  states, encoded once in chunks (`state_windows`), instead of encoding every window: the same windows, each
  second encoded once instead of twice.
- `Scorer.score_many` streams recordings through the `Segmenter` (decoding in a background thread) and the pool,
  yielding per recording its segments' logits (`ScoredRecording`) or a `DetectionFailure` (one line naming the
  input), in input order. A bad input never stops the others; input that is not speech-like (`input_check`: too
  short, silence, a tone, noise, a broken scale) and non-finite logits are a failure, never a score.

Memory stays flat in the recording's length: decoding runs at most one batch ahead (a bounded queue), a long
recording's windows are scored a batch at a time (about three batches of 4.04 s windows in memory: 6.2 MB at batch
size 8), at most a pool of short clips waits to be batched, and the `full` protocol refuses a recording over
`max_full_seconds` before holding it whole.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import torch

from .audio import AudioInputError, AudioSource, AudioSourceLike, AudioStream, printable
from .input_check import SpeechLikeCheck
from .protocols import (
    HOP_SAMPLES,
    PROTOCOLS,
    WINDOW_SAMPLES,
    Protocol,
    RecordingTooLongError,
    WaveformSegment,
    protocol_segments,
)
from .decision import bonafide_score, log_odds
from .frontends_nes2net import length_mask

if TYPE_CHECKING:
    from .state_windows import RecordingStates, StateWindows

logger = logging.getLogger(__name__)

ModelOutput = tuple[np.ndarray, "list[np.ndarray] | None"]
ModelCall = Callable[[np.ndarray, "np.ndarray | None"], ModelOutput]
Aggregation = Literal["mean", "any"]
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)
ENVELOPE_SECONDS = 0.1  # one peak-amplitude point per 0.1 s
POOL_BATCHES = 4  # segments pooled to choose each batch from: POOL_BATCHES * batch_size
FULL_PROTOCOL_MAX_SECONDS = 600.0


@dataclass(frozen=True)
class DetectionFailure:
    """An input that could not be scored; `error` is one line naming it and the problem."""

    source: str
    error: str


@dataclass
class ScoredRecording:
    """The logits of one recording's segments: `starts` / `lengths` in samples, `logits` `(segments, num_labels)`,
    `samples` read, `envelope`, the peak absolute amplitude per `ENVELOPE_SECONDS`, and `frame_scores`, each
    segment's frame log-odds (None without a frame head)."""

    name: str
    starts: list[int]
    lengths: list[int]
    logits: np.ndarray
    samples: int
    envelope: np.ndarray
    frame_scores: list[np.ndarray] | None = None


def pad_waveforms(waveforms: Sequence[np.ndarray], always_mask: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """`(batch, longest)` zero-padded float32 and its `(batch, longest)` int64 attention mask, 1 on real samples
    (None when all lengths are equal, unless `always_mask`)."""
    lengths = [len(waveform) for waveform in waveforms]
    input_values = np.zeros((len(waveforms), max(lengths)), np.float32)
    for row, waveform in enumerate(waveforms):
        input_values[row, : len(waveform)] = waveform
    if min(lengths) == max(lengths) and not always_mask:
        return input_values, None
    return input_values, length_mask(torch.tensor(lengths), max(lengths)).to(torch.int64).numpy()


class TorchModelCall:
    """A `ModelCall` running a torch model on `device` with inputs in `dtype`, inside `autocast()` (for instance
    Accelerate's mixed precision)."""

    def __init__(
        self,
        model: torch.nn.Module,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> None:
        self.model, self.device, self.dtype, self.autocast = model, device, dtype, autocast

    @torch.inference_mode()
    def __call__(self, input_values: np.ndarray, attention_mask: np.ndarray | None) -> ModelOutput:
        values = torch.from_numpy(input_values).to(self.device, self.dtype)
        mask = None if attention_mask is None else torch.from_numpy(attention_mask).to(self.device)
        with self.autocast():
            output = self.model(input_values=values, attention_mask=mask)
        logits = output.logits.float().cpu().numpy()
        frame_logits = getattr(output, "frame_logits", None)
        if frame_logits is None:
            return logits, None
        lengths = torch.full((len(values),), values.shape[1]) if mask is None else mask.sum(dim=-1).cpu()
        return logits, frame_log_odds(frame_logits, self.model.frame_lengths(lengths).tolist())


def frame_log_odds(frame_logits: torch.Tensor, frames: list[int]) -> list[np.ndarray]:
    """`(batch, frames, num_labels)` frame logits -> each row's log-odds over its first `frames[row]` (real) frames."""
    frame_odds = log_odds(frame_logits.float().flatten(0, 1)).unflatten(0, frame_logits.shape[:2])
    return [row[:count].cpu().numpy() for row, count in zip(frame_odds, frames)]


class SegmentPool:
    """Segments waiting to be scored, oldest first, and the choice of each batch (see the module docstring)."""

    def __init__(self, batch_size: int, max_batch_samples: int) -> None:
        if batch_size < 1 or max_batch_samples < 1:
            raise ValueError(
                f"batch_size and max_batch_samples must be positive, got {batch_size}, {max_batch_samples}"
            )
        self.batch_size, self.max_batch_samples = batch_size, max_batch_samples
        self._segments: list[tuple[Hashable, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self._segments)

    def add(self, key: Hashable, waveform: np.ndarray) -> None:
        self._segments.append((key, waveform))

    def has_even_batch(self) -> bool:
        """Whether `batch_size` pooled segments have the oldest one's length (a batch needing no padding)."""
        oldest = len(self._segments[0][1]) if self._segments else -1
        return sum(len(waveform) == oldest for _, waveform in self._segments) >= self.batch_size

    def discard(self, keep: Callable[[Hashable], bool]) -> None:
        """Drop the segments whose key fails `keep`."""
        self._segments = [entry for entry in self._segments if keep(entry[0])]

    def take_batch(self) -> list[tuple[Hashable, np.ndarray]]:
        """Remove and return one batch: the oldest segment and, while the batch and its padded size allow, the
        pooled segments nearest to it in length."""
        by_length = sorted(range(len(self._segments)), key=lambda position: len(self._segments[position][1]))
        low = high = by_length.index(0)  # the chosen run by_length[low : high + 1] around the oldest
        length = lambda rank: len(self._segments[by_length[rank]][1])  # noqa: E731
        while high - low + 1 < self.batch_size:
            below = length(low - 1) if low > 0 else None
            above = length(high + 1) if high + 1 < len(by_length) else None
            if below is None and above is None:
                break
            grow_up = below is None or (above is not None and above - length(high) <= length(low) - below)
            longest = above if grow_up else length(high)
            if (high - low + 2) * longest > self.max_batch_samples:
                break
            low, high = (low, high + 1) if grow_up else (low - 1, high)
        chosen = sorted(by_length[low : high + 1], reverse=True)
        return [self._segments.pop(position) for position in chosen]

    def score_batch(self, model_call: ModelCall) -> list[tuple[Hashable, np.ndarray, np.ndarray | None]]:
        """Take one batch and score it: `(key, (num_labels,) logits, (frames,) frame log-odds or None)` per
        segment."""
        batch = self.take_batch()
        logits, frame_scores = model_call(*pad_waveforms([waveform for _, waveform in batch]))
        frame_scores = frame_scores if frame_scores is not None else [None] * len(batch)
        return [(key, row, frames) for (key, _), row, frames in zip(batch, logits, frame_scores)]


def aggregate(logits: np.ndarray, aggregation: Aggregation = "mean") -> tuple[float, float]:
    """`(segments, num_labels)` logits -> one recording's `(score, log_odds)`: `mean` averages the segments' bona
    fide logits and log-odds; `any` reports the most spoof-like segment's."""
    tensor = torch.from_numpy(np.asarray(logits, np.float32))
    scores, odds = bonafide_score(tensor).numpy(), log_odds(tensor).numpy()
    if aggregation == "mean":
        return float(scores.mean()), float(odds.mean())
    if aggregation == "any":
        worst = int(odds.argmin())
        return float(scores[worst]), float(odds[worst])
    raise ValueError(f"unknown aggregation {aggregation!r}; choose from {AGGREGATIONS}")


def min_samples_of(model: torch.nn.Module) -> int:
    """The fewest samples that give `model` (with a `frame_lengths` method) at least one feature frame."""
    lengths = model.frame_lengths(torch.arange(1, 16_001))
    enough = torch.nonzero(lengths >= 1)
    return int(enough[0]) + 1 if len(enough) else 16_001


def pass_bytes(model: torch.nn.Module, samples: int) -> int:
    """A lower bound of the memory one float32 forward pass of a `Nes2NetForAudioClassification` over `samples`
    samples needs: the waveform and the front-end's activations (`activation_bytes`: its widest activation, its
    hidden states, one layer's attention scores)."""
    all_layers = model.config.layer_merge != "last"
    return 4 * samples + model.nes2net.frontend.activation_bytes(samples, all_layers)


class _TrackedBlocks:
    """Passes blocks through while recording their sample count, a peak-amplitude envelope and the features of the
    speech-like check (`check`)."""

    def __init__(self, blocks: Iterator[np.ndarray], sampling_rate: int, name: str) -> None:
        self._blocks = blocks
        self.check = SpeechLikeCheck(name, sampling_rate)
        self._step = max(1, round(ENVELOPE_SECONDS * sampling_rate))
        self._peaks: list[np.ndarray] = []
        self._remainder = np.zeros(0, np.float32)
        self.samples = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self._blocks:
            self.samples += len(block)
            self.check.update(block)
            pending = np.concatenate([self._remainder, np.abs(block)])
            whole = len(pending) // self._step * self._step
            self._peaks.append(pending[:whole].reshape(-1, self._step).max(axis=1))
            self._remainder = pending[whole:]
            yield block

    def envelope(self) -> np.ndarray:
        tail = [self._remainder.max(keepdims=True)] if len(self._remainder) else []
        return np.concatenate(self._peaks + tail) if self._peaks or tail else np.zeros(0, np.float32)

    def close(self) -> None:
        close = getattr(self._blocks, "close", None)
        if close is not None:
            close()


@dataclass
class _Pending:
    """Bookkeeping of one input while its segments are being scored."""

    name: str
    starts: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    logits: dict[int, np.ndarray] = field(default_factory=dict)
    frame_scores: dict[int, np.ndarray] = field(default_factory=dict)
    ended: bool = False
    samples: int = 0
    envelope: np.ndarray | None = None
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is not None or (self.ended and len(self.logits) == len(self.starts))

    def outcome(self) -> ScoredRecording | DetectionFailure:
        if self.error is not None:
            return DetectionFailure(self.name, self.error)
        segments = range(len(self.starts))
        logits = np.stack([self.logits[index] for index in segments])
        frames = [self.frame_scores[index] for index in segments] if self.frame_scores else None
        return ScoredRecording(self.name, self.starts, self.lengths, logits, self.samples, self.envelope, frames)


class Segmenter:
    """How one recording becomes the segments the model scores: decoded by `AudioStream` at `sampling_rate`, cut by
    `protocols.protocol_segments`, refused in one line when too short for the model or too long for `full`.
    `nes2net detect` (through `Scorer`) and `nes2net evaluate` cut every recording with it.

    Args:
        sampling_rate: the rate the model expects; every input is decoded and resampled to it.
        min_samples: the fewest samples the model can score (see `min_samples_of`).
        protocol: `"windows"`, `"full"` or `"4sec"` (see `protocols`).
        window: window length in samples (windows protocol, and the `4sec` crop).
        hop: hop between window starts in samples (windows protocol).
        max_full_seconds: the `full` protocol refuses longer recordings (they would sit in memory whole).
        pass_bytes: samples -> memory one forward pass over them needs (see `pass_bytes`), for that message.
    """

    def __init__(
        self,
        *,
        sampling_rate: int,
        min_samples: int = 1,
        protocol: Protocol = "windows",
        window: int = WINDOW_SAMPLES,
        hop: int = HOP_SAMPLES,
        max_full_seconds: float = FULL_PROTOCOL_MAX_SECONDS,
        pass_bytes: Callable[[int], int] | None = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; choose from {PROTOCOLS}")
        if window < 1 or hop < 1:
            raise ValueError(f"window and hop must be positive, got {window}, {hop}")
        if protocol != "full" and window < min_samples:
            raise ValueError(f"a window of {window} samples ({window / sampling_rate:g} s) is shorter than the "
                             f"{min_samples} samples ({min_samples / sampling_rate:g} s) the model needs")
        self.sampling_rate, self.min_samples = sampling_rate, min_samples
        self.protocol, self.window, self.hop = protocol, window, hop
        self.max_full_seconds = max_full_seconds
        self.pass_bytes = pass_bytes

    def blocks(self, source: AudioSource) -> _TrackedBlocks:
        """The decoded blocks of one input at `sampling_rate`, counted and enveloped as they pass."""
        return _TrackedBlocks(iter(AudioStream(source, target_rate=self.sampling_rate)), self.sampling_rate,
                              source.display_name)

    def segments(self, blocks: _TrackedBlocks, name: str) -> Iterator[tuple[int, np.ndarray]]:
        """The protocol's `(start, waveform)` segments of one input's blocks; `AudioInputError` (naming `name`) for
        one too short for the model or too long for `full`."""
        max_samples = round(self.max_full_seconds * self.sampling_rate)
        try:
            for start, waveform in protocol_segments(blocks, self.protocol, self.window, self.hop, max_samples):
                if blocks.samples < self.min_samples:
                    raise AudioInputError(
                        name,
                        f"too short to score ({blocks.samples} samples at {self.sampling_rate} Hz; "
                        f"the model needs at least {self.min_samples})",
                    )
                yield start, waveform
        except RecordingTooLongError as error:
            need = ""
            if self.pass_bytes is not None:
                need = f" (one pass over the {error.samples / self.sampling_rate:g} s read so far needs at least " \
                       f"{self.pass_bytes(error.samples) / 2**30:.1f} GiB, and more for the rest)"
            raise AudioInputError(
                name,
                f"longer than {self.max_full_seconds:g} s, the limit of one pass under protocol 'full'{need}; "
                "score it with protocol 'windows' (bounded memory) or raise the limit (--max-full-seconds)",
            ) from None

    def cut(self, source: AudioSourceLike) -> list[WaveformSegment]:
        """Every segment's `(start, (samples,) waveform)` of one input, in order (evaluation holds a trial's segments
        at once). Raises `AudioInputError` naming it."""
        source = AudioSource.wrap(source)
        blocks = self.blocks(source)
        try:
            return list(self.segments(blocks, source.display_name))
        finally:
            blocks.close()


class Scorer:
    """Scores recordings with a `ModelCall`, each cut by a `Segmenter` (see the module docstring).

    Args:
        model_call: the model, numpy batch and mask -> logits.
        segmenter: how a recording becomes segments (decoding, protocol, window and hop, the model's limits).
        batch_size: segments per forward pass at most.
        max_batch_samples: padded samples per forward pass at most (default `batch_size * window`); a longer
            segment is scored alone.
        state_windows: under the `windows` protocol, score the windows of every recording longer than one window
            from its front-end states, encoded once (`state_windows.StateWindows`); None: every window is encoded.
    """

    def __init__(
        self,
        model_call: ModelCall,
        segmenter: Segmenter,
        *,
        batch_size: int = 8,
        max_batch_samples: int | None = None,
        state_windows: StateWindows | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if state_windows is not None and segmenter.protocol != "windows":
            raise ValueError(f"state_windows score the windows protocol, not {segmenter.protocol!r}")
        self.model_call, self.segmenter, self.batch_size = model_call, segmenter, batch_size
        self.max_batch_samples = max_batch_samples or batch_size * segmenter.window
        self.state_windows = state_windows

    def score_many(self, sources: Iterable[AudioSourceLike]) -> Iterator[ScoredRecording | DetectionFailure]:
        """Score many inputs (paths, bytes, `(array, rate)` tuples, `AudioSource`s): one `ScoredRecording` or
        `DetectionFailure` per input, in order. Decoding runs in a background thread, overlapped with the model."""
        pool_size = POOL_BATCHES * self.batch_size
        items: queue.Queue = queue.Queue(maxsize=self.batch_size)  # decoding runs at most a batch ahead
        stop = threading.Event()
        producer = threading.Thread(target=self._produce, args=(sources, items, stop), daemon=True)
        producer.start()
        pending: dict[int, _Pending] = {}
        recordings: dict[int, RecordingStates] = {}  # under state_windows: each recording's windows until its end
        pool = SegmentPool(self.batch_size, self.max_batch_samples)
        next_index, exhausted = 0, False
        try:
            while not exhausted:
                kind, *payload = items.get()
                if kind == "fatal":
                    raise payload[0]
                if kind == "done":
                    exhausted = True
                elif kind == "segment":
                    index, name, start, waveform = payload
                    state = pending.setdefault(index, _Pending(name))
                    if self.state_windows is None:
                        pool.add((index, len(state.starts)), waveform)
                    elif state.error is None:
                        recording = recordings.setdefault(index, self.state_windows.recording())
                        for segment, row, frames in recording.add(len(state.starts), start, waveform):
                            self._store(state, segment, row, frames, pool, index)
                    state.starts.append(start)
                    state.lengths.append(len(waveform))
                elif kind == "end":
                    index, name, samples, envelope = payload
                    state = pending.setdefault(index, _Pending(name))
                    state.ended, state.samples, state.envelope = True, samples, envelope
                    recording = recordings.pop(index, None)
                    if recording is not None and state.error is None:
                        if recording.segments == 1:  # no longer than one window: one segment, whole, pooled
                            pool.add((index, 0), recording.first)
                        else:
                            for segment, row, frames in recording.finish():
                                self._store(state, segment, row, frames, pool, index)
                else:  # "error"
                    index, name, message = payload
                    pending.setdefault(index, _Pending(name)).error = message
                    pool.discard(lambda key: key[0] != index)
                    recordings.pop(index, None)
                # Score when the pool is full or holds a batch without padding, at the end, or when a batch is
                # ready and decoding lags behind.
                ready = len(pool) >= self.batch_size and (items.empty() or pool.has_even_batch())
                while len(pool) >= pool_size or (exhausted and len(pool)) or ready:
                    for (index, segment), row, frames in pool.score_batch(self.model_call):
                        self._store(pending[index], segment, row, frames, pool, index)
                    ready = len(pool) >= self.batch_size and (items.empty() or pool.has_even_batch())
                while next_index in pending and pending[next_index].complete:
                    yield pending.pop(next_index).outcome()
                    next_index += 1
        finally:
            stop.set()
            producer.join()

    @staticmethod
    def _store(state: _Pending, segment: int, logits: np.ndarray, frames: np.ndarray | None, pool: SegmentPool,
               index: int) -> None:
        if state.error is not None:
            return
        if not np.isfinite(logits).all():
            state.error = (f"{printable(state.name)}: the model gave non-finite scores (NaN or infinite logits): "
                           "its weights or the audio are broken; no verdict")
            pool.discard(lambda key: key[0] != index)
            return
        state.logits[segment] = logits
        if frames is not None:
            state.frame_scores[segment] = frames

    def _produce(self, sources: Iterable[AudioSourceLike], items: queue.Queue, stop: threading.Event) -> None:
        """Producer thread: decode each input and put its segments, then `end` or `error`, then `done`."""

        def put(*item) -> bool:
            while not stop.is_set():
                try:
                    items.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            for index, source in enumerate(sources):
                source = AudioSource.wrap(source)
                name = source.display_name
                blocks = self.segmenter.blocks(source)
                try:
                    for start, waveform in self.segmenter.segments(blocks, name):
                        if not put("segment", index, name, start, waveform):
                            return
                    blocks.check.finish()
                    if not put("end", index, name, blocks.samples, blocks.envelope()):
                        return
                except AudioInputError as error:
                    put("error", index, name, str(error))
                except Exception as error:  # one broken input must not stop the others
                    logger.debug("unexpected error on %s", name, exc_info=True)
                    put("error", index, name, f"{printable(name)}: unexpected {type(error).__name__}: {error}")
                finally:
                    blocks.close()
            put("done")
        except BaseException as error:  # a bad `sources` iterable: re-raised in the consumer
            put("fatal", error)
