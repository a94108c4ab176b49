"""`frontend_num_layers`: a saved model loaded with only the first N transformer layers of its SSL front-end."""

from __future__ import annotations

import pytest
import torch
from tests.tiny_models import tiny_config, tiny_model

from modeling_nes2net import Nes2NetForAudioClassification, save_model_folder


def test_truncated_frontend_computes_the_first_layers_of_the_full_one(tmp_path):
    full = tiny_model("wav2vec2", seed=1)
    folder = save_model_folder(full, tmp_path / "model")
    truncated = Nes2NetForAudioClassification.from_pretrained(folder, frontend_num_layers=1).eval()
    assert len(truncated.nes2net.frontend.encoder.layers) == 1 and truncated.config.num_frontend_layers == 2
    waveform = torch.randn(2, 8_000)
    with torch.inference_mode():
        features = truncated.nes2net(waveform).merged_features
        hidden_states = full.nes2net.frontend(waveform, output_hidden_states=True).hidden_states
        # stable layer norm: the encoder's final norm follows whichever layer is last
        expected = full.nes2net.frontend.encoder.layer_norm(hidden_states[1])
        torch.testing.assert_close(features, expected, rtol=1e-5, atol=1e-5)
        # the back-end is the full model's, unchanged
        torch.testing.assert_close(truncated.nes2net.backend(features)[1], full.nes2net.backend(expected)[1],
                                   rtol=1e-5, atol=1e-5)


def test_truncated_frontend_neither_builds_nor_runs_the_deeper_layers(tmp_path):
    full = tiny_model("wav2vec2", seed=2, frontend_overrides={"num_hidden_layers": 4})
    folder = save_model_folder(full, tmp_path / "model")
    truncated = Nes2NetForAudioClassification.from_pretrained(folder, frontend_num_layers=1).eval()
    calls = {"full": 0, "truncated": 0}
    for name, model in (("full", full), ("truncated", truncated)):
        for layer in model.nes2net.frontend.modules():
            if type(layer).__name__.endswith("EncoderLayerStableLayerNorm"):  # transformers' wav2vec2 layer class
                layer.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    with torch.inference_mode():
        for model in (full, truncated):
            model(input_values=torch.randn(1, 8_000))
    assert calls == {"full": 4, "truncated": 1}
    layer_parameters = sum(parameter.numel() for parameter in full.nes2net.frontend.encoder.layers[0].parameters())
    assert full.num_parameters() - truncated.num_parameters() == 3 * layer_parameters


@pytest.mark.parametrize("layers", [0, 3])
def test_frontend_num_layers_must_fit_the_frontend(layers):
    with pytest.raises(Exception, match="frontend_num_layers must be between 1 and"):
        tiny_config("wav2vec2", frontend_num_layers=layers)


def test_detection_loads_a_truncated_model_but_still_refuses_foreign_weights(tmp_path):
    from safetensors.torch import load_file, save_file

    from modeling_nes2net.model_loading import load_model
    from modeling_nes2net.weight_checks import ModelLoadError

    full = tiny_model("wav2vec2", seed=4)
    save_model_folder(full, tmp_path / "full")
    config = Nes2NetForAudioClassification.config_class.from_pretrained(tmp_path / "full")
    config.frontend_num_layers = 1
    config.save_pretrained(tmp_path / "full")  # the same weights, read with one transformer layer
    truncated = load_model(tmp_path / "full")
    assert len(truncated.nes2net.frontend.encoder.layers) == 1
    weights = load_file(tmp_path / "full" / "model.safetensors")
    weights["nes2net.backend.foreign.weight"] = torch.zeros(2)
    save_file(weights, tmp_path / "full" / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="1 unexpected weight"):
        load_model(tmp_path / "full")
