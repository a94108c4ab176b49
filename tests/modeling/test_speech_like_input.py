"""What the detector accepts as speech-like input (`modeling_nes2net.input_check`) and MP3 / Ogg files cut short: each
refusal is one line naming the input, the same from the detection API and from `pipeline(...)`; real clips and
synthetic speech are never refused."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from tests.hostile.make_corpus import ffmpeg_encoded, speech_like
from tests.modeling.detection_audio import needs_ffmpeg, single_torch_thread  # noqa: F401  (fixture, via pytestmark)
from transformers import pipeline

from modeling_nes2net.audio import AudioInputError, load_audio
from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.input_check import check_speech_like

pytestmark = pytest.mark.usefixtures("single_torch_thread")
RATE = 16_000
TIME = np.arange(2 * RATE) / RATE
REFUSED = "not speech-like, nothing to score: "


@pytest.fixture(scope="module")
def detector(model_dir):
    return Nes2NetDetector.from_pretrained(str(model_dir), device="cpu")


@pytest.fixture(scope="module")
def classifier(model_dir):
    return pipeline("audio-classification", model=str(model_dir), device="cpu")


NOT_SPEECH = {
    "constant": (np.full(2 * RATE, 0.3), "a steady level"),
    "440 Hz square wave": (0.5 * np.sign(np.sin(2 * np.pi * 440 * TIME)), "a steady level"),
    "white noise": (0.3 * np.random.default_rng(0).standard_normal(2 * RATE), "a steady level"),
    "beeps": (0.5 * np.sin(2 * np.pi * 1000 * TIME) * (TIME % 0.5 < 0.25), "a pure tone (99."),
    "noise bursts": (0.3 * np.random.default_rng(1).standard_normal(2 * RATE) * (TIME % 0.5 < 0.25),
                     "white noise (spectral flatness 0.9"),
    "0.05 s of speech": (speech_like(0.05)[:, 0], "0.050 s long, under the 0.2 s of one syllable"),
    "digital silence": (np.zeros(2 * RATE), "digital silence (no sample above one 16-bit step)"),
    "speech x 1e30": (speech_like(2.0)[:, 0] * 1e30, "samples reach 5.0"),
    "int16 speech passed as float": (np.round(speech_like(2.0)[:, 0] * 32767), "samples reach 1.6"),
}


@pytest.mark.parametrize("kind", NOT_SPEECH)
def test_what_is_not_speech_is_refused_in_one_line_by_detect_and_the_pipeline_alike(detector, classifier, kind):
    waveform, reason = NOT_SPEECH[kind]
    waveform = waveform.astype(np.float32)
    with pytest.raises(AudioInputError) as from_detect:
        detector.detect(waveform, sampling_rate=RATE)
    with pytest.raises(AudioInputError) as from_pipeline:
        classifier({"raw": waveform, "sampling_rate": RATE})
    assert str(from_detect.value) == str(from_pipeline.value)
    assert str(from_detect.value).startswith(f"<array>: {REFUSED}{reason}"), str(from_detect.value)
    assert "\n" not in str(from_detect.value)


@pytest.mark.parametrize("seconds, rate, seed", [(0.2, 16_000, 0), (1.0, 8_000, 1), (4.0, 44_100, 2),
                                                 (30.0, 16_000, 3)])
def test_synthetic_speech_is_scored(detector, seconds, rate, seed):
    result = detector.detect(speech_like(seconds, rate, seed=seed)[:, 0], sampling_rate=rate)
    assert 0.0 <= result.bonafide_probability <= 1.0


def test_no_real_clip_is_refused(mini_antispoof):
    """Every clip of the real mini set, both classes, passes the rule (all three shared sets: 0 of 2,777 refused)."""
    with open(mini_antispoof / "metadata.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    refused = []
    for row in rows:
        try:
            check_speech_like(load_audio(mini_antispoof / row["file_name"]), RATE, row["file_name"])
        except AudioInputError as error:
            refused.append(str(error))
    assert len(rows) > 100 and refused == []


@needs_ffmpeg
@pytest.mark.parametrize("suffix, reason", [
    (".mp3", r"the header promises 3\.\d\d s, the file holds about 1\.8\d s"),
    (".opus", "its last page is cut"),
    (".ogg", "its last page is cut"),  # Vorbis
])
def test_a_truncated_mp3_or_ogg_is_refused_like_a_truncated_wav(detector, classifier, tmp_path, suffix, reason):
    encoded = ffmpeg_encoded(speech_like(3.0), suffix)
    assert detector.detect(encoded).duration == pytest.approx(3.0, abs=0.15)  # the whole file is scored
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(encoded[: round(0.6 * len(encoded))])
    expected = rf"^{cut}: truncated: {reason} \(an incomplete copy or download\?\)$"
    with pytest.raises(AudioInputError, match=expected):
        detector.detect(str(cut))
    with pytest.raises(AudioInputError, match=expected):
        classifier(str(cut))


@needs_ffmpeg
def test_an_ogg_file_cut_between_pages_is_refused_for_its_missing_end_of_stream_page():
    encoded = ffmpeg_encoded(speech_like(3.0), ".opus")
    with pytest.raises(AudioInputError, match=r"^<bytes>: truncated: the stream stops without its end-of-stream page"):
        load_audio(encoded[: encoded.rfind(b"OggS")])
