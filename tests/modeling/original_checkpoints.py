"""Synthetic originals of the authors' released checkpoints at tiny sizes, with the exact original key layout.

The front-end half is a tiny transformers model whose weights are renamed into fairseq / unilm names; the back-end
half is `tests.oracles.nes2net` (the original back-end with the original names); the CtrSVDD releases add the
authors' SEA merge. `OriginalModel.logits` runs the original computation on the same weights, independently of the
package: the tiny front-end as the authors called it (fairseq `features_only`, unilm `extract_features`, s3prl's
normalised input and hooked hidden states), the original SEA and the reference back-end.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Wav2Vec2Config, Wav2Vec2Model, WavLMConfig, WavLMModel

from tests.oracles.nes2net import ReferenceNes2Net
from tests.tiny_models import TINY_FRONTEND_SIZES, randomize_norm_statistics

# The tiny sizes, with a kernel-3 second convolution whose stride (2) the converter must infer from the kernel, and
# transformers' default time masking, so that the original carries the mask embedding the released checkpoints have.
TINY_FRONTEND = {
    **TINY_FRONTEND_SIZES,
    "intermediate_size": 96,
    "conv_kernel": (10, 3),
    "conv_stride": (5, 2),
    "mask_time_prob": 0.05,
    "apply_spec_augment": False,
}
TINY_BACKEND = {"outer_ratio": 4, "inner_ratio": 4}
# What the tiny sizes need beyond the preset and the tensors (wav2vec 2.0 stores its number of heads nowhere).
TINY_OVERRIDES = {
    "wav2vec2": {**TINY_BACKEND, "frontend_config": {"num_attention_heads": 2}},
    "wavlm": dict(TINY_BACKEND),
}
# The authors' settings of each preset's back-end, as their scripts build it (tests.oracles.nes2net arguments).
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


def tiny_frontend(model_type: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if model_type == "wavlm":
        model = WavLMModel(WavLMConfig(**TINY_FRONTEND, conv_bias=False, num_buckets=16))
    else:
        model = Wav2Vec2Model(Wav2Vec2Config(**TINY_FRONTEND, conv_bias=True))
    with torch.no_grad():  # non-trivial norms and position gates, so a swapped name changes the output
        for name, parameter in model.named_parameters():
            if "norm" in name or "gru_rel_pos_const" in name:
                parameter.add_(0.2 * torch.randn_like(parameter))
    return model.eval()


def tiny_backend(settings: dict, seed: int) -> ReferenceNes2Net:
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

    def __init__(self, release: str, seed: int = 0, **settings):
        """`settings` override the release's (`n_logits=1`: the In-the-Wild release of the XLS-R model)."""
        self.release, self.settings = release, {**RELEASES[release], **settings}
        self.frontend = tiny_frontend(self.settings["frontend"], seed)
        self.backend = tiny_backend(self.settings, seed)
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
