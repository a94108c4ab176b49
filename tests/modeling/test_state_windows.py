"""Encode once, window the states: the `windows` protocol scored from front-end states stitched from chunks gives the
windows of audio's timeline and scores, and `detect` takes that path where the front-end allows it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modeling_nes2net import Nes2NetForAudioClassification, Nes2NetForAudioFrameClassification
from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.examples import speech_like
from modeling_nes2net.model_calls import TorchModelCall
from modeling_nes2net.state_windows import StateWindows
from tests.modeling.detection_audio import single_torch_thread  # noqa: F401  (a fixture, used through pytestmark)
from tests.tiny_models import randomize_norm_statistics, tiny_config

pytestmark = pytest.mark.usefixtures("single_torch_thread")

RATE = 16_000
# A tiny SSL front-end at XLS-R's frame rate (seven convolutions, strides 5,2,2,2,2,2,2: 20 ms frames), so that its
# 1500-frame chunks are 30 s long as XLS-R's are.
XLSR_FRAMES = {"conv_dim": (16,) * 7, "conv_stride": (5, 2, 2, 2, 2, 2, 2), "conv_kernel": (10, 3, 3, 3, 3, 2, 2)}


def varied_speech(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like audio whose level changes every 3 s (0.05-1x), so the windows' scores differ from each other."""
    audio = speech_like(seconds, RATE, seed)
    levels = np.random.default_rng(seed).uniform(0.05, 1.0, size=int(seconds / 3) + 1)
    return (audio * np.repeat(levels, 3 * RATE)[: len(audio)]).astype(np.float32)


def window_log_odds(model, audio: np.ndarray, state_windows: bool, **options) -> tuple[np.ndarray, list[float]]:
    result = Nes2NetDetector(model, device="cpu", state_windows=state_windows, **options).detect(
        audio, sampling_rate=RATE)
    return np.array([segment.log_odds for segment in result.segments]), [segment.start for segment in result.segments]


@pytest.mark.parametrize("statistics", [{}, {"layer_statistics": True}, {"frame_statistics_window": 3}])
def test_a_local_front_ends_state_windows_are_its_windows_of_audio_exactly(statistics):
    """The spectrogram's frames read their own samples only: with windows on its frame grid, stitching 3 s chunks
    (the last one ending at the recording's end) must give every window the frames, scores and frame scores the
    window alone gives (with `layer_statistics` or `frame_statistics_window`, statistics of the window's own
    frames)."""
    torch.manual_seed(0)
    model = Nes2NetForAudioFrameClassification(  # n_fft 126, hop 32: 3 s chunks
        tiny_config("spectrogram", **statistics)).eval()
    randomize_norm_statistics(model)
    audio = varied_speech(20.3)  # 7 chunks; 20.3 s is on the frame grid, so is the end-aligned last window
    options = dict(window=64_000, hop=32_000, batch_size=3)
    detectors = {windowed: Nes2NetDetector(model, device="cpu", state_windows=windowed, **options)
                 for windowed in (False, True)}
    assert detectors[True].scorer.state_windows is not None
    audio_result, states_result = (detectors[windowed].detect(audio, sampling_rate=RATE) for windowed in (False, True))
    audio_odds = np.array([segment.log_odds for segment in audio_result.segments])
    states_odds = np.array([segment.log_odds for segment in states_result.segments])
    assert [segment.start for segment in states_result.segments] == [segment.start for segment in audio_result.segments]
    assert np.ptp(audio_odds) > 0.02  # the windows score differently, so a misplaced window would show
    np.testing.assert_allclose(states_odds, audio_odds, atol=1e-4)
    np.testing.assert_allclose(states_result.timeline, audio_result.timeline, atol=1e-4)


def test_an_ssl_models_state_windows_agree_with_its_windows_of_audio():
    """On a 70 s recording (three 30 s chunks), the windows scored from the states keep the windows of audio's
    scores up to what the transformer's longer context moves them (a random model's windows score alike, so the
    context moves them as much as their content: `benchmarks/state_windows.py` measures real audio), and their mean,
    the recording's score."""
    torch.manual_seed(0)
    model = Nes2NetForAudioClassification(tiny_config(frontend_overrides=XLSR_FRAMES)).eval()
    randomize_norm_statistics(model)
    audio = varied_speech(70.0, seed=1)
    audio_odds, audio_starts = window_log_odds(model, audio, state_windows=False)
    states_odds, states_starts = window_log_odds(model, audio, state_windows=True)
    assert states_starts == audio_starts and len(states_starts) == 34
    assert np.abs(states_odds - audio_odds).max() < 0.15
    assert abs(states_odds.mean() - audio_odds.mean()) < 0.02


def test_detect_encodes_a_long_recording_once():
    """`detect`'s default under `windows`: the front-end reads 70 s as two 30 s chunks (overlapping by its positional
    convolution's reach) and the rest from where a third would start, about once, not twice; `state_windows=False`
    encodes every window."""
    model = Nes2NetForAudioClassification(tiny_config(frontend_overrides=XLSR_FRAMES)).eval()
    samples_read = []
    model.nes2net.frontend.register_forward_hook(lambda module, args, output: samples_read.append(args[0].numel()))
    audio = varied_speech(70.0)
    chunking = model.nes2net.frontend.state_chunking()
    once = 2 * chunking.samples + len(audio) - 2 * chunking.step
    assert once < 1.01 * len(audio)
    for windowed, expected in ((True, once), (False, 34 * 64_600)):
        samples_read.clear()
        Nes2NetDetector(model, device="cpu", state_windows=windowed).detect(audio, sampling_rate=RATE)
        assert sum(samples_read) == expected


def test_a_clip_no_longer_than_a_window_is_scored_whole_as_before():
    model = Nes2NetForAudioClassification(tiny_config(frontend_overrides=XLSR_FRAMES)).eval()
    clip = speech_like(3.1, RATE, seed=2)
    odds = [window_log_odds(model, clip, windowed)[0] for windowed in (False, True)]
    assert len(odds[1]) == 1 and odds[1][0] == pytest.approx(odds[0][0], abs=1e-6)


def test_a_whisper_model_reads_a_long_recording_once_in_consecutive_30s_chunks():
    """Whisper's chunks are those `forward` reads long audio in (each from position 0, no overlap): state windows read
    every sample once, in 30 s pieces, and score the same timeline of windows as windows of audio."""
    model = Nes2NetForAudioClassification(tiny_config("whisper")).eval()
    frontend = model.nes2net.frontend
    chunking = frontend.state_chunking()
    assert chunking.samples == chunking.step == frontend.chunk_mel_frames * frontend.hop_length
    assert chunking.context_frames == 0
    samples_read = []
    frontend.register_forward_hook(lambda module, args, output: samples_read.append(args[0].shape[-1]))
    audio = varied_speech(2.5 * chunking.samples / RATE)
    states_odds, states_starts = window_log_odds(model, audio, state_windows=True)
    assert samples_read == [chunking.samples, chunking.samples, len(audio) - 2 * chunking.samples]
    _, audio_starts = window_log_odds(model, audio, state_windows=False)
    assert states_starts == audio_starts and np.isfinite(states_odds).all()


@pytest.mark.parametrize("case", ["group-norm encoder", "normalised waveform", "gaps between windows"])
def test_state_windows_are_refused_where_they_would_change_the_verdicts(case):
    config = {
        "group-norm encoder": tiny_config(frontend_overrides={**XLSR_FRAMES, "feat_extract_norm": "group",
                                                              "do_stable_layer_norm": False}),
        "normalised waveform": tiny_config(frontend_overrides=XLSR_FRAMES, normalize_waveform=True),
        "gaps between windows": tiny_config(frontend_overrides=XLSR_FRAMES),
    }[case]
    model = Nes2NetForAudioClassification(config).eval()
    hop = 70_000 if case == "gaps between windows" else 32_300
    assert StateWindows.for_model(TorchModelCall(model, model.device), 64_600, hop, 8, protocol="windows",
                                  requested=True) is None


@pytest.mark.parametrize("case", ["not requested", "full protocol", "4sec protocol", "another runtime"])
def test_state_windows_are_taken_only_when_requested_under_windows_with_torch(case):
    """The one decision `detect` and `evaluate` (`score_split`) share: a front-end that allows state windows gets them
    only when asked for, under the `windows` protocol, run by torch (not an ONNX Runtime session)."""
    model = Nes2NetForAudioClassification(tiny_config(frontend_overrides=XLSR_FRAMES)).eval()
    torch_call = TorchModelCall(model, model.device)
    asked = {"protocol": "windows", "requested": True}
    assert isinstance(StateWindows.for_model(torch_call, 64_600, 32_300, 8, **asked), StateWindows)
    call, options = {
        "not requested": (torch_call, {**asked, "requested": False}),
        "full protocol": (torch_call, {**asked, "protocol": "full"}),
        "4sec protocol": (torch_call, {**asked, "protocol": "4sec"}),
        "another runtime": (lambda values, mask: torch_call(values, mask), asked),  # a ModelCall, as ONNX's is
    }[case]
    assert StateWindows.for_model(call, 64_600, 32_300, 8, **options) is None


@pytest.mark.parametrize("in_config", [False, True])
def test_unless_told_state_windows_follow_the_models_config(in_config):
    """`requested=None` (what `detect` and `evaluate` pass unless told): the model's `config.state_windows`, which
    `nes2net train` sets for a back-end trained on cached states; an explicit choice overrides it either way."""
    model = Nes2NetForAudioClassification(tiny_config(frontend_overrides=XLSR_FRAMES, state_windows=in_config)).eval()
    call = TorchModelCall(model, model.device)
    chosen = {requested: StateWindows.for_model(call, 64_600, 32_300, 8, protocol="windows", requested=requested)
              for requested in (None, False, True)}
    assert (chosen[None] is not None) == in_config
    assert chosen[False] is None and chosen[True] is not None
    assert (Nes2NetDetector(model, device="cpu").scorer.state_windows is not None) == in_config
