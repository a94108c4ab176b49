"""Conversion of the authors' checkpoints: synthetic originals with the exact original key layout at tiny sizes
(`original_checkpoints`), converted and compared with the original computation on the same weights at 1e-5."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForAudioClassification, Wav2Vec2FeatureExtractor

from hub_cards.folder_cards import render_conversion_card
from modeling_nes2net import Nes2NetForAudioClassification
from modeling_nes2net.convert import ConversionError, convert_checkpoint
from nes2net.cli import main as cli_main
from tests.modeling.original_checkpoints import RELEASES, TINY_BACKEND, TINY_OVERRIDES, OriginalModel, waveforms

torch.set_num_threads(1)


def convert(original: OriginalModel, tmp_path: Path, state: dict | None = None, **overrides):
    checkpoint = tmp_path / "original.pth"
    torch.save(original.state_dict() if state is None else state, checkpoint)
    settings = {**TINY_OVERRIDES[original.settings["frontend"]], **overrides}
    return convert_checkpoint(checkpoint, tmp_path / "converted", original.release, **settings)


def assert_nothing_written(tmp_path: Path) -> None:
    leftovers = sorted(path.name for path in tmp_path.iterdir() if path.name != "original.pth")
    assert leftovers == [], f"conversion left {leftovers} behind"


@pytest.mark.parametrize("release", list(RELEASES))
def test_converted_folder_reproduces_the_original_computation(release, tmp_path):
    original = OriginalModel(release)
    result = convert(original, tmp_path)
    model = AutoModelForAudioClassification.from_pretrained(result.output_dir).eval()
    assert isinstance(model, Nes2NetForAudioClassification)
    audio = waveforms()
    with torch.no_grad():
        logits = model(audio).logits
    expected = original.logits(audio)
    assert logits.shape == (2, RELEASES[release]["n_logits"])
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)
    frontend_tensors = len(original.frontend.state_dict())
    expected_count = sum(1 for key in original.state_dict() if not re.search(r"quantizer|project_q|final_proj", key))
    assert result.converted == expected_count and frontend_tensors < expected_count
    assert model.config.dilation == RELEASES[release]["dilation"]
    assert model.config.normalize_waveform == original.through_s3prl


def test_xlsr_conversion_reports_the_ignored_pretraining_heads_and_writes_a_complete_folder(tmp_path):
    result = convert(OriginalModel("nes2net-x-xlsr"), tmp_path, model_card=render_conversion_card)
    assert result.ignored == ["ssl_model.model." + name for name in (
        "final_proj.bias", "final_proj.weight", "project_q.bias", "project_q.weight", "quantizer.vars",
        "quantizer.weight_proj.bias", "quantizer.weight_proj.weight",
    )]
    files = {path.name for path in result.output_dir.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md", "configuration_nes2net.py",
            "modeling_nes2net.py"} <= files
    assert Wav2Vec2FeatureExtractor.from_pretrained(result.output_dir).do_normalize is False
    card = (result.output_dir / "README.md").read_text()
    assert result.sha256 in card and "quantizer.vars" in card and "base_model" not in card
    assert [name for name in sorted(files) if f"`{name}`" not in card] == []  # the card explains every file
    frontend = result.config.frontend_config
    assert (frontend.hidden_size, frontend.num_hidden_layers, frontend.intermediate_size) == (64, 2, 96)
    assert (tuple(frontend.conv_kernel), tuple(frontend.conv_stride), frontend.conv_bias) == ((10, 3), (5, 2), True)


def test_s3prl_hidden_states_need_the_post_norm_last_layer_and_the_normalised_waveform(tmp_path):
    """Without `tie_last_hidden_states` (transformers' hidden_states[-1] is taken before the final norm) or without
    the waveform normalisation s3prl applies, the converted SEA model would not be the original."""
    original = OriginalModel("nes2net-x-wavlm-sea")
    audio = waveforms()
    expected = original.logits(audio)
    variants = {
        "as converted": {},
        "untied": {"frontend_config": {"tie_last_hidden_states": False}},
        "raw waveform": {"normalize_waveform": False},
    }
    for name, overrides in variants.items():
        folder = tmp_path / name
        folder.mkdir()
        result = convert(original, folder, **overrides)
        with torch.no_grad():
            logits = Nes2NetForAudioClassification.from_pretrained(result.output_dir).eval()(audio).logits
        difference = (logits - expected).abs().max().item()
        assert (difference < 1e-5) == (name == "as converted"), (name, difference)


@pytest.mark.parametrize("wrapping", ["module. prefix", "model_state_dict", "both"])
def test_wrapped_checkpoints(wrapping, tmp_path):
    original = OriginalModel("nes2net-x-xlsr")
    state = original.state_dict()
    if wrapping != "model_state_dict":
        state = {"module." + key: value for key, value in state.items()}
    if wrapping != "module. prefix":
        state = {"epoch": 12, "model_state_dict": state, "optimizer_state_dict": {"state": {}, "param_groups": []}}
    result = convert(original, tmp_path, state=state)
    audio = waveforms()
    with torch.no_grad():
        logits = Nes2NetForAudioClassification.from_pretrained(result.output_dir).eval()(audio).logits
    torch.testing.assert_close(logits, original.logits(audio), rtol=0, atol=1e-5)


def _corrupt(state: dict, how: str) -> dict:
    state = dict(state)
    if how == "missing key":
        del state["Nested_Res2Net_TDNN.fc.bias"]
    elif how == "wrong shape":
        state["Nested_Res2Net_TDNN.Build_in_Res2Nets.1.conv3.weight"] = torch.zeros(16, 12, 1)
    elif how == "unknown key":
        state["Nested_Res2Net_TDNN.Build_in_Res2Nets.0.extra.weight"] = torch.zeros(3)
        state["ssl_model.model.encoder.layers.0.adapter.weight"] = torch.zeros(3)
        state["classifier.weight"] = torch.zeros(3)
    return state


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("missing key", r"model tensors the checkpoint lacks \(1\):\n    classifier\.bias"),
        ("wrong shape", r"Nested_Res2Net_TDNN\.Build_in_Res2Nets\.1\.conv3\.weight -> "
                        r"nes2net\.backend\.blocks\.1\.conv_out\.weight: checkpoint \(16, 12, 1\), model \(16, 16, 1\)"),
        ("unknown key", r"tensors with no known name \(3\):\n"
                        r"    Nested_Res2Net_TDNN\.Build_in_Res2Nets\.0\.extra\.weight\n"
                        r"    classifier\.weight\n    ssl_model\.model\.encoder\.layers\.0\.adapter\.weight"),
    ],
)
def test_corrupted_checkpoints_are_refused_with_the_names_and_nothing_is_written(how, message, tmp_path):
    original = OriginalModel("nes2net-x-xlsr")
    with pytest.raises(ConversionError, match=message):
        convert(original, tmp_path, state=_corrupt(original.state_dict(), how))
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([1, 2, 3], "holds list, not a state dict"),
        ({"model": {"encoder.weight": torch.zeros(2)}, "cfg": {"normalize": True}}, "entries that are not tensors"),
        (argparse.Namespace(weights=torch.zeros(2)), "is not a weights-only PyTorch checkpoint"),
        (b"not a checkpoint at all", "is not a weights-only PyTorch checkpoint"),
    ],
)
def test_files_that_are_not_state_dicts_are_refused(content, message, tmp_path):
    checkpoint = tmp_path / "original.pth"
    if isinstance(content, bytes):
        checkpoint.write_bytes(content)
    else:
        torch.save(content, checkpoint)
    with pytest.raises(ConversionError, match=message):
        convert_checkpoint(checkpoint, tmp_path / "converted", "nes2net-x-xlsr")
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("release", "preset", "overrides", "message"),
    [
        ("nes2net-x-xlsr", "nes2net-x-wavlm", {},
         "front-end is wav2vec2 but preset 'nes2net-x-wavlm' describes wavlm"),
        ("nes2net-wavlm-sea", "nes2net-x-wavlm-sea", {},
         r"backend_variant \(checkpoint 'nes2net', preset 'nes2net-x'\)"),
        ("nes2net-x-wavlm-sea", "nes2net-x-wavlm", {},
         r"preset 'nes2net-x-wavlm': layer_merge \(checkpoint 'sea', preset 'last'\)\. Choose"),
        ("nes2net-x-xlsr", "nes2net-x-xlsr", {"frontend_config": {}},
         "num_attention_heads of this wav2vec2 front-end"),
        ("nes2net-x-xlsr", "nes2net-x-xlsr", {"frontend_config": {"num_attention_heads": 2}, "outer_ratio": 2},
         r"outer_ratio \(checkpoint 4, requested 2\)"),
    ],
)
def test_a_preset_that_does_not_describe_the_checkpoint_is_refused(release, preset, overrides, message, tmp_path):
    original = OriginalModel(release)
    checkpoint = tmp_path / "original.pth"
    torch.save(original.state_dict(), checkpoint)
    with pytest.raises(ConversionError, match=message):
        convert_checkpoint(checkpoint, tmp_path / "converted", preset, **{**TINY_BACKEND, **overrides})
    assert_nothing_written(tmp_path)


def test_an_existing_folder_is_kept_unless_overwrite(tmp_path):
    original = OriginalModel("nes2net-x-xlsr")
    (tmp_path / "converted").mkdir()
    (tmp_path / "converted" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        convert(original, tmp_path)
    assert (tmp_path / "converted" / "keep.txt").read_text() == "mine"
    result = convert(original, tmp_path, overwrite=True)
    assert not (result.output_dir / "keep.txt").exists() and (result.output_dir / "model.safetensors").is_file()


def test_command_line(tmp_path, capsys, caplog):
    original = OriginalModel("nes2net-x-selu-wavlm-sea")
    checkpoint = tmp_path / "original.pth"
    torch.save(original.state_dict(), checkpoint)
    out = tmp_path / "converted"
    status = cli_main(["convert", str(checkpoint), str(out), "--preset", "nes2net-x-selu-wavlm-sea",
                       "--set", "outer_ratio=4", "--set", "inner_ratio=4", "--dilation", "1"])
    assert status == 0
    assert "ignored" in capsys.readouterr().out
    assert "nes2net-x-selu-wavlm-sea" in (out / "README.md").read_text()  # the command writes the card
    with torch.no_grad():
        logits = Nes2NetForAudioClassification.from_pretrained(out).eval()(waveforms()).logits
    torch.testing.assert_close(logits, original.logits(waveforms()), rtol=0, atol=1e-5)

    status = cli_main(["convert", str(checkpoint), str(tmp_path / "other"), "--preset", "nes2net-x-xlsr"])
    assert status == 1
    assert "front-end is wavlm but preset 'nes2net-x-xlsr'" in caplog.text
    assert not (tmp_path / "other").exists()


def test_padded_batches_match_the_original_on_each_unpadded_waveform(tmp_path):
    """The s3prl-style normalisation inside the converted model uses only the real samples of each waveform."""
    original = OriginalModel("nes2net-x-wavlm-sea")
    model = Nes2NetForAudioClassification.from_pretrained(convert(original, tmp_path).output_dir).eval()
    long, short = waveforms(batch=1, samples=4800, seed=1), waveforms(batch=1, samples=3200, seed=2) + 0.05
    batch = torch.zeros(2, 4800)
    batch[0], batch[1, :3200] = long[0], short[0]
    attention_mask = torch.zeros(2, 4800, dtype=torch.long)
    attention_mask[0], attention_mask[1, :3200] = 1, 1
    with torch.no_grad():
        logits = model(batch, attention_mask=attention_mask).logits
    expected = torch.cat([original.logits(long), original.logits(short)])
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)


def test_the_in_the_wild_release_with_a_single_logit_converts_under_the_xlsr_preset(tmp_path):
    """The released In-the-Wild checkpoint has `fc` `[1, 1024]` (`--n_output_logits=1`) in the ASVspoof 2019 layout."""
    original = OriginalModel("nes2net-x-xlsr", n_logits=1)
    result = convert(original, tmp_path)
    model = AutoModelForAudioClassification.from_pretrained(result.output_dir).eval()
    assert model.config.num_labels == 1 and model.config.problem_type == "multi_label_classification"
    audio = waveforms()
    with torch.no_grad():
        torch.testing.assert_close(model(audio).logits, original.logits(audio), rtol=0, atol=1e-5)


def test_the_preset_is_picked_from_the_tensors_when_only_one_fits(tmp_path):
    original = OriginalModel("nes2net-x-xlsr")
    checkpoint = tmp_path / "original.pth"
    torch.save(original.state_dict(), checkpoint)
    result = convert_checkpoint(checkpoint, tmp_path / "converted", **TINY_OVERRIDES["wav2vec2"])
    assert result.preset == "nes2net-x-xlsr"
    ambiguous = OriginalModel("nes2net-x-wavlm-sea")
    torch.save(ambiguous.state_dict(), checkpoint)
    with pytest.raises(ConversionError, match="fit presets nes2net-x-wavlm-sea, nes2net-x-selu-wavlm-sea, which differ"):
        convert_checkpoint(checkpoint, tmp_path / "other", **TINY_OVERRIDES["wavlm"])


def test_a_file_holding_a_bare_tensor_is_named_and_explained(tmp_path):
    checkpoint = tmp_path / "weights.pth"
    torch.save(torch.zeros(3, 4), checkpoint)
    with pytest.raises(ConversionError, match=r"weights\.pth holds a single tensor \(3x4\), not a state dict"):
        convert_checkpoint(checkpoint, tmp_path / "converted", "nes2net-x-xlsr")
    assert not (tmp_path / "converted").exists()
