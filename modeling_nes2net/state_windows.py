"""Encode once, window the states: the `windows` protocol on a long recording without encoding each second twice.

Under `windows` (4.04 s windows every 2.02 s, `protocols`) the front-end, nearly all of the cost with a speech
foundation model, runs twice over every second. Here it runs once, over the recording in chunks (`StateChunking`,
which each front-end answers in `frontends_nes2net`: 30 s chunks, overlapping by what its convolutions need); the
kept frames of the chunks are stitched into one timeline of hidden states, and the layer merge, back-end and
classifier score each window of the same timeline of windows on its frames: from `round(start / stride)` on, as many
as the window alone gives (`frame_lengths(window)`; the last window's are the last frames).

A window's states are then those of the window inside its chunk, not those of the window alone: attention spans the
chunk, and Whisper's positions count from the chunk's start. `benchmarks/state_windows.py` measures how far that moves
the windows' scores and whether verdicts hold, per front-end (README, "Long recordings"); a front-end whose states
cannot be windowed answers None and keeps the windows of audio. A recording no longer than one window is one segment,
whole, scored as before (`scorer.Scorer` batches it with other clips).

Memory stays flat in the recording's length: two chunks of audio, one chunk of states (every layer's, for a layer
merge) and the windows waiting for their frames.
"""

from __future__ import annotations

import numpy as np
import torch

from .frontends_nes2net import StateChunking
from .model_calls import ModelCall, ModelOutput, TorchModelCall, frame_log_odds
from .protocols import Protocol

ScoredWindow = tuple[int, np.ndarray, "np.ndarray | None"]  # (segment index, (num_labels,) logits, frame log-odds)


class StateWindows:
    """Scores the windows of long recordings from their front-end states with a torch model (see the module
    docstring); `recording()` keeps one recording's bookkeeping. Build it with `for_model`."""

    def __init__(self, model_call: TorchModelCall, chunking: StateChunking, window: int, batch_size: int) -> None:
        model = model_call.model
        self.model_call, self.chunking, self.window, self.batch_size = model_call, chunking, window, batch_size
        self.stride = model.nes2net.frontend.frame_geometry().stride
        self.window_frames = int(model.frame_lengths(torch.tensor([window]))[0])

    @classmethod
    def for_model(cls, model_call: ModelCall, window: int, hop: int, batch_size: int, *, protocol: Protocol,
                  requested: bool | None = None) -> StateWindows | None:
        """The state windows of `model_call`'s model where they are `requested` (None: where its
        `config.state_windows` asks), or None where windows of audio must stay: not requested, the protocol is not
        `windows`, the model does not run in torch (`TorchModelCall`), its front-end's states cannot be windowed
        (`state_chunking()` is None), it normalises each input waveform over its own samples (`normalize_waveform`: a
        chunk is normalised otherwise than a window), or windows leave gaps (`hop > window`)."""
        if protocol != "windows" or not isinstance(model_call, TorchModelCall):
            return None
        model = model_call.model
        if not (model.config.state_windows if requested is None else requested):
            return None
        chunking = None if model.config.normalize_waveform else model.nes2net.frontend.state_chunking()
        if chunking is None or hop > window:
            return None
        return cls(model_call, chunking, window, batch_size)

    def recording(self) -> RecordingStates:
        return RecordingStates(self)

    def score_segments(self, segments: list[tuple[int, np.ndarray]]) -> list[ScoredWindow]:
        """Every window of one recording of more than one window, its `(start, waveform)` segments all at hand
        (`nes2net evaluate`)."""
        recording = self.recording()
        scored = [row for index, (start, waveform) in enumerate(segments) for row in recording.add(index, start, waveform)]
        return scored + recording.finish()

    @torch.inference_mode()
    def encode(self, waveform: np.ndarray) -> list[torch.Tensor]:
        """The front-end's states of one chunk `(samples,)`, each `(frames, D)`: every hidden state for a layer merge,
        else the last (what `Nes2NetModel.forward` reads)."""
        call = self.model_call
        nes2net = call.model.nes2net
        values = torch.from_numpy(waveform)[None].to(call.device, call.dtype)
        with call.autocast():
            output = nes2net.frontend(values, output_hidden_states=nes2net.layer_merge is not None)
        states = output.hidden_states if nes2net.layer_merge is not None else (output.last_hidden_state,)
        return [state[0] for state in states]

    @torch.inference_mode()
    def score(self, states: list[torch.Tensor]) -> ModelOutput:
        """Windows' states, each `(windows, frames, D)` -> `(windows, num_labels)` logits and, with a frame head,
        each window's frame log-odds: everything `Nes2NetForAudioClassification.forward` runs after the front-end."""
        call = self.model_call
        model = call.model
        with call.autocast():
            _, last_hidden_state, pooled = model.nes2net.forward_frontend_states(tuple(states))
            logits = model.calibration(model.classifier(pooled))
            frame_logits_of = getattr(model, "frame_logits_of", None)
            frame_logits = None if frame_logits_of is None else frame_logits_of(tuple(states), last_hidden_state)
        frames = None if frame_logits is None else frame_log_odds(frame_logits, [frame_logits.shape[1]] * len(logits))
        return logits.float().cpu().numpy(), frames


class RecordingStates:
    """One recording under `StateWindows`: its windows arrive in order as `(start, (window,) waveform)` segments,
    which also carry its audio; every full chunk is encoded as soon as its audio is in, and windows are scored, a
    batch at a time, once their frames are stitched. `finish()` encodes the last, shorter chunk (ending at the
    recording's end) and scores the rest. A recording of one segment is never encoded here: `first` is scored as a whole segment."""

    def __init__(self, windows: StateWindows) -> None:
        self.windows = windows
        self.audio, self.audio_start = np.zeros(0, np.float32), 0  # audio[0] is the recording's sample audio_start
        self.next_chunk, self.last_chunk = 0, None  # first samples of the next chunk and of the last one encoded
        self.states: list[torch.Tensor] = []  # the stitched timeline, each (frames, D), from frame states_start
        self.states_start = self.frames_end = 0
        self.held: list[torch.Tensor] = []  # the last chunk's closing context frames, final only if no chunk follows
        self.waiting: list[tuple[int, int]] = []  # (segment index, start sample) of the windows not yet scored
        self.first: np.ndarray | None = None
        self.segments = 0

    @property
    def audio_end(self) -> int:
        return self.audio_start + len(self.audio)

    def add(self, segment: int, start: int, waveform: np.ndarray) -> list[ScoredWindow]:
        """Take the window `segment` (its `start` within the audio already read); the windows scored meanwhile."""
        if start > self.audio_end:
            raise ValueError(f"window {segment} starts at sample {start}, after the audio read ({self.audio_end})")
        self.first = waveform if segment == 0 else self.first
        self.segments += 1
        self.audio = np.concatenate([self.audio, waveform[self.audio_end - start :]])
        self.waiting.append((segment, start))
        chunking = self.windows.chunking
        while self.audio_end >= self.next_chunk + chunking.samples:
            self._encode(self.next_chunk, last=False)
            self.next_chunk += chunking.step
        return self._score_ready(final=False)

    def finish(self) -> list[ScoredWindow]:
        """Encode the last chunk, from the next chunk's start to the recording's end but at least a window long (unless
        the last one encoded ended there), and score every window left."""
        windows = self.windows
        if self.last_chunk is None or self.audio_end > self.last_chunk + windows.chunking.samples:
            a_window_back = (self.audio_end - windows.window) // windows.stride * windows.stride
            self._encode(min(self.next_chunk, max(self.last_chunk or 0, a_window_back)), last=True)
        else:
            self._append(self.held)
        return self._score_ready(final=True)

    def _encode(self, start: int, last: bool) -> None:
        """Encode the chunk from sample `start` (a multiple of the stride) and stitch its new frames: those past the
        frames already final, up to its closing context frames (held back) unless it is the last."""
        offset = start - self.audio_start
        states = self.windows.encode(self.audio[offset:] if last else
                                     self.audio[offset : offset + self.windows.chunking.samples])
        keep_from = self.frames_end - start // self.windows.stride
        keep_to = len(states[0]) if last else len(states[0]) - self.windows.chunking.context_frames
        self._append([state[keep_from:keep_to] for state in states])
        self.held = [] if last else [state[keep_to:] for state in states]
        self.last_chunk = start
        self.audio, self.audio_start = self.audio[offset:], start  # the last chunk starts here or after

    def _append(self, states: list[torch.Tensor]) -> None:
        if not states:
            return
        self.states = [torch.cat(pair) for pair in zip(self.states, states)] if self.states else states
        self.frames_end += len(states[0])

    def _score_ready(self, final: bool) -> list[ScoredWindow]:
        """Score the waiting windows whose frames are stitched, whole batches only unless `final`."""
        windows, count = self.windows, self.windows.window_frames
        firsts = []
        for _, start in self.waiting:
            first = round(start / windows.stride)
            if final:
                first = max(0, min(first, self.frames_end - count))
            if first + count > self.frames_end:
                break
            firsts.append(first)
        if not final:
            del firsts[len(firsts) // windows.batch_size * windows.batch_size :]
        scored: list[ScoredWindow] = []
        for batch_start in range(0, len(firsts), windows.batch_size):
            batch = firsts[batch_start : batch_start + windows.batch_size]
            rows = [[state[first - self.states_start : first - self.states_start + count] for first in batch]
                    for state in self.states]
            logits, frames = windows.score([torch.stack(layer) for layer in rows])
            segments = [segment for segment, _ in self.waiting[batch_start : batch_start + len(batch)]]
            scored += zip(segments, logits, frames if frames is not None else [None] * len(batch))
        del self.waiting[: len(firsts)]
        if firsts:  # later windows start no earlier than a window before the last scored one
            drop = max(0, firsts[-1] - count - self.states_start)
            self.states = [state[drop:] for state in self.states]
            self.states_start += drop
        return scored
