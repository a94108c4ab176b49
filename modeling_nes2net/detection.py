"""Spoofing detection on real recordings: any length, any format, many files, bounded memory.

```python
from modeling_nes2net.detection import Nes2NetDetector

detector = Nes2NetDetector.from_pretrained("path/to/model")  # or a Hub id; None: the embedded default model
result = detector.detect("podcast.m4a")                      # a path, bytes, or an array with sampling_rate=
print(result.label, result.bonafide_probability, result.segments[0])
for outcome in detector.detect_many(paths):                  # batched, in order; bad files give DetectionFailure
    print(outcome)
```

Protocols (what reaches the model, see `modeling_nes2net.protocols`): `windows` (the default here), `full` (the
whole recording in one pass, what `pipeline(...)` does; refused over `max_full_seconds`) and `4sec` (the first
64,600 samples, tiled when shorter: what `nes2net evaluate` defaults to, the paper's ASVspoof protocol). The default
window, 64,600 samples (4.04 s), is the crop every released model was trained on, so each window looks like training
data; the default 50% hop lets every instant (but the first and last half window) be seen by two windows, gives a
2 s timeline resolution and costs twice the compute of back-to-back windows, the usual trade-off.

Scores (see `modeling_nes2net.decision`; higher always means more bona fide):
- `score`: the bona fide logit, the raw score the ASVspoof evaluation tools expect.
- `log_odds`: `log p(bonafide) / p(spoof)` of the model's calibrated logits; the decision is `decision.verdict`:
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
Stretches below `threshold - stretch_edge` that hold a core of at least 0.2 s below `threshold - stretch_margin`
(the model's `config.stretch_margin` and `stretch_edge` unless the detector is given a margin) are listed
(`localisation.spoofed_stretches`: a frame head's margin keeps genuine dips unflagged, and the stretch spans the
whole run around its core, to where the scores rise past the edge), and a bona fide verdict that would hide one reads
`partly spoofed` instead: on dev splices, flagging an utterance by its most spoof-like stretch separated partial
spoofs best (`benchmarks/localisation.py`).

Scoring itself (decoding in a background thread, the protocol, length-pooled batches under a sample budget, the
model call) is `modeling_nes2net.scorer`, shared with `nes2net evaluate`; this module turns its logits into verdicts.
Loading the model is `modeling_nes2net.model_loading`, the opt-in fast path `modeling_nes2net.quantization`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from .audio import AudioInputError, AudioSource, AudioSourceLike
from .configuration_nes2net import BONAFIDE_LABEL, PARTLY_SPOOFED_LABEL
from .decision import DECISION_THRESHOLD, bonafide_score, log_odds, odds_probability, verdict
from .localisation import CELL_SECONDS, Stretch, frame_cell_scores, spoofed_stretches, window_cell_scores
from .model_loading import load_model, load_onnx_export
from .modeling_nes2net import Nes2NetForAudioClassification
from .protocols import HOP_SAMPLES, WINDOW_SAMPLES, Protocol
from .quantization import inference_dtype, quantize_for_inference
from .scorer import (
    AGGREGATIONS,
    FULL_PROTOCOL_MAX_SECONDS,
    Aggregation,
    DetectionFailure,
    ScoredRecording,
    Scorer,
    Segmenter,
    aggregate,
    min_samples_of,
    pass_bytes,
)
from .model_calls import ModelCall, TorchModelCall
from .state_windows import StateWindows

RUNTIMES: tuple[str, ...] = ("torch", "onnx")
MIN_STRETCH_SECONDS = 0.2  # the shortest spoofed stretch reported (the splices builder's shortest piece)


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
        label: `"bonafide"` or `"spoof"`: `decision.verdict(log_odds, threshold)`; `"partly spoofed"` when that says
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
        stretches: the runs of the timeline below `threshold - stretch_edge` that hold a core of at least
            `MIN_STRETCH_SECONDS` below `threshold - stretch_margin` (the detector's; `localisation.spoofed_stretches`).
        stretch_margin: the margin (log-odds) those stretches, and so a `"partly spoofed"` label, were found under;
            None where no stretch was looked for (the Space's live microphone verdict).
    """

    source: str
    label: str
    bonafide_probability: float
    score: float
    log_odds: float
    threshold: float
    protocol: str
    aggregation: Aggregation | None
    duration: float
    segments: list[Segment]
    envelope: np.ndarray = field(repr=False, compare=False)
    timeline: np.ndarray | None = field(default=None, repr=False, compare=False)
    stretches: list[Stretch] = field(default_factory=list)
    stretch_margin: float | None = None

    @property
    def is_spoof(self) -> bool:
        """Spoofed as a whole or in part."""
        return self.label != BONAFIDE_LABEL

    def segment_label(self, segment: Segment) -> str:
        """`"bonafide"` or `"spoof"`: the verdict on one segment alone, under this result's threshold."""
        return verdict(segment.log_odds, self.threshold)

    def to_dict(self, include_segments: bool = True) -> dict:
        """A JSON-ready dict (no envelope); with `include_segments`, the segments and stretches as lists of dicts and
        the stretch margin they were found under."""
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
            result["stretch_margin"] = self.stretch_margin
        return result


# The columns of tabular outputs (`detect --format csv`, the Space's table): one row per result, the keys of
# `DetectionResult.to_dict(include_segments=False)`; one row per segment with `--segments`.
RESULT_COLUMNS = ("file", "label", "bonafide_probability", "score", "log_odds", "threshold", "protocol",
                  "aggregation", "duration")
SEGMENT_COLUMNS = ("file", "start", "end", "label", "probability", "score", "log_odds")



def resolve_device(device: str | torch.device | None) -> torch.device:
    """`"auto"` / None -> CUDA when available, else CPU; a clear error when CUDA is asked for but absent."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was requested (--device cuda) but no CUDA device is available to torch")
    return device


class Nes2NetDetector:
    """Verdicts on recordings from a `Nes2NetForAudioClassification`, scored by a `scorer.Scorer` (see the module
    docstring for the protocols, scores and aggregation rules).

    Args:
        model: the model; it is changed in place (eval mode, moved to `device`, quantised when asked).
        protocol: `"windows"` (default), `"full"` or `"4sec"`.
        window: window length in samples at the model's rate (windows protocol, and the `4sec` crop).
        hop: hop between window starts in samples (windows protocol).
        batch_size: segments per forward pass.
        aggregation: `"mean"` or `"any"`, how windows combine into one decision.
        threshold: decision threshold on the calibrated log-odds; None: `decision.DECISION_THRESHOLD` (0).
        stretch_margin: how far below the threshold (log-odds) the core of a flagged stretch must reach; None: the
            model's `config.stretch_margin` (a frame model's, fitted on dev speech). Lower finds more partial spoofs
            and flags more genuine recordings (`benchmarks/localisation.py` measures both at every margin). The
            stretch edge stays the model's, at most this margin.
        device: `"auto"` (CUDA when available), `"cpu"`, `"cuda"`, ...
        quantize: None, `"int8"` (CPU) or `"bf16"`: the opt-in fast path, see `quantization.quantize_for_inference`.
        max_batch_samples: padded samples per forward pass at most (default `batch_size * window`).
        max_full_seconds: the `full` protocol refuses longer recordings.
        model_call: another runtime for the same model (a `model_calls.ModelCall`); None runs `model` with torch.
        state_windows: under `windows`, encode a long recording once and score the windows from its front-end's
            states (`state_windows`), where the front-end allows it (torch only); None: as the model's
            `config.state_windows` says (on for a back-end trained on cached states, such as the embedded default;
            `benchmarks/state_windows.py` measures both paths).
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
        stretch_margin: float | None = None,
        device: str | torch.device | None = "auto",
        quantize: str | None = None,
        max_batch_samples: int | None = None,
        max_full_seconds: float = FULL_PROTOCOL_MAX_SECONDS,
        model_call: ModelCall | None = None,
        state_windows: bool | None = None,
    ) -> None:
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r}; choose from {AGGREGATIONS}")
        self.config = model.config
        self.sampling_rate = model.config.sampling_rate
        self.aggregation = aggregation
        self.threshold = float(threshold if threshold is not None else DECISION_THRESHOLD)
        if not math.isfinite(self.threshold):
            raise ValueError(f"the decision threshold must be a finite log-odds, got {threshold}")
        self.stretch_margin = float(model.config.stretch_margin if stretch_margin is None else stretch_margin)
        if not 0.0 <= self.stretch_margin < math.inf:
            raise ValueError(f"the stretch margin must be a finite log-odds of at least 0, got {stretch_margin}")
        self.stretch_edge = min(model.config.stretch_edge, self.stretch_margin)
        self.device = resolve_device(device)
        self.quantize = quantize
        if model_call is None:
            self.model = quantize_for_inference(model.eval().to(self.device), quantize, self.device)
            model_call = TorchModelCall(self.model, self.device, inference_dtype(quantize))
        else:  # another runtime scores; `model` only tells the config and the frame arithmetic (it may be on meta)
            self.model = model
        segmenter = Segmenter(
            sampling_rate=self.sampling_rate,
            min_samples=min_samples_of(model),
            protocol=protocol,
            window=window,
            hop=hop,
            max_full_seconds=max_full_seconds,
            pass_bytes=lambda samples: pass_bytes(model, samples),
        )
        windowed = StateWindows.for_model(model_call, window, hop, batch_size, protocol=protocol,
                                          requested=state_windows)
        self.scorer = Scorer(model_call, segmenter, batch_size=batch_size, max_batch_samples=max_batch_samples,
                             state_windows=windowed)
        self.protocol, self.window, self.hop = protocol, window, hop

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str | None = None,
        *,
        device: str | None = "auto",
        runtime: str = "torch",
        window_seconds: float | None = None,
        hop_seconds: float | None = None,
        **options,
    ) -> Nes2NetDetector:
        """Load a model folder or Hub id (None: the embedded default model) with `model_loading.load_model` and wrap
        it; `options` are `Nes2NetDetector`'s keyword arguments; `window_seconds` / `hop_seconds` set `window` /
        `hop` at the model's own rate (the hop defaults to half the window).

        `runtime="onnx"`: a folder (or `.onnx` file) written by `nes2net export onnx`, run by ONNX Runtime on the
        CPU (`model_loading.load_onnx_export`); `quantize="int8"` or `"fp16"` picks that file of the export."""
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; choose from {RUNTIMES}")
        model_call = None
        if runtime == "torch":
            model = load_model(model_name_or_path)
        else:
            from .onnx_export import VARIANTS

            if model_name_or_path is None:
                raise ValueError("--runtime onnx needs --model: a folder written by `nes2net export onnx`")
            if options.get("quantize") not in (None, *VARIANTS):
                raise ValueError(f"--runtime onnx takes --quantize {' or '.join(VARIANTS)} (that file of the export) "
                                 "or none")
            if device not in ("auto", "cpu", None):
                raise ValueError("the ONNX runtime scores on the CPU only; use --device cpu")
            model, graph = load_onnx_export(model_name_or_path, options.pop("quantize", None) or "fp32")
            model_call, device = graph.score, "cpu"
        rate = model.config.sampling_rate
        if window_seconds is not None:
            options["window"] = round(window_seconds * rate)
        if hop_seconds is not None or window_seconds is not None:
            options["hop"] = round(hop_seconds * rate) if hop_seconds is not None else options["window"] // 2
        return cls(model, device=device, model_call=model_call, **options)

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
        for outcome in self.scorer.score_many(sources):
            yield outcome if isinstance(outcome, DetectionFailure) else self._verdict(outcome)

    def _verdict(self, scored: ScoredRecording) -> DetectionResult:
        logits = torch.from_numpy(scored.logits)
        scores, odds = bonafide_score(logits).numpy(), log_odds(logits).numpy()
        rate = self.sampling_rate
        segments = [
            Segment(start / rate, (start + length) / rate, float(score), float(odd), odds_probability(float(odd)))
            for start, length, score, odd in zip(scored.starts, scored.lengths, scores, odds)
        ]
        aggregation = None if len(segments) == 1 else self.aggregation
        score, odd = aggregate(scored.logits, aggregation or "mean")
        timeline = self._timeline(scored, segments)
        stretches = [] if timeline is None else spoofed_stretches(
            timeline, self.threshold, MIN_STRETCH_SECONDS, self.stretch_margin, self.stretch_edge
        )
        label = verdict(odd, self.threshold)
        return DetectionResult(
            source=scored.name,
            label=PARTLY_SPOOFED_LABEL if label == BONAFIDE_LABEL and stretches else label,
            bonafide_probability=odds_probability(odd),
            score=score,
            log_odds=odd,
            threshold=self.threshold,
            protocol=self.protocol,
            aggregation=aggregation,
            duration=min(scored.samples, self.window if self.protocol == "4sec" else scored.samples) / rate,
            segments=segments,
            envelope=scored.envelope,
            timeline=timeline,
            stretches=stretches,
            stretch_margin=self.stretch_margin,
        )

    def _timeline(self, scored: ScoredRecording, segments: list[Segment]) -> np.ndarray | None:
        """Log-odds per 10 ms cell of the audio scored: the frame head's (cells seen by several windows take the
        mean), else the windows'; None for one window without a frame head."""
        cells = int(round(max(segment.end for segment in segments) / CELL_SECONDS))
        if scored.frame_scores is None:
            if len(segments) == 1:
                return None
            starts, ends = (np.asarray([getattr(segment, name) for segment in segments]) for name in ("start", "end"))
            return window_cell_scores(starts, ends, np.asarray([segment.log_odds for segment in segments]), cells)
        totals, counts = np.zeros(cells), np.zeros(cells)
        for index, segment in enumerate(segments):
            scores = scored.frame_scores[index]
            first, stop = round(segment.start / CELL_SECONDS), min(cells, round(segment.end / CELL_SECONDS))
            times = self.model.frame_times(len(scores)).numpy()
            totals[first:stop] += frame_cell_scores(scores, times, stop - first)
            counts[first:stop] += 1
        return totals / np.maximum(counts, 1)
