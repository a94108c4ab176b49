"""Auto classes, remote code in a process without the package, and the audio-classification pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification, pipeline

from modeling_nes2net import Nes2NetConfig, Nes2NetForAudioClassification, save_model_folder
from modeling_nes2net.examples import speech_like
from tests.remote_code import logits_without_the_package
from tests.tiny_models import tiny_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    model = tiny_model("wavlm", layer_merge="sea", layer_statistics=True)  # a classifier wider than the back-end's
    folder = save_model_folder(model, tmp_path_factory.mktemp("saved") / "tiny-nes2net")
    return model, folder


def test_saved_folder_is_complete(saved_model):
    _, folder = saved_model
    names = {path.name for path in folder.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= names
    assert {"configuration_nes2net.py", "modeling_nes2net.py", "layer_merge_nes2net.py", "frontends_nes2net.py",
            "feature_extraction_nes2net.py"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_nes2net.Nes2NetConfig",
        "AutoModelForAudioClassification": "modeling_nes2net.Nes2NetForAudioClassification",
    }
    preprocessor = json.loads((folder / "preprocessor_config.json").read_text())
    assert preprocessor["do_normalize"] is False and preprocessor["sampling_rate"] == 16000
    assert preprocessor["auto_map"] == {"AutoFeatureExtractor": "feature_extraction_nes2net.Nes2NetFeatureExtractor"}


def test_auto_classes_resolve_to_nes2net(saved_model):
    _, folder = saved_model
    assert isinstance(AutoConfig.from_pretrained(folder), Nes2NetConfig)
    assert isinstance(AutoModelForAudioClassification.from_pretrained(folder), Nes2NetForAudioClassification)
    extractor = AutoFeatureExtractor.from_pretrained(folder)
    assert type(extractor).__name__ == "Nes2NetFeatureExtractor" and not extractor.do_normalize


def test_trust_remote_code_without_the_package(saved_model, tmp_path):
    model, folder = saved_model
    waveform = (np.random.default_rng(0).standard_normal(7000) * 0.1).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(waveform)[None]).logits.numpy()
    np.testing.assert_allclose(logits_without_the_package(folder, waveform, tmp_path), expected, atol=1e-6, rtol=0)


def _expected_probabilities(model, waveform: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(waveform)[None]).logits, dim=-1)[0].numpy()


@pytest.mark.parametrize("source", ["array", "wav", "flac"])
def test_pipeline_scores_spoof_and_bonafide(saved_model, tmp_path, source):
    model, folder = saved_model
    waveform = speech_like(1.0, seed=1)
    if source == "array":
        inputs = {"raw": waveform, "sampling_rate": 16000}
    else:
        inputs = str(tmp_path / f"clip.{source}")
        sf.write(inputs, waveform, 16000, subtype="FLOAT" if source == "wav" else "PCM_24")
        waveform = sf.read(inputs, dtype="float32")[0]
    classifier = pipeline("audio-classification", model=str(folder))
    results = classifier(inputs)
    assert {result["label"] for result in results} == {"spoof", "bonafide"}
    scores = {result["label"]: result["score"] for result in results}
    assert scores["spoof"] + scores["bonafide"] == pytest.approx(1.0, abs=1e-6)
    expected = _expected_probabilities(model, waveform)
    assert scores["bonafide"] == pytest.approx(float(expected[1]), abs=1e-4)
