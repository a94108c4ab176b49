"""Scoring real recordings: protocols, batching, aggregation, thresholds, bad inputs and long files."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile
import torch
from tests.modeling.detection_audio import ffmpeg_encode, needs_ffmpeg, tone_and_noise, write_audio, write_long_wav
from tests.modeling.detection_audio import single_torch_thread  # noqa: F401  (a fixture, used through pytestmark)
from tests.tiny_models import tiny_model

from modeling_nes2net import save_model_folder
from modeling_nes2net.audio import AudioInputError
from modeling_nes2net.detection import DetectionResult, Nes2NetDetector
from modeling_nes2net.examples import speech_like
from modeling_nes2net.plotting import plot_timeline
from modeling_nes2net.protocols import WINDOW_SAMPLES, first_window_tiled, window_segments
from modeling_nes2net.scorer import DetectionFailure

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def model(model_dir):
    from modeling_nes2net import Nes2NetForAudioClassification

    return Nes2NetForAudioClassification.from_pretrained(model_dir).eval()


def _logits(model, waveform: np.ndarray) -> torch.Tensor:
    with torch.inference_mode():
        return model(torch.from_numpy(waveform)[None]).logits[0]


def _split(waveform: np.ndarray, sizes: list[int]):
    bounds = np.cumsum([0] + sizes)
    return [waveform[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


@pytest.mark.parametrize("total", [1, 999, 1000, 1001, 2500, 4321])
def test_window_segments_cover_the_stream_whatever_the_blocks(total):
    waveform = np.arange(total, dtype=np.float32)
    rng = np.random.default_rng(total)
    sizes = list(rng.integers(1, 700, size=total))
    blocks = _split(waveform, sizes)
    segments = list(window_segments(blocks, window=1000, hop=500))
    starts = [start for start, _ in segments]
    for start, samples in segments:
        np.testing.assert_array_equal(samples, waveform[start : start + len(samples)])
    if total <= 1000:
        assert starts == [0] and len(segments[0][1]) == total
    else:
        assert all(len(samples) == 1000 for _, samples in segments)
        assert starts[0] == 0 and starts[-1] == total - 1000
        assert all(0 < b - a <= 500 for a, b in zip(starts, starts[1:]))
        regular = list(range(0, total - 1000 + 1, 500))
        assert starts[: len(regular)] == regular


def test_first_window_tiles_short_clips_and_stops_reading_long_ones():
    ((start, tiled),) = first_window_tiled([np.array([1, 2, 3], np.float32)], window=8)
    assert start == 0
    np.testing.assert_array_equal(tiled, [1, 2, 3, 1, 2, 3, 1, 2])

    def endless():
        while True:
            yield np.ones(3, np.float32)

    ((_, first),) = first_window_tiled(endless(), window=10)
    assert first.shape == (10,)


def test_full_protocol_equals_the_model_and_the_pipeline(model_dir, model, tmp_path):
    from transformers import pipeline

    path = write_audio(tmp_path / "clip.wav", 2.5)
    result = Nes2NetDetector(model, protocol="full").detect(path)
    logits = _logits(model, soundfile.read(path, dtype="float32")[0])
    assert result.score == pytest.approx(float(logits[1]), abs=1e-5)
    assert result.log_odds == pytest.approx(float(logits[1] - logits[0]), abs=1e-5)
    classify = pipeline("audio-classification", model=str(model_dir), device="cpu")
    probabilities = {entry["label"]: entry["score"] for entry in classify(str(path))}
    assert result.bonafide_probability == pytest.approx(probabilities["bonafide"], abs=1e-5)
    assert result.label == ("bonafide" if probabilities["bonafide"] >= 0.5 else "spoof")
    assert result.segments[0].start == 0 and result.segments[0].end == pytest.approx(2.5)


def test_4sec_protocol_scores_the_tiled_first_64600_samples(model, tmp_path):
    short = write_audio(tmp_path / "short.wav", 1.0)
    result = Nes2NetDetector(model, protocol="4sec").detect(short)
    tiled = np.resize(soundfile.read(short, dtype="float32")[0], WINDOW_SAMPLES)
    assert result.score == pytest.approx(float(_logits(model, tiled)[1]), abs=1e-5)
    assert result.duration == pytest.approx(1.0)


def test_short_clips_give_the_same_score_in_every_batch(model, tmp_path):
    lengths = [0.2, 3.1, 1.0, 0.7, 2.2]
    paths = [write_audio(tmp_path / f"clip{i}.wav", seconds) for i, seconds in enumerate(lengths)]
    alone = [Nes2NetDetector(model, batch_size=1).detect(path) for path in paths]
    batched = list(Nes2NetDetector(model, batch_size=4).detect_many(paths))
    assert [result.source for result in batched] == [str(path) for path in paths]  # input order
    for one, many in zip(alone, batched):
        assert many.score == pytest.approx(one.score, abs=1e-4)
        assert many.duration == pytest.approx(one.duration)
        assert many.aggregation is None and len(many.segments) == 1


def test_more_inputs_than_the_pool_come_back_in_order_with_their_own_scores(model):
    rng = np.random.default_rng(0)
    lengths = [int(n) for n in rng.integers(3_200, 8_000, size=13)]
    lengths[4] = 20_000  # one recording with several windows among the clips
    inputs = [(speech_like(n / 16_000, seed=i), 16_000) for i, n in enumerate(lengths)]
    windows = {"window": 4_000, "hop": 2_000}
    expected = [Nes2NetDetector(model, batch_size=1, **windows).detect(*source) for source in inputs]
    outcomes = list(Nes2NetDetector(model, batch_size=2, **windows).detect_many(inputs))  # pool of 8 segments
    assert [len(result.segments) for result in outcomes] == [len(result.segments) for result in expected]
    for result, reference in zip(outcomes, expected):
        assert result.duration == pytest.approx(reference.duration)
        assert result.score == pytest.approx(reference.score, abs=1e-4)


@needs_ffmpeg
def test_every_format_and_rate_is_scored_close_to_its_16k_original(model, tmp_path):
    reference = Nes2NetDetector(model).detect(write_audio(tmp_path / "ref.wav", 2.0, rate=16_000))
    stereo_44k = write_audio(tmp_path / "stereo44k.wav", 2.0, rate=44_100, channels=2)
    inputs = [
        write_audio(tmp_path / "phone.wav", 2.0, rate=8_000),
        stereo_44k,
        write_audio(tmp_path / "clip.flac", 2.0, rate=48_000),
        ffmpeg_encode(stereo_44k, tmp_path / "clip.mp3"),
        ffmpeg_encode(stereo_44k, tmp_path / "clip.ogg"),
        ffmpeg_encode(stereo_44k, tmp_path / "clip.m4a"),
    ]
    for result in Nes2NetDetector(model, batch_size=3).detect_many(inputs):
        assert isinstance(result, DetectionResult), result
        assert result.duration == pytest.approx(2.0, abs=0.06)
        assert abs(result.bonafide_probability - reference.bonafide_probability) < 0.05, result.source


def test_bad_inputs_fail_alone_with_one_line_reasons(model, tmp_path):
    good = write_audio(tmp_path / "good.wav", 1.0)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "header.wav").write_bytes(good.read_bytes()[:30])
    (tmp_path / "text.wav").write_text("definitely not audio")
    soundfile.write(tmp_path / "silent.wav", np.zeros(16_000, np.int16), 16_000)
    nan = tone_and_noise(1.0, 16_000)
    nan[5] = np.nan
    soundfile.write(tmp_path / "nan.wav", nan, 16_000, subtype="FLOAT")
    soundfile.write(tmp_path / "tiny.wav", tone_and_noise(0.0005, 16_000), 16_000)  # 8 samples
    expected = {
        "empty.wav": "empty file",
        "header.wav": "cannot decode audio",
        "text.wav": "cannot decode audio",
        "silent.wav": "digital silence",
        "nan.wav": "NaN or infinite",
        "tiny.wav": "too short to score",
    }
    inputs = [good] + [tmp_path / name for name in expected] + [good]
    outcomes = list(Nes2NetDetector(model, batch_size=2).detect_many(inputs))
    assert isinstance(outcomes[0], DetectionResult) and isinstance(outcomes[-1], DetectionResult)
    assert outcomes[0].score == pytest.approx(outcomes[-1].score, abs=1e-5)
    for outcome, (name, problem) in zip(outcomes[1:-1], expected.items()):
        assert isinstance(outcome, DetectionFailure), outcome
        assert outcome.error.startswith(f"{tmp_path / name}: ") and problem in outcome.error
        assert "\n" not in outcome.error
    with pytest.raises(AudioInputError, match="digital silence"):
        Nes2NetDetector(model).detect(tmp_path / "silent.wav")


def test_arrays_bytes_and_paths_score_alike(model, tmp_path):
    path = write_audio(tmp_path / "clip.flac", 1.5, rate=22_050, channels=2)
    detector = Nes2NetDetector(model)
    from_path = detector.detect(path)
    stereo, rate = soundfile.read(path, dtype="float32")
    assert detector.detect(stereo, sampling_rate=rate).score == pytest.approx(from_path.score, abs=1e-5)
    assert detector.detect(path.read_bytes()).score == pytest.approx(from_path.score, abs=1e-6)
    assert detector.detect(path.read_bytes()).source == "<bytes>"


def test_windows_timeline_and_aggregation_rules(model, tmp_path):
    # 2 s of tone, then 1.25 s of louder distorted noise: windows differ, so `mean` and `any` disagree.
    tone, noise = tone_and_noise(2.0, 16_000)[:, 0], tone_and_noise(1.25, 16_000, seed=3)[:, 0]
    waveform = np.concatenate([tone, 0.8 * noise**3])
    windows = {"window": 16_000, "hop": 8_000, "state_windows": False}  # each window its own audio, checked below
    mean = Nes2NetDetector(model, aggregation="mean", **windows).detect(waveform, sampling_rate=16_000)
    worst = Nes2NetDetector(model, aggregation="any", **windows).detect(waveform, sampling_rate=16_000)
    starts = [segment.start for segment in mean.segments]
    assert starts == pytest.approx([0, 0.5, 1.0, 1.5, 2.0, 2.25])
    assert mean.segments[-1].end == pytest.approx(3.25) and mean.duration == pytest.approx(3.25)
    odds = np.array([segment.log_odds for segment in mean.segments])
    assert len(set(np.round(odds, 5))) > 1
    assert mean.log_odds == pytest.approx(odds.mean(), abs=1e-6)
    assert mean.score == pytest.approx(np.mean([segment.score for segment in mean.segments]), abs=1e-6)
    assert worst.log_odds == pytest.approx(odds.min(), abs=1e-6) and worst.aggregation == "any"
    for segment in mean.segments:
        window = waveform[round(segment.start * 16_000) : round(segment.end * 16_000)]
        logits = _logits(model, window)
        assert segment.score == pytest.approx(float(logits[1]), abs=1e-4)
        assert segment.probability == pytest.approx(float(torch.softmax(logits, -1)[1]), abs=1e-5)


def test_the_config_calibration_moves_the_decision_and_a_threshold_overrides_it(model_dir, tmp_path):
    from modeling_nes2net import Nes2NetForAudioClassification

    path = write_audio(tmp_path / "clip.wav", 1.0)
    model = Nes2NetForAudioClassification.from_pretrained(model_dir)
    log_odds = Nes2NetDetector(model).detect(path).log_odds
    assert Nes2NetDetector(model).threshold == 0.0
    model.config.calibration_offset = -(log_odds + 1.0)  # the calibrated log-odds of this clip become -1
    above = Nes2NetDetector(model).detect(path)
    assert above.threshold == 0.0 and above.log_odds == pytest.approx(-1.0, abs=1e-5) and above.label == "spoof"
    below = Nes2NetDetector(model, threshold=-2.0).detect(path)
    assert below.threshold == -2.0 and below.label == "bonafide"


@pytest.mark.parametrize("quantize, tolerance", [("int8", 0.05), ("bf16", 0.05)])
@pytest.mark.parametrize("layer_statistics", [False, True])
def test_fast_paths_stay_close(model_dir, tmp_path, quantize, tolerance, layer_statistics):
    if layer_statistics:  # the embedded default's shape: Whisper, AttM of normalised layers, their statistics
        model_dir = save_model_folder(tiny_model("whisper", layer_merge="attm", normalize_layers=True,
                                                 layer_statistics=True), tmp_path / "model")
    paths = [write_audio(tmp_path / f"clip{i}.wav", 1.0 + i) for i in range(3)]
    exact = Nes2NetDetector.from_pretrained(str(model_dir)).detect_many(paths)
    fast = Nes2NetDetector.from_pretrained(str(model_dir), quantize=quantize, device="cpu").detect_many(paths)
    for a, b in zip(exact, fast):
        assert abs(a.bonafide_probability - b.bonafide_probability) < tolerance


def test_timeline_plot(model, tmp_path):
    result = Nes2NetDetector(model, threshold=100.0).detect(write_audio(tmp_path / "clip.wav", 9.0))
    assert result.label == "spoof"
    (stretch,) = result.stretches
    assert (stretch.start, stretch.end) == pytest.approx((0.0, 9.0))
    figure = plot_timeline(result)
    assert len(figure.axes) == 2
    lines = {line.get_label(): line for line in figure.axes[1].get_lines()}
    np.testing.assert_array_equal(lines["per 10 ms"].get_ydata(), result.timeline)  # the curve the stretches come from
    assert len(lines["windows"].get_xdata()) == len(result.segments)
    for axes in figure.axes:  # the plot shades the result's stretches, the rule the label and --segments follow
        (shaded,) = axes.patches
        assert shaded.get_x() == pytest.approx(stretch.start) and shaded.get_width() == pytest.approx(9.0)
    figure.savefig(tmp_path / "timeline.png")
    assert (tmp_path / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_30_minute_recording_streams_in_bounded_memory(tmp_path):
    """30 min of tone+noise through a tiny spectrogram model: peak numpy memory stays far below the 115 MB that
    the decoded float32 recording alone would take."""
    path = write_long_wav(tmp_path / "long.wav", 30 * 60)
    detector = Nes2NetDetector(tiny_model("spectrogram", spectrogram_hop_length=320), batch_size=8, device="cpu")
    tracemalloc.start()
    try:
        result = detector.detect(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.duration == pytest.approx(1800.0)
    assert len(result.segments) == (30 * 60 * 16_000 - WINDOW_SAMPLES) // (WINDOW_SAMPLES // 2) + 2
    assert result.segments[-1].end == pytest.approx(1800.0)
    assert len(result.envelope) == 18_000
    assert peak < 30e6, f"peak traced memory {peak / 1e6:.1f} MB"
