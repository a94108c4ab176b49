"""Conversion of the authors' checkpoints: synthetic originals with the exact original key layout at tiny sizes.

The front-end half of each original is a tiny transformers model whose weights are renamed into fairseq / unilm
names; the back-end half is `benchmarks.reference_nes2net` (the original back-end with the original names). The
converted folder must reproduce the logits of the original computation, run independently: the tiny front-end as
the original called it (fairseq `features_only`, unilm `extract_features`, s3prl's normalised input and hooked hidden
states), the original SEA merge, and the reference back-end.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForAudioClassification, Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model
from transformers import WavLMConfig, WavLMModel

from benchmarks.reference_nes2net import ReferenceNes2Net
from modeling_nes2net import Nes2NetForAudioClassification
from modeling_nes2net.cli import main as cli_main
from modeling_nes2net.convert import ConversionError, convert_checkpoint
from tests.tiny_models import randomize_norm_statistics

torch.set_num_threads(1)

TINY_FRONTEND = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 96,
    "conv_dim": (32, 32),
    "conv_kernel": (10, 3),
    "conv_stride": (5, 2),
    "feat_extract_norm": "layer",
    "do_stable_layer_norm": True,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "layerdrop": 0.0,
    "apply_spec_augment": False,
}
TINY_BACKEND = {"outer_ratio": 4, "inner_ratio": 4}
# What the tiny sizes need beyond the preset and the tensors (wav2vec 2.0 stores its number of heads nowhere).
TINY_OVERRIDES = {
    "wav2vec2": {**TINY_BACKEND, "frontend_config": {"num_attention_heads": 2}},
    "wavlm": dict(TINY_BACKEND),
}
# The authors' settings of each preset's back-end, as their scripts build it (reference_nes2net arguments).
RELEASES = {
    "nes2net-x-xlsr": {"frontend": "wav2vec2", "n_logits": 2, "dilation": 2, "variant": "nes2net-x"},
    "nes2net-x-wavlm": {
        "frontend": "wavlm", "n_logits": 2, "dilation": 1, "variant": "nes2net-x", "se_min_channels": 2,
    },
    "nes2net-wavlm-sea": {"frontend": "wavlm", "n_logits": 1, "dilation": 1, "variant": "nes2net", "sea": True},
    "nes2net-x-wavlm-sea": {"frontend": "wavlm", "n_logits": 1, "dilation": 1, "variant": "nes2net-x", "sea": True},
    "nes2net-x-selu-wavlm-sea": {
        "frontend": "wavlm", "n_logits": 1, "dilation": 1, "variant": "nes2net-x", "sea": True,
        "activation": "selu", "se_min_channels": 2,
    },
}


def original_frontend_name(name: str) -> str:
    """A transformers `Wav2Vec2Model` / `WavLMModel` parameter name -> its fairseq wav2vec 2.0 / unilm WavLM name
    (from fairseq/models/wav2vec/wav2vec2.py and unilm/wavlm/WavLM.py + modules.py)."""
    if match := re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.conv\.(\w+)", name):
        return f"feature_extractor.conv_layers.{match[1]}.0.{match[2]}"  # Sequential(conv, dropout, norm, GELU)
    if match := re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(\w+)", name):
        return f"feature_extractor.conv_layers.{match[1]}.2.1.{match[2]}"  # Sequential(TransposeLast, LayerNorm, ..)
    if match := re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)", name):
        layer_names = {
            "attention.gru_rel_pos_const": "self_attn.grep_a",
            "attention.gru_rel_pos_linear.": "self_attn.grep_linear.",
            "attention.rel_attn_embed.": "self_attn.relative_attention_bias.",
            "attention.": "self_attn.",
            "layer_norm.": "self_attn_layer_norm.",
            "feed_forward.intermediate_dense.": "fc1.",
            "feed_forward.output_dense.": "fc2.",
            "final_layer_norm.": "final_layer_norm.",
        }
        ours, theirs = next((ours, theirs) for ours, theirs in layer_names.items() if match[2].startswith(ours))
        return f"encoder.layers.{match[1]}.{theirs}{match[2][len(ours):]}"
    top_level = {
        "masked_spec_embed": "mask_emb",
        "feature_projection.layer_norm.": "layer_norm.",
        "feature_projection.projection.": "post_extract_proj.",
        "encoder.pos_conv_embed.conv.parametrizations.weight.original0": "encoder.pos_conv.0.weight_g",
        "encoder.pos_conv_embed.conv.parametrizations.weight.original1": "encoder.pos_conv.0.weight_v",
        "encoder.pos_conv_embed.conv.bias": "encoder.pos_conv.0.bias",
        "encoder.layer_norm.": "encoder.layer_norm.",
    }
    ours, theirs = next((ours, theirs) for ours, theirs in top_level.items() if name.startswith(ours))
    return theirs + name[len(ours):]


def tiny_frontend(frontend_type: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if frontend_type == "wavlm":
        model = WavLMModel(WavLMConfig(**TINY_FRONTEND, conv_bias=False, num_buckets=16))
    else:
        model = Wav2Vec2Model(Wav2Vec2Config(**TINY_FRONTEND, conv_bias=True))
    with torch.no_grad():  # non-trivial norms and position gates, so a swapped name changes the output
        for name, parameter in model.named_parameters():
            if "norm" in name or "gru_rel_pos_const" in name:
                parameter.add_(0.2 * torch.randn_like(parameter))
    return model.eval()


def tiny_backend(release: str, seed: int) -> ReferenceNes2Net:
    settings = RELEASES[release]
    torch.manual_seed(seed)
    backend = ReferenceNes2Net(
        input_channels=TINY_FRONTEND["hidden_size"], outer=4, inner=4, n_logits=settings["n_logits"],
        dilation=settings["dilation"], variant=settings["variant"], activation=settings.get("activation", "relu"),
        se_min_channels=settings.get("se_min_channels", 1),
    )
    randomize_norm_statistics(backend, seed)
    with torch.no_grad():
        for name, parameter in backend.named_parameters():
            if "weighted_sum" in name:
                parameter.add_(0.1 * torch.randn_like(parameter))
    return backend.eval()


class OriginalSEA(nn.Module):
    """The authors' SEA merge (`SSLModel._SE_merge` with `fc_att_merge`), over s3prl's `hidden_states`."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc_att_merge = nn.Sequential(
            nn.Linear(num_layers, num_layers // 3, bias=False), nn.ReLU(),
            nn.Linear(num_layers // 3, num_layers, bias=False), nn.Sigmoid(),
        )

    def forward(self, hidden_states: list[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack(hidden_states, dim=1)
        batch, layers = stacked.shape[:2]
        gates = self.fc_att_merge(self.avg_pool(stacked).view(batch, layers)).view(batch, layers, 1, 1)
        return torch.sum(stacked * gates, dim=1)


class OriginalModel:
    """One release at tiny size: its original state dict and the original computation on it."""

    def __init__(self, release: str, seed: int = 0):
        self.release, self.settings = release, RELEASES[release]
        self.frontend = tiny_frontend(self.settings["frontend"], seed)
        self.backend = tiny_backend(release, seed)
        self.sea = None
        if self.settings.get("sea"):
            torch.manual_seed(seed + 1)
            self.sea = OriginalSEA(TINY_FRONTEND["num_hidden_layers"] + 1).eval()

    @property
    def through_s3prl(self) -> bool:
        return self.sea is not None

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The authors' layout: `ssl_model.model.` (fairseq / unilm) or `ssl_model.model.model.` (s3prl) front-end,
        `ssl_model.fc_att_merge.*`, `Nested_Res2Net_TDNN.*`; fairseq's pre-training heads included."""
        prefix = "ssl_model.model.model." if self.through_s3prl else "ssl_model.model."
        state = {prefix + original_frontend_name(key): value for key, value in self.frontend.state_dict().items()}
        if self.settings["frontend"] == "wav2vec2":
            codevector_dim = 16
            state.update({
                prefix + "quantizer.vars": torch.randn(1, 2 * 8, codevector_dim // 2),
                prefix + "quantizer.weight_proj.weight": torch.randn(2 * 8, 32),
                prefix + "quantizer.weight_proj.bias": torch.randn(2 * 8),
                prefix + "project_q.weight": torch.randn(codevector_dim, codevector_dim),
                prefix + "project_q.bias": torch.randn(codevector_dim),
                prefix + "final_proj.weight": torch.randn(codevector_dim, 64),
                prefix + "final_proj.bias": torch.randn(codevector_dim),
            })
        if self.sea is not None:
            state.update({"ssl_model." + key: value for key, value in self.sea.state_dict().items()})
        state.update({"Nested_Res2Net_TDNN." + key: value for key, value in self.backend.state_dict().items()})
        return state

    @torch.no_grad()
    def logits(self, waveform: torch.Tensor) -> torch.Tensor:
        """`(batch, samples)` -> logits, the way the authors' scripts computed them."""
        if not self.through_s3prl:  # fairseq features_only / unilm extract_features: the final-norm output
            features = self.frontend(waveform).last_hidden_state
        else:  # s3prl: layer-normed waveform; hidden states = each layer's input, then the encoder output
            waveform = torch.stack([F.layer_norm(wav, wav.shape) for wav in waveform])
            inputs = []
            hooks = [layer.register_forward_hook(lambda module, args, output: inputs.append(args[0]))
                     for layer in self.frontend.encoder.layers]
            try:
                encoder_output = self.frontend(waveform).last_hidden_state
            finally:
                for hook in hooks:
                    hook.remove()
            features = self.sea(inputs + [encoder_output])
        return self.backend(features.permute(0, 2, 1))


def waveforms(batch: int = 2, samples: int = 4000, seed: int = 7) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, samples, generator=generator)


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
    result = convert(OriginalModel("nes2net-x-xlsr"), tmp_path)
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
        ("missing key", r"model tensors the checkpoint lacks \(1\):\n    backend\.classifier\.bias"),
        ("wrong shape", r"Nested_Res2Net_TDNN\.Build_in_Res2Nets\.1\.conv3\.weight -> "
                        r"backend\.blocks\.1\.conv_out\.weight: checkpoint \(16, 12, 1\), model \(16, 16, 1\)"),
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
         r"layer_merge \(checkpoint 'sea', preset 'last'\); num_labels \(checkpoint 1, preset 2\)"),
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
    with torch.no_grad():
        logits = Nes2NetForAudioClassification.from_pretrained(out).eval()(waveforms()).logits
    torch.testing.assert_close(logits, original.logits(waveforms()), rtol=0, atol=1e-5)

    status = cli_main(["convert", str(checkpoint), str(tmp_path / "other"), "--preset", "nes2net-x-xlsr"])
    assert status == 1
    assert "front-end is wavlm but preset 'nes2net-x-xlsr'" in caplog.text
    assert not (tmp_path / "other").exists()
