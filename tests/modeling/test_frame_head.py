"""Nes2NetForAudioFrameClassification: frame logits before pooling, the utterance head kept, Auto class, remote code."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForAudioFrameClassification

from modeling_nes2net import Nes2NetForAudioClassification, Nes2NetForAudioFrameClassification, save_model_folder
from tests.remote_code import logits_without_the_package
from tests.tiny_models import randomize_norm_statistics, tiny_config

torch.set_num_threads(1)


def tiny_frame_model(frontend: str = "spectrogram", seed: int = 0, **overrides) -> Nes2NetForAudioFrameClassification:
    torch.manual_seed(seed)
    model = Nes2NetForAudioFrameClassification(tiny_config(frontend, **overrides))
    randomize_norm_statistics(model, seed)
    return model.eval()


@pytest.mark.parametrize("frontend, overrides", [
    ("spectrogram", {}), ("wav2vec2", {}), ("wav2vec2", {"frame_statistics_window": 3}),
    ("whisper", {"layer_merge": "weighted_sum", "frame_statistics_window": 5}),
])
def test_frame_logits_cover_every_frame_and_ignore_padding(frontend, overrides):
    model = tiny_frame_model(frontend, **overrides)
    generator = torch.Generator().manual_seed(0)
    long, short = torch.randn(8000, generator=generator) * 0.1, torch.randn(5000, generator=generator) * 0.1
    batch = torch.zeros(2, 8000)
    batch[0], batch[1, :5000] = long, short
    mask = torch.zeros(2, 8000, dtype=torch.long)
    mask[0], mask[1, :5000] = 1, 1
    with torch.no_grad():
        padded = model(batch, attention_mask=mask)
        alone = model(short[None])
    frames = int(model.frame_lengths(torch.tensor(5000)))
    assert padded.frame_logits.shape == (2, int(model.frame_lengths(torch.tensor(8000))), 2)
    assert alone.frame_logits.shape[1] == frames == int(padded.frame_mask[1].sum())
    torch.testing.assert_close(padded.frame_logits[1, :frames], alone.frame_logits[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(padded.logits[1], alone.logits[0], atol=1e-5, rtol=1e-4)


def test_frame_times_are_frame_centres():
    spectrogram = tiny_frame_model("spectrogram")  # n_fft 126, hop 32
    np.testing.assert_allclose(spectrogram.frame_times(3).numpy(), (np.arange(3) * 32 + 63) / 16000)
    ssl = tiny_frame_model("wav2vec2")  # kernels (10, 4), strides (5, 4): 20 samples apart, 25 wide
    np.testing.assert_allclose(ssl.frame_times(2).numpy(), (np.arange(2) * 20 + 12.5) / 16000)


@pytest.mark.parametrize("layer_statistics", [False, True])
def test_a_trained_utterance_model_loads_with_a_new_frame_head(tmp_path, layer_statistics):
    torch.manual_seed(1)
    classifier = Nes2NetForAudioClassification(tiny_config("spectrogram", layer_statistics=layer_statistics))
    randomize_norm_statistics(classifier)
    classifier.eval().save_pretrained(tmp_path / "classifier")
    framed = Nes2NetForAudioFrameClassification.from_pretrained(tmp_path / "classifier", allow_new_weights=True).eval()
    waveform = torch.randn(1, 4000) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(framed(waveform).logits, classifier(waveform).logits)
    framed.freeze_utterance_model()
    trainable = {name for name, parameter in framed.named_parameters() if parameter.requires_grad}
    assert trainable == {"frame_classifier.weight", "frame_classifier.bias"}


def test_frame_loss_ignores_padded_frames():
    model = tiny_frame_model()
    waveform = torch.randn(1, 4000) * 0.1
    batch, mask = torch.zeros(1, 6000), torch.zeros(1, 6000, dtype=torch.long)
    batch[0, :4000], mask[0, :4000] = waveform, 1
    frames = int(model.frame_lengths(torch.tensor(6000)))
    labels = torch.zeros(1, frames, dtype=torch.long)
    flipped = labels.clone()
    flipped[0, int(model.frame_lengths(torch.tensor(4000))) :] = 1  # only the padded frames differ
    with torch.no_grad():
        loss = model(batch, attention_mask=mask, frame_labels=labels).loss
        assert torch.equal(loss, model(batch, attention_mask=mask, frame_labels=flipped).loss)
        assert not torch.equal(loss, model(batch, frame_labels=flipped).loss)


def test_auto_class_and_remote_code_without_the_package(tmp_path):
    model = tiny_frame_model()
    folder = save_model_folder(model, tmp_path / "framed")
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModelForAudioFrameClassification"] == (
        "modeling_nes2net.Nes2NetForAudioFrameClassification"
    )
    assert isinstance(AutoModelForAudioFrameClassification.from_pretrained(folder), Nes2NetForAudioFrameClassification)
    waveform = (np.random.default_rng(0).standard_normal(6000) * 0.1).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(waveform)[None]).frame_logits.numpy()
    frames = logits_without_the_package(folder, waveform, tmp_path, "AutoModelForAudioFrameClassification",
                                        "frame_logits")
    np.testing.assert_allclose(frames, expected, atol=1e-6, rtol=0)
