"""Live microphone scoring: chunks streamed by the browser are resampled to the model's rate and cut into the
detector's windows (`detector.window` samples every `detector.hop`) as they arrive; each complete window is scored
the moment its last sample arrives, so the timeline grows while the person speaks.

A window is scored by `Nes2NetDetector.detect` on that window alone, exactly as the `windows` protocol scores each
window of a file: the live timeline of a recording equals the timeline of the same audio scored as a file, window for
window (the file's last window is aligned to its end, a live one cannot be).

A chunk is untrusted input: `read_live_chunk` accepts only what the browser sends (a short 16-bit WAV at a
microphone's rate), and a session stops at its `max_seconds` whatever the chunks say.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import soundfile
import soxr

from modeling_nes2net.audio import AudioInputError
from modeling_nes2net.decision import odds_probability, verdict
from modeling_nes2net.detection import DetectionResult, Nes2NetDetector, Segment
from modeling_nes2net.scorer import ENVELOPE_SECONDS

CHUNK_NAME = "live microphone chunk"
MAX_CHUNK_SECONDS = 5.0  # the browser sends a chunk every half second
MICROPHONE_RATES = (8_000, 96_000)  # the sampling rates a browser records at, Hz
MAX_CHUNK_CHANNELS = 2


def read_live_chunk(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """The int16 samples (`(samples,)` or `(samples, channels)`) and sampling rate of one streamed chunk, a 16-bit
    WAV file; raises `AudioInputError` (one line) for anything else: another format or sample type, a header rate
    outside `MICROPHONE_RATES`, more than `MAX_CHUNK_CHANNELS`, or more than `MAX_CHUNK_SECONDS` by its data and
    rate."""
    try:
        info = soundfile.info(os.fspath(path))
    except (soundfile.LibsndfileError, RuntimeError):
        info = None
    if info is None or info.format != "WAV":
        raise AudioInputError(CHUNK_NAME, "not a WAV recording (the microphone streams 16-bit WAV chunks)")
    if info.subtype != "PCM_16":  # float samples would be cast to int16 unchecked: NaN, or 1e30 clipped to full scale
        raise AudioInputError(CHUNK_NAME, f"not 16-bit PCM ({info.subtype}; the microphone streams 16-bit WAV "
                                          "chunks)")
    low, high = MICROPHONE_RATES
    if not low <= info.samplerate <= high:
        raise AudioInputError(CHUNK_NAME, f"implausible sampling rate in its header ({info.samplerate} Hz; a "
                                          f"microphone records at {low}-{high} Hz)")
    if not 1 <= info.channels <= MAX_CHUNK_CHANNELS:
        raise AudioInputError(CHUNK_NAME, f"{info.channels} channels; a microphone streams 1 or 2")
    seconds = info.frames / info.samplerate  # frames: the bytes of its data over the bytes of a frame
    if seconds > MAX_CHUNK_SECONDS:
        raise AudioInputError(CHUNK_NAME, f"{seconds:.1f} s of audio in one chunk; the microphone streams chunks of "
                                          f"at most {MAX_CHUNK_SECONDS:g} s")
    samples, rate = soundfile.read(os.fspath(path), dtype="int16")
    return samples, rate


@dataclass
class LiveSession:
    """One microphone stream being scored.

    Attributes:
        rate: the model's sampling rate.
        max_seconds: the session ends at this much audio: the chunk that reaches it is cut there (`full`).
        pending: `(samples,)` float32 audio from the start of the next window to score on.
        next_start: the sample index (from the start of the stream) of `pending[0]`.
        received: samples received so far, at `rate`.
        segments: the scored windows, in order.
        peaks: the peak absolute amplitude of every `ENVELOPE_SECONDS` received (the last one may be partial).
    """

    rate: int
    max_seconds: float = 120.0
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    next_start: int = 0
    received: int = 0
    segments: list[Segment] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    _resampler: soxr.ResampleStream | None = None
    _input_rate: int | None = None

    @property
    def seconds(self) -> float:
        return self.received / self.rate

    @property
    def full(self) -> bool:
        """Whether the session has received its `max_seconds`."""
        return self.received >= round(self.max_seconds * self.rate)

    def add(self, chunk_rate: int, chunk: np.ndarray, detector: Nes2NetDetector) -> int:
        """Append a streamed chunk (`(samples,)` or `(samples, channels)`, int16 or float), cut where the session
        reaches `max_seconds`, and score every window it completes; returns how many windows were scored (a window
        that is not speech-like, see `modeling_nes2net.input_check`, is skipped)."""
        samples = _mono_float(chunk)
        if self._input_rate != chunk_rate:  # first chunk (or the browser changed rate): a fresh resampler
            self._input_rate = chunk_rate
            self._resampler = None if chunk_rate == self.rate else soxr.ResampleStream(
                chunk_rate, self.rate, 1, "float32")
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        samples = samples[: max(0, round(self.max_seconds * self.rate) - self.received)]
        self._track_peaks(samples)
        self.received += len(samples)
        self.pending = np.concatenate([self.pending, samples])
        scored = 0
        while len(self.pending) >= detector.window:
            window = self.pending[: detector.window]
            try:
                (segment,) = detector.detect((window, self.rate)).segments
            except AudioInputError:  # not speech-like (`input_check`: a muted microphone, a pause): nothing to score
                segment = None
            if segment is not None:
                self.segments.append(Segment(self.next_start / self.rate, (self.next_start + len(window)) / self.rate,
                                             segment.score, segment.log_odds, segment.probability))
                scored += 1
            self.pending = self.pending[detector.hop :]
            self.next_start += detector.hop
        return scored

    def result(self, detector: Nes2NetDetector) -> DetectionResult | None:
        """The verdict on the windows scored so far, combined by `detector.aggregation` as a file's windows are and
        decided by `decision.verdict`; None before the first window."""
        if not self.segments:
            return None
        odds = np.array([segment.log_odds for segment in self.segments])
        scores = np.array([segment.score for segment in self.segments])
        chosen = None if len(odds) == 1 or detector.aggregation == "mean" else int(odds.argmin())
        odd = float(odds[0] if len(odds) == 1 else odds.mean() if chosen is None else odds[chosen])
        score = float(scores[0] if len(odds) == 1 else scores.mean() if chosen is None else scores[chosen])
        return DetectionResult(
            source="microphone",
            label=verdict(odd, detector.threshold),
            bonafide_probability=odds_probability(odd),
            score=score,
            log_odds=odd,
            threshold=detector.threshold,
            protocol="windows",
            aggregation=None if len(odds) == 1 else detector.aggregation,
            duration=self.seconds,
            segments=list(self.segments),
            envelope=np.asarray(self.peaks, np.float32),
        )

    def _track_peaks(self, samples: np.ndarray) -> None:
        step = round(ENVELOPE_SECONDS * self.rate)
        position = self.received
        while len(samples):
            offset = position % step
            take = samples[: step - offset]
            peak = float(np.abs(take).max(initial=0.0))
            if offset == 0:
                self.peaks.append(peak)
            else:
                self.peaks[-1] = max(self.peaks[-1], peak)
            samples, position = samples[len(take):], position + len(take)


def _mono_float(chunk: np.ndarray) -> np.ndarray:
    """Gradio's streamed int16 PCM (or float) `(samples[, channels])` -> `(samples,)` float32 in [-1, 1)."""
    chunk = np.asarray(chunk)
    samples = chunk.astype(np.float32) / 32768.0 if chunk.dtype.kind == "i" else chunk.astype(np.float32)
    return samples.mean(axis=1) if samples.ndim == 2 else samples
