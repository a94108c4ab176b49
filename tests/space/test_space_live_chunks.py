"""The live `/listen` endpoint takes its chunks as untrusted input: the session limit holds whatever the chunks say, a
chunk is read only as the short 16-bit WAV the browser sends (its header's rate is not trusted), anything else gets a
one-line error, and live scoring waits in the same bounded queue as the other scoring requests."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from nes2net_space.inputs import Limits
from nes2net_space.live import LiveSession, read_live_chunk
from nes2net_space.models import ModelRegistry
from nes2net_space.uploads import UploadLedger, UploadLimits
from tests.tiny_models import tiny_model

from modeling_nes2net import examples
from modeling_nes2net.audio import AudioInputError
from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.protocols import HOP_SAMPLES, WINDOW_SAMPLES

RATE = 16_000


@pytest.fixture(scope="module")
def detector():
    return Nes2NetDetector(tiny_model(), device="cpu")


def speech_like(seconds: float, rate: int = RATE) -> np.ndarray:
    """16-bit synthetic speech, as the browser's recorder sends it."""
    return np.round(examples.speech_like(seconds, rate) * 32767).astype(np.int16)


def refusal(chunk) -> str:
    """The one-line error of reading `chunk` as a live chunk."""
    with pytest.raises(AudioInputError) as caught:
        read_live_chunk(chunk)
    return str(caught.value)


def test_a_live_session_stops_at_its_limit_whatever_the_chunks(detector):
    session = LiveSession(RATE, max_seconds=6)
    chunk = speech_like(2.5)
    heard = []
    for _ in range(3):
        session.add(RATE, chunk, detector)
        heard.append(session.seconds)
    assert heard == [2.5, 5.0, 6.0] and session.full  # the third chunk is cut where the session reaches its limit
    assert session.result(detector).duration == 6.0 and session.segments[-1].end <= 6.0


def test_a_window_that_is_not_speech_is_skipped_not_scored(detector):
    """An open microphone in a quiet room (steady noise) gets no score of its own; the windows that reach into the
    speech after it do."""
    session = LiveSession(RATE)
    hiss = np.round(0.01 * np.random.default_rng(0).standard_normal(WINDOW_SAMPLES) * 32767).astype(np.int16)
    assert session.add(RATE, hiss, detector) == 0 and session.result(detector) is None
    session.add(RATE, speech_like(2 * WINDOW_SAMPLES / RATE), detector)
    assert session.segments and session.segments[0].start == HOP_SAMPLES / RATE  # the second window, half speech


def test_a_chunk_longer_than_a_microphone_sends_is_refused_not_scored(tmp_path):
    chunk = tmp_path / "minute.wav"
    soundfile.write(chunk, speech_like(60, 8_000), 8_000, subtype="PCM_16")
    assert refusal(chunk) == ("live microphone chunk: 60.0 s of audio in one chunk; the microphone streams chunks "
                                 "of at most 5 s")


def test_a_chunk_header_claiming_a_tiny_rate_is_refused(tmp_path):
    chunk = tmp_path / "forged.wav"
    soundfile.write(chunk, speech_like(6.25), RATE, subtype="PCM_16")  # 200 KB of samples
    data = bytearray(chunk.read_bytes())
    data[24:32] = (100).to_bytes(4, "little") + (200).to_bytes(4, "little")  # "100 Hz": 1000 s of audio
    chunk.write_bytes(bytes(data))
    assert refusal(chunk).startswith("live microphone chunk: implausible sampling rate in its header (100 Hz")


@pytest.mark.parametrize("kind", ["flac", "text", "empty"])
def test_a_chunk_that_is_not_wav_gets_one_line(tmp_path, kind):
    chunk = tmp_path / "chunk.wav"
    if kind == "flac":
        soundfile.write(chunk, speech_like(0.5), RATE, format="FLAC")
    else:
        chunk.write_text("not audio at all\n" if kind == "text" else "")
    assert refusal(chunk) == ("live microphone chunk: not a WAV recording (the microphone streams 16-bit WAV "
                                 "chunks)")


def test_a_browser_chunk_is_read_as_its_samples(tmp_path):
    chunk = tmp_path / "chunk.wav"
    soundfile.write(chunk, np.stack([speech_like(0.5, 48_000)] * 2, axis=1), 48_000, subtype="PCM_16")
    samples, rate = read_live_chunk(chunk)
    assert rate == 48_000 and samples.dtype == np.int16 and samples.shape == (24_000, 2)
    np.testing.assert_array_equal(samples[:, 0], speech_like(0.5, 48_000))


def test_live_scoring_waits_in_the_queue_of_the_other_scoring_requests(space_model_dir):
    import app  # space/app.py, on the path with its package

    demo = app.build_demo(ModelRegistry([space_model_dir], device="cpu"), Limits(), [], UploadLedger(UploadLimits()))
    demo.queue(default_concurrency_limit=2)
    events = {function.api_name: function for function in demo.fns.values()}
    scoring = [events[name] for name in ("listen", "detect", "detect_batch")]
    assert len({function.concurrency_id for function in scoring}) == 1  # one group: its workers are shared
    assert events["listen"].concurrency_limit is not None
