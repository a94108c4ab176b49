"""Reading a CTranslate2 Whisper file: a random transformers Whisper converted by CTranslate2's own converter reads
back to the same encoder weights, and they load into the Whisper front-end."""

from __future__ import annotations

import struct

import pytest
import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration

from modeling_nes2net import Nes2NetConfig, Nes2NetForAudioClassification
from training.whisper_weights import read_ctranslate2, whisper_encoder_from_ctranslate2

ctranslate2_converters = pytest.importorskip("ctranslate2.converters")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """(the original random Whisper, the CTranslate2 model.bin its converter wrote)."""
    folder = tmp_path_factory.mktemp("whisper")
    torch.manual_seed(0)
    config = WhisperConfig(d_model=64, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=96,
                           decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=96, vocab_size=51864)
    original = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # a key bias CTranslate2 must store as zeros, and non-trivial norms
        for module in original.model.encoder.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_()
    original.save_pretrained(folder / "hf")
    ctranslate2_converters.TransformersConverter(str(folder / "hf")).convert(str(folder / "ct2"))
    return original, folder / "ct2" / "model.bin"


def test_the_encoder_reads_back_exactly_as_transformers_had_it(converted):
    original, model_file = converted
    config, state_dict = whisper_encoder_from_ctranslate2(model_file)
    expected = original.model.encoder.state_dict()
    assert set(state_dict) == set(expected)
    for name, tensor in expected.items():
        torch.testing.assert_close(state_dict[name].float(), tensor, atol=0, rtol=0, msg=name)
    assert (config.d_model, config.encoder_layers, config.encoder_attention_heads, config.encoder_ffn_dim) == (
        64, 2, 4, 96)


def test_the_weights_load_into_a_whisper_front_end_and_give_the_original_encoders_output(converted):
    original, model_file = converted
    config, state_dict = whisper_encoder_from_ctranslate2(model_file)
    model = Nes2NetForAudioClassification(Nes2NetConfig(frontend_type="whisper", frontend_config=config.to_dict(),
                                                        outer_ratio=4, inner_ratio=4)).eval()
    model.nes2net.frontend.encoder.load_state_dict(state_dict, strict=True)
    features = torch.randn(1, 80, 3000)
    with torch.inference_mode():
        expected = original.model.encoder(features).last_hidden_state
        ours = model.nes2net.frontend.encoder(features).last_hidden_state
    torch.testing.assert_close(ours, expected, atol=0, rtol=0)


def test_another_binary_version_is_refused_in_one_line(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(struct.pack("<I", 99))
    with pytest.raises(ValueError, match="binary version 99 is not supported"):
        read_ctranslate2(path)
