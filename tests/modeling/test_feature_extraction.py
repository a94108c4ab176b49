"""`Nes2NetFeatureExtractor` (issue 18 item 5): saved into every model folder, found by the auto classes, and
refusing the waveforms `detect` refuses with the same one-line messages, so `pipeline` refuses them too."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.tiny_models import tiny_model
from transformers import AutoFeatureExtractor, pipeline

from modeling_nes2net import Nes2NetFeatureExtractor, save_model_folder
from modeling_nes2net.audio import AudioInputError
from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.model_loading import DEFAULT_MODEL_DIR

BAD_WAVEFORMS = {
    "nan": np.array([0.1, np.nan, 0.2] * 4000, dtype=np.float32),
    "inf": np.array([0.1, np.inf, 0.2] * 4000, dtype=np.float32),
    "empty": np.zeros(0, dtype=np.float32),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_model_folder(tiny_model("spectrogram"), tmp_path_factory.mktemp("fe") / "model")


def test_model_folders_carry_the_feature_extractor_and_the_auto_class_finds_it(folder):
    saved = json.loads((folder / "preprocessor_config.json").read_text())
    assert saved["feature_extractor_type"] == "Nes2NetFeatureExtractor"
    assert isinstance(AutoFeatureExtractor.from_pretrained(folder), Nes2NetFeatureExtractor)
    assert isinstance(AutoFeatureExtractor.from_pretrained(DEFAULT_MODEL_DIR), Nes2NetFeatureExtractor)


@pytest.mark.parametrize("name", list(BAD_WAVEFORMS))
def test_pipeline_refuses_what_detect_refuses_with_the_same_line(folder, name):
    waveform = BAD_WAVEFORMS[name]
    detector = Nes2NetDetector.from_pretrained(str(folder), protocol="full", device="cpu")
    with pytest.raises(AudioInputError) as from_detect:
        detector.detect(waveform, sampling_rate=16000)
    classifier = pipeline("audio-classification", model=str(folder))
    with pytest.raises(ValueError) as from_pipeline:
        classifier({"raw": waveform, "sampling_rate": 16000})
    assert str(from_pipeline.value) == str(from_detect.value)
    assert "\n" not in str(from_pipeline.value)


def test_a_batch_is_checked_waveform_by_waveform_and_a_wrong_rate_is_refused():
    extractor = Nes2NetFeatureExtractor()
    good = np.zeros(1600, dtype=np.float32) + 0.1
    with pytest.raises(ValueError, match=r"^<array>: contains NaN or infinite samples$"):
        extractor([good, BAD_WAVEFORMS["nan"]], sampling_rate=16000)
    with pytest.raises(ValueError, match=r"^<array>: sampled at 8000 Hz, but this model takes 16000 Hz"):
        extractor(good, sampling_rate=8000)
    batch = extractor([good, good[:800]], sampling_rate=16000, padding=True, return_tensors="np")
    assert batch["input_values"].shape == (2, 1600) and batch["attention_mask"][1].sum() == 800
