"""The one scoring path: batches under a sample budget, the pluggable model call, and `full`'s length limit."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from tests.modeling.detection_audio import single_torch_thread  # noqa: F401  (a fixture, used through pytestmark)
from tests.modeling.detection_audio import write_long_wav
from tests.tiny_models import tiny_model

from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.examples import speech_like
from modeling_nes2net.protocols import WINDOW_SAMPLES
from modeling_nes2net.model_calls import TorchModelCall
from modeling_nes2net.scorer import DetectionFailure, SegmentPool, pad_waveforms

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_a_long_segment_never_shares_a_batch_with_short_ones():
    pool = SegmentPool(batch_size=4, max_batch_samples=40_000)
    for key, length in enumerate([16_000, 12_000, 1_000_000, 14_000]):
        pool.add(key, np.zeros(length, np.float32))
    batches = []
    while len(pool):
        batch = pool.take_batch()
        batches.append(sorted(key for key, _ in batch))
        assert len(batch) == 1 or len(batch) * max(len(waveform) for _, waveform in batch) <= 40_000
    assert batches == [[0, 3], [1], [2]]  # the oldest with the nearest length that fits; the long one alone


def test_any_model_call_plugs_in_and_gets_the_same_verdicts(tmp_path):
    model = tiny_model().eval()
    torch_call = TorchModelCall(model, model.device)
    calls = []

    def recording_call(input_values: np.ndarray, attention_mask: np.ndarray | None) -> np.ndarray:
        calls.append((input_values.shape, None if attention_mask is None else attention_mask.shape))
        return torch_call(input_values, attention_mask)

    clips = [(speech_like(n / 16_000, seed=n), 16_000) for n in (8_000, 20_000, 12_000)]
    plugged = list(Nes2NetDetector(model, protocol="full", model_call=recording_call).detect_many(clips))
    reference = list(Nes2NetDetector(model, protocol="full", batch_size=1).detect_many(clips))
    assert calls and all(shape[1] == 20_000 or mask is None for shape, mask in calls)
    assert [r.score for r in plugged] == pytest.approx([r.score for r in reference], abs=1e-5)
    padded, mask = pad_waveforms([clip for clip, _ in clips])
    assert padded.shape == (3, 20_000) and mask.dtype == np.int64
    assert mask.sum(axis=1).tolist() == [8_000, 20_000, 12_000]
    assert (padded[0, 8_000:] == 0).all() and (mask[0, :8_000] == 1).all() and (mask[0, 8_000:] == 0).all()
    equal = [np.ones(3, np.float32), np.ones(3, np.float32)]
    assert pad_waveforms(equal)[1] is None and pad_waveforms(equal, always_mask=True)[1].tolist() == [[1] * 3] * 2


def test_full_refuses_a_recording_over_its_limit_naming_it_and_the_memory(tmp_path):
    long = write_long_wav(tmp_path / "long.wav", 30.0)
    short = write_long_wav(tmp_path / "short.wav", 2.0)
    detector = Nes2NetDetector(tiny_model(), protocol="full", max_full_seconds=10.0, device="cpu")
    refused, scored = detector.detect_many([long, short])
    assert isinstance(refused, DetectionFailure) and not isinstance(scored, DetectionFailure)
    assert refused.error.startswith(f"{long}: longer than 10 s, the limit of one pass under protocol 'full'")
    assert "GiB" in refused.error and "--protocol windows" not in refused.error and "'windows'" in refused.error


def test_a_long_recording_holds_a_few_batches_of_windows_whatever_its_length(tmp_path):
    detector = Nes2NetDetector(tiny_model(), batch_size=8, device="cpu")
    peaks = {}
    for minutes in (1, 3):
        path = write_long_wav(tmp_path / f"{minutes}min.wav", minutes * 60.0)
        tracemalloc.start()  # numpy buffers (not torch's): decoding, the pool, the batch, the results
        (result,) = detector.detect_many([path])
        peaks[minutes] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert not isinstance(result, DetectionFailure) and result.duration == minutes * 60.0
    batch_bytes = 8 * WINDOW_SAMPLES * 4
    # queued, pooled, scored (the windows and their padded batch), plus the blocks being decoded and the timeline
    assert peaks[3] < 4 * batch_bytes + 4 * 2**20, peaks
    assert peaks[3] < 1.2 * peaks[1], peaks
