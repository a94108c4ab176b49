"""Spoofing detection on real recordings: any length, any format, many files, bounded memory.

```python
from modeling_nes2net.detection import Nes2NetDetector

detector = Nes2NetDetector.from_pretrained("path/to/model")  # or a Hub id; None: the embedded default model
result = detector.detect("podcast.m4a")                      # a path, bytes, or an array with sampling_rate=
print(result.label, result.bonafide_probability, result.segments[0])
for outcome in detector.detect_many(paths):                  # batched, in order; bad files give DetectionFailure
    print(outcome)
```

Protocols (what reaches the model):
- `full`: the whole recording in one forward pass (the paper's In-the-Wild protocol; `pipeline(...)` does this).
  Memory and the front-end's attention cost grow with length: meant for clips, not podcasts.
- `4sec`: the first 64,600 samples, tiled when shorter (the paper's ASVspoof 2019/2021 protocol).
- `windows` (default): windows of `window` samples every `hop` samples, the last one aligned to the end of the
  recording; a recording no longer than one window is scored whole (exactly as `full`). The default window,
  64,600 samples (4.04 s), is the crop every released model was trained on, so each window looks like training
  data; the default 50% hop lets every instant (but the first and last half window) be seen by two windows, gives
  a 2 s timeline resolution and costs twice the compute of back-to-back windows, the usual trade-off.

Scores (see `modeling_nes2net.scoring`; higher always means more bona fide):
- `score`: the bona fide logit, the raw score the ASVspoof evaluation tools expect.
- `log_odds`: `log p(bonafide) / p(spoof)` of the model's calibrated logits; the decision is `scoring.verdict`:
  `bonafide` when `log_odds > threshold`, 0 (the argmax of the logits, what `pipeline` says) unless given.
- `bonafide_probability`: `sigmoid(log_odds)`.

Aggregation of windows into one decision (`aggregation`):
- `mean` (default): the mean of the windows' log-odds (and of their scores). Its scale is that of one window, so one
  calibrated threshold serves every length, and the false-alarm rate does not grow with duration.
- `any`: the most spoof-like window decides (its log-odds and score are reported), so a recording is flagged as
  soon as any window is spoof: the rule for partially spoofed audio (a synthetic sentence spliced into a real
  interview), at the price of more false alarms on long recordings.

Where (`timeline`, `stretches`): a model with a frame head (`Nes2NetForAudioFrameClassification`) gives log-odds per
10 ms, windows covering the same instant averaged; without one, each 10 ms takes the mean of the windows covering it.
Stretches of at least 0.2 s below the threshold are listed, and a bona fide verdict that would hide one reads
`partly spoofed` instead: on dev splices, flagging an utterance by its most spoof-like stretch separated partial
spoofs best (`benchmarks/localisation.py`).

Memory stays bounded: a background thread decodes block by block (`AudioStream`) and cuts windows into a bounded
queue, overlapped with the model; the main thread keeps a pool of up to `4 * batch_size` segments and, whenever it is
full (or holds a batch while decoding lags behind), scores one batch: the oldest pooled segment with the pooled
segments closest to it in length, padded to the longest with an attention mask. Similar lengths keep padding small;
taking the oldest keeps results flowing in input order. At most two pools of segments are in memory (16.5 MB of
4.04 s windows at batch size 8), whatever the length; only the `full` protocol holds a whole recording.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from .audio import AudioInputError, AudioSource, AudioSourceLike, AudioStream
from .localisation import CELL_SECONDS, Stretch, frame_cell_scores, spoofed_stretches, window_cell_scores
from .modeling_nes2net import Nes2NetForAudioClassification, Nes2NetForAudioFrameClassification
from .scoring import DECISION_THRESHOLD, bonafide_score, log_odds, verdict

logger = logging.getLogger(__name__)

Protocol = Literal["full", "4sec", "windows"]
Aggregation = Literal["mean", "any"]
PROTOCOLS: tuple[str, ...] = ("full", "4sec", "windows")
AGGREGATIONS: tuple[str, ...] = ("mean", "any")
QUANTIZATIONS: tuple[str, ...] = ("int8", "bf16")

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"
WINDOW_SAMPLES = 64_600
HOP_SAMPLES = WINDOW_SAMPLES // 2
ENVELOPE_SECONDS = 0.1  # one peak-amplitude point per 0.1 s
SILENCE_PEAK = 1.0 / 32768  # at most one 16-bit step: digital silence
POOL_BATCHES = 4  # segments pooled to choose each batch from: POOL_BATCHES * batch_size
FULL_PROTOCOL_WARNING_SECONDS = 600.0
PARTLY_SPOOFED = "partly spoofed"
MIN_STRETCH_SECONDS = 0.2  # the shortest spoofed stretch reported (the splices builder's shortest piece)


class ModelNotFoundError(FileNotFoundError):
    """No model folder where one was expected (for instance the embedded default model is not installed)."""


@dataclass(frozen=True)
class Segment:
    """One scored stretch of a recording: `start` and `end` in seconds, its bona fide logit `score`, its
    `log_odds` and `probability` (of bona fide speech)."""

    start: float
    end: float
    score: float
    log_odds: float
    probability: float


@dataclass
class DetectionResult:
    """The verdict on one recording.

    Attributes:
        source: the input's name (its path, `<bytes>` or `<array>`).
        label: `"bonafide"` or `"spoof"`: `scoring.verdict(log_odds, threshold)`; `"partly spoofed"` when that says
            bona fide but a stretch of the timeline scores below the threshold (see `stretches`).
        bonafide_probability: `sigmoid(log_odds)`.
        score: the bona fide logit, aggregated over segments: the score ASVspoof tools expect.
        log_odds: `log p(bonafide) / p(spoof)`, aggregated over segments; compared with `threshold`.
        threshold: the decision threshold on the log-odds scale.
        protocol: `"full"`, `"4sec"` or `"windows"`.
        aggregation: how segments were combined (`"mean"` or `"any"`); None with a single segment.
        duration: seconds of 16 kHz audio that reached the model (before `4sec` tiling; `4sec` reads at most 4.04 s).
        segments: the timeline, one `Segment` per scored window (a single one for `full` and `4sec`).
        envelope: peak absolute amplitude per `ENVELOPE_SECONDS` of the audio read, for plotting.
        timeline: log-odds per 10 ms (`localisation.CELL_SECONDS`): the frame head's where the model has one
            (`Nes2NetForAudioFrameClassification`), else the mean of the windows covering each instant; None for a
            single window without a frame head.
        stretches: the stretches of at least `MIN_STRETCH_SECONDS` whose timeline falls below the threshold.
    """

    source: str
    label: str
    bonafide_probability: float
    score: float
    log_odds: float
    threshold: float
    protocol: str
    aggregation: str | None
    duration: float
    segments: list[Segment]
    envelope: np.ndarray = field(repr=False, compare=False)
    timeline: np.ndarray | None = field(default=None, repr=False, compare=False)
    stretches: list[Stretch] = field(default_factory=list)

    @property
    def is_spoof(self) -> bool:
        """Spoofed as a whole or in part."""
        return self.label != "bonafide"

    def to_dict(self, include_segments: bool = True) -> dict:
        """A JSON-ready dict (no envelope); segments as a list of dicts when `include_segments`."""
        result = {
            "file": self.source,
            "label": self.label,
            "bonafide_probability": self.bonafide_probability,
            "score": self.score,
            "log_odds": self.log_odds,
            "threshold": self.threshold,
            "protocol": self.protocol,
            "aggregation": self.aggregation,
            "duration": self.duration,
        }
        if include_segments:
            result["segments"] = [vars(segment) for segment in self.segments]
            result["stretches"] = [vars(stretch) for stretch in self.stretches]
        return result


# The columns of tabular outputs (`detect --format csv`, the Space's table): one row per result, the keys of
# `DetectionResult.to_dict(include_segments=False)`; one row per segment with `--segments`.
RESULT_COLUMNS = ("file", "label", "bonafide_probability", "score", "log_odds", "threshold", "protocol",
                  "aggregation", "duration")
SEGMENT_COLUMNS = ("file", "start", "end", "label", "probability", "score", "log_odds")


@dataclass(frozen=True)
class DetectionFailure:
    """An input that could not be scored; `error` is one line naming it and the problem."""

    source: str
    error: str


def resolve_model_path(model_name_or_path: str | None) -> str:
    """`model_name_or_path`, or the embedded default model's folder; a clear error when that is not installed, or
    when a local path (one that cannot be a Hub id `owner/name`) names no folder."""
    if model_name_or_path is None:
        if not (DEFAULT_MODEL_DIR / "config.json").is_file():
            raise ModelNotFoundError(
                f"no default model is installed at {DEFAULT_MODEL_DIR}; convert a released Nes2Net checkpoint with "
                "`nes2net convert CHECKPOINT OUTPUT_DIR` and pass `--model OUTPUT_DIR` (or a Hub model id)"
            )
        return str(DEFAULT_MODEL_DIR)
    name = str(model_name_or_path)
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name
    if looks_local and not Path(name).expanduser().is_dir():
        raise ModelNotFoundError(f"{name}: no such model folder (and not a Hub id, which reads owner/name)")
    return name


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`"auto"` / None -> CUDA when available, else CPU; a clear error when CUDA is asked for but absent."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was requested (--device cuda) but no CUDA device is available to torch")
    return device


def quantize_for_inference(model: torch.nn.Module, quantize: str | None, device: torch.device) -> torch.nn.Module:
    """The opt-in fast path, applied in place. `"bf16"`: bfloat16 weights and inputs; `"int8"`: dynamic int8
    quantisation of every `nn.Linear` (CPU only). On an XLS-R sized model (`benchmarks/detect.py`, a CPU with
    AVX512-BF16) both run 2.3-4x faster than float32 and bf16 moves the bona fide probability about 6x less
    (max 0.002 vs 0.014); without native bf16 instructions bf16 is emulated and slow, and int8 is the choice."""
    if quantize is None:
        return model
    if quantize == "int8":
        if device.type != "cpu":
            raise ValueError("int8 dynamic quantisation runs on the CPU only; use --device cpu or --quantize bf16")
        with warnings.catch_warnings():  # torch.ao's eager quantisation warns that it moves to torchao
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    if quantize == "bf16":
        return model.to(torch.bfloat16)
    raise ValueError(f"unknown quantization {quantize!r}; choose from {QUANTIZATIONS}")


class _TrackedBlocks:
    """Passes 16 kHz blocks through while recording their sample count and a peak-amplitude envelope."""

    def __init__(self, blocks: Iterator[np.ndarray], sampling_rate: int) -> None:
        self._blocks = blocks
        self._step = max(1, round(ENVELOPE_SECONDS * sampling_rate))
        self._peaks: list[np.ndarray] = []
        self._remainder = np.zeros(0, np.float32)
        self.samples = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self._blocks:
            self.samples += len(block)
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


def window_segments(blocks: Iterable[np.ndarray], window: int, hop: int) -> Iterator[tuple[int, np.ndarray]]:
    """Cut a stream of blocks into `(start_sample, (window,) waveform)` windows every `hop` samples, plus one
    aligned to the end when the hops do not reach it; a stream shorter than `window` is one segment, whole.
    Holds at most one window plus one block."""
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


def first_window_tiled(blocks: Iterable[np.ndarray], window: int) -> Iterator[tuple[int, np.ndarray]]:
    """The paper's `4sec` protocol: the first `window` samples, tiled from the start when the stream is shorter.
    Stops reading once `window` samples are in."""
    parts, total = [], 0
    for block in blocks:
        parts.append(block)
        total += len(block)
        if total >= window:
            break
    if total:
        yield 0, np.resize(np.concatenate(parts)[:window], window)


def whole_recording(blocks: Iterable[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
    """The paper's `full` protocol: one segment holding every sample."""
    parts = list(blocks)
    if parts:
        yield 0, np.concatenate(parts)


@dataclass
class _FileState:
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


class Nes2NetDetector:
    """Scores recordings with a `Nes2NetForAudioClassification` (see the module docstring for the protocols,
    scores and aggregation rules).

    Args:
        model: the model; it is changed in place (eval mode, moved to `device`, quantised when asked).
        protocol: `"windows"` (default), `"full"` or `"4sec"`.
        window: window length in samples at the model's rate (windows protocol, and the `4sec` crop).
        hop: hop between window starts in samples (windows protocol).
        batch_size: segments per forward pass.
        aggregation: `"mean"` or `"any"`, how windows combine into one decision.
        threshold: decision threshold on the calibrated log-odds; None: `scoring.DECISION_THRESHOLD` (0).
        device: `"auto"` (CUDA when available), `"cpu"`, `"cuda"`, ...
        quantize: None, `"int8"` (CPU) or `"bf16"`: the opt-in fast path, see `quantize_for_inference`.
    """

    def __init__(
        self,
        model: Nes2NetForAudioClassification,
        *,
        protocol: Protocol = "windows",
        window: int = WINDOW_SAMPLES,
        hop: int = HOP_SAMPLES,
        batch_size: int = 8,
        aggregation: Aggregation = "mean",
        threshold: float | None = None,
        device: str | torch.device | None = "auto",
        quantize: str | None = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; choose from {PROTOCOLS}")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r}; choose from {AGGREGATIONS}")
        if window < 1 or hop < 1 or batch_size < 1:
            raise ValueError(f"window, hop and batch_size must be positive, got {window}, {hop}, {batch_size}")
        self.config = model.config
        self.sampling_rate = model.config.sampling_rate
        self.protocol, self.window, self.hop, self.batch_size = protocol, window, hop, batch_size
        self.aggregation = aggregation
        self.threshold = float(threshold if threshold is not None else DECISION_THRESHOLD)
        self.min_samples = _min_samples(model)
        self.device = resolve_device(device)
        self.quantize = quantize
        self.model = quantize_for_inference(model.eval().to(self.device), quantize, self.device)
        self.input_dtype = torch.bfloat16 if quantize == "bf16" else torch.float32

    @classmethod
    def from_pretrained(
        cls, model_name_or_path: str | None = None, *, device: str | None = "auto", **options
    ) -> Nes2NetDetector:
        """Load a model folder or Hub id (None: the embedded default model) and wrap it; `options` are
        `Nes2NetDetector`'s keyword arguments."""
        path = resolve_model_path(model_name_or_path)
        architectures = Nes2NetForAudioClassification.config_class.from_pretrained(path).architectures or []
        framed = Nes2NetForAudioFrameClassification.__name__ in architectures
        model_class = Nes2NetForAudioFrameClassification if framed else Nes2NetForAudioClassification
        model = model_class.from_pretrained(path)
        return cls(model, device=device, **options)

    def detect(self, audio: AudioSourceLike, sampling_rate: int | None = None) -> DetectionResult:
        """Score one input: a path, encoded bytes, or a waveform with its `sampling_rate`.

        Raises `AudioInputError` (one line: the input and the problem) when it cannot be scored.
        """
        (outcome,) = self.detect_many([AudioSource.wrap(audio, sampling_rate)])
        if isinstance(outcome, DetectionFailure):
            raise AudioInputError(outcome.source, outcome.error.removeprefix(f"{outcome.source}: "))
        return outcome

    def detect_many(self, sources: Iterable[AudioSourceLike]) -> Iterator[DetectionResult | DetectionFailure]:
        """Score many inputs in batches, yielding one `DetectionResult` or `DetectionFailure` per input, in order.

        Inputs are paths, bytes, `(array, sampling_rate)` tuples or `AudioSource`s. A bad input never stops the
        others. Decoding runs in a background thread, overlapped with the model.
        """
        pool_size = POOL_BATCHES * self.batch_size
        items: queue.Queue = queue.Queue(maxsize=pool_size)  # decoding runs at most a pool ahead
        stop = threading.Event()
        producer = threading.Thread(target=self._produce, args=(sources, items, stop), daemon=True)
        producer.start()
        files: dict[int, _FileState] = {}
        pool: list[tuple[int, int, np.ndarray]] = []  # (file index, segment index, waveform), oldest first
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
                    state = files.setdefault(index, _FileState(name))
                    pool.append((index, len(state.starts), waveform))
                    state.starts.append(start)
                    state.lengths.append(len(waveform))
                elif kind == "end":
                    index, name, samples, envelope = payload
                    state = files.setdefault(index, _FileState(name))
                    state.ended, state.samples, state.envelope = True, samples, envelope
                else:  # "error"
                    index, name, message = payload
                    files.setdefault(index, _FileState(name)).error = message
                    pool = [entry for entry in pool if entry[0] != index]
                # Score when the pool is full, at the end, or when a batch is ready and decoding lags behind.
                lagging = len(pool) >= self.batch_size and items.empty()
                while len(pool) >= pool_size or (exhausted and pool) or lagging:
                    self._score_batch(pool, files)
                    lagging = len(pool) >= self.batch_size and items.empty()
                while next_index in files and files[next_index].complete:
                    yield self._finish(files.pop(next_index))
                    next_index += 1
        finally:
            stop.set()
            producer.join()

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
                blocks = _TrackedBlocks(iter(AudioStream(source, target_rate=self.sampling_rate)), self.sampling_rate)
                try:
                    for start, waveform in self._segments(blocks, name):
                        if not put("segment", index, name, start, waveform):
                            return
                    if not put("end", index, name, blocks.samples, blocks.envelope()):
                        return
                except AudioInputError as error:
                    put("error", index, name, str(error))
                except Exception as error:  # one broken input must not stop the others
                    logger.debug("unexpected error on %s", name, exc_info=True)
                    put("error", index, name, f"{name}: unexpected {type(error).__name__}: {error}")
                finally:
                    blocks.close()
            put("done")
        except BaseException as error:  # a bad `sources` iterable: re-raised in the consumer
            put("fatal", error)

    def _segments(self, blocks: _TrackedBlocks, name: str) -> Iterator[tuple[int, np.ndarray]]:
        if self.protocol == "windows":
            segments = window_segments(blocks, self.window, self.hop)
        elif self.protocol == "4sec":
            segments = first_window_tiled(blocks, self.window)
        else:
            segments = whole_recording(blocks)
        for start, waveform in segments:
            if blocks.samples < self.min_samples:
                raise AudioInputError(
                    name,
                    f"too short to score ({blocks.samples} samples at {self.sampling_rate} Hz; "
                    f"the model needs at least {self.min_samples})",
                )
            if self.protocol == "full" and len(waveform) > FULL_PROTOCOL_WARNING_SECONDS * self.sampling_rate:
                logger.warning("%s: scoring %.0f s in one pass (protocol 'full'); 'windows' bounds memory",
                               name, len(waveform) / self.sampling_rate)
            yield start, waveform

    def _score_batch(self, pool: list[tuple[int, int, np.ndarray]], files: dict[int, _FileState]) -> None:
        """Take one batch out of `pool` (oldest first): the oldest segment and the segments nearest to it in
        length; score it and store each segment's logits in its file."""
        by_length = sorted(range(len(pool)), key=lambda position: len(pool[position][2]))
        oldest = by_length.index(0)
        first = max(0, min(oldest - self.batch_size // 2, len(pool) - self.batch_size))
        chosen = sorted(by_length[first : first + self.batch_size], reverse=True)
        batch = [pool.pop(position) for position in chosen]
        logits, frame_scores = self.score_frames([waveform for _, _, waveform in batch])
        for row, (index, segment, _) in enumerate(batch):
            files[index].logits[segment] = logits[row]
            if frame_scores is not None:
                files[index].frame_scores[segment] = frame_scores[row]

    def score_waveforms(self, waveforms: list[np.ndarray]) -> np.ndarray:
        """Logits `(len(waveforms), num_labels)` of 16 kHz mono waveforms, in one batch padded to the longest with
        an attention mask (none when all lengths are equal)."""
        return self.score_frames(waveforms)[0]

    @torch.inference_mode()
    def score_frames(self, waveforms: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """`score_waveforms`' logits and, for a model with a frame head, each waveform's frame log-odds `(frames,)`
        (its real frames only); None otherwise."""
        lengths = [len(waveform) for waveform in waveforms]
        input_values = torch.zeros(len(waveforms), max(lengths))
        for row, waveform in enumerate(waveforms):
            input_values[row, : len(waveform)] = torch.from_numpy(waveform)
        attention_mask = None
        if min(lengths) != max(lengths):
            attention_mask = (torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]).long()
            attention_mask = attention_mask.to(self.device)
        input_values = input_values.to(self.device, self.input_dtype)
        output = self.model(input_values=input_values, attention_mask=attention_mask)
        logits = output.logits.float().cpu().numpy()
        if not isinstance(self.model, Nes2NetForAudioFrameClassification):
            return logits, None
        frames = self.model.frame_lengths(torch.tensor(lengths)).tolist()
        frame_odds = log_odds(output.frame_logits.float().flatten(0, 1)).unflatten(0, output.frame_logits.shape[:2])
        return logits, [row[:count].cpu().numpy() for row, count in zip(frame_odds, frames)]

    def _finish(self, state: _FileState) -> DetectionResult | DetectionFailure:
        if state.error is not None:
            return DetectionFailure(state.name, state.error)
        envelope = state.envelope
        if not len(envelope) or envelope.max() <= SILENCE_PEAK:
            return DetectionFailure(
                state.name, f"{state.name}: digital silence (no sample above one 16-bit step), nothing to score"
            )
        logits = torch.from_numpy(np.stack([state.logits[i] for i in range(len(state.starts))]))
        scores, odds = bonafide_score(logits).numpy(), log_odds(logits).numpy()
        rate = self.sampling_rate
        segments = [
            Segment(start / rate, (start + length) / rate, float(score), float(odd), _sigmoid(float(odd)))
            for start, length, score, odd in zip(state.starts, state.lengths, scores, odds)
        ]
        if len(segments) == 1:
            aggregation, score, odd = None, float(scores[0]), float(odds[0])
        elif self.aggregation == "mean":
            aggregation, score, odd = "mean", float(scores.mean()), float(odds.mean())
        else:
            worst = int(odds.argmin())
            aggregation, score, odd = "any", float(scores[worst]), float(odds[worst])
        timeline = self._timeline(state, segments)
        stretches = [] if timeline is None else spoofed_stretches(timeline, self.threshold, MIN_STRETCH_SECONDS)
        label = verdict(odd, self.threshold)
        return DetectionResult(
            source=state.name,
            label=PARTLY_SPOOFED if label == "bonafide" and stretches else label,
            bonafide_probability=_sigmoid(odd),
            score=score,
            log_odds=odd,
            threshold=self.threshold,
            protocol=self.protocol,
            aggregation=aggregation,
            duration=min(state.samples, self.window if self.protocol == "4sec" else state.samples) / rate,
            segments=segments,
            envelope=envelope,
            timeline=timeline,
            stretches=stretches,
        )

    def _timeline(self, state: _FileState, segments: list[Segment]) -> np.ndarray | None:
        """Log-odds per 10 ms cell of the audio scored: the frame head's (cells seen by several windows take the
        mean), else the windows'; None for one window without a frame head."""
        cells = int(round(max(segment.end for segment in segments) / CELL_SECONDS))
        if not state.frame_scores:
            if len(segments) == 1:
                return None
            starts, ends = (np.asarray([getattr(segment, name) for segment in segments]) for name in ("start", "end"))
            return window_cell_scores(starts, ends, np.asarray([segment.log_odds for segment in segments]), cells)
        totals, counts = np.zeros(cells), np.zeros(cells)
        for index, segment in enumerate(segments):
            scores = state.frame_scores[index]
            first, stop = round(segment.start / CELL_SECONDS), min(cells, round(segment.end / CELL_SECONDS))
            times = self.model.frame_times(len(scores)).numpy()
            totals[first:stop] += frame_cell_scores(scores, times, stop - first)
            counts[first:stop] += 1
        return totals / np.maximum(counts, 1)


def _sigmoid(value: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * value))


def _min_samples(model: Nes2NetForAudioClassification) -> int:
    """The fewest samples that give the model at least one feature frame."""
    lengths = model.frame_lengths(torch.arange(1, 16_001))
    enough = torch.nonzero(lengths >= 1)
    return int(enough[0]) + 1 if len(enough) else 16_001
