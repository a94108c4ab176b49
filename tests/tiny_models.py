"""Tiny random Nes2Net models for tests: a 2-layer speech front-end of width 64 and a 4x4 nested back-end."""

from __future__ import annotations

from typing import Any

import torch

from modeling_nes2net import Nes2NetConfig, Nes2NetForAudioClassification, Nes2NetForAudioFrameClassification

# The sizes every tiny front-end shares (also the tiny originals of tests/modeling/original_checkpoints.py).
TINY_FRONTEND_SIZES = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "conv_dim": (32, 32),
    "conv_stride": (5, 4),
    "conv_kernel": (10, 4),
    "feat_extract_norm": "layer",
    "do_stable_layer_norm": True,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "mask_time_prob": 0.0,
    "layerdrop": 0.0,
}

TINY_FRONTENDS: dict[str, dict[str, Any]] = {
    "wav2vec2": {"model_type": "wav2vec2", **TINY_FRONTEND_SIZES},
    "wavlm": {"model_type": "wavlm", **TINY_FRONTEND_SIZES, "num_buckets": 16, "max_bucket_distance": 64},
    "hubert": {"model_type": "hubert", **TINY_FRONTEND_SIZES},
    "data2vec-audio": {"model_type": "data2vec-audio", **{**TINY_FRONTEND_SIZES, "num_conv_pos_embeddings": 4}},
}

# A 2-layer Whisper encoder of the same width (80 mel bins: the log-mel is Whisper's own).
TINY_WHISPER = {"model_type": "whisper", "d_model": 64, "encoder_layers": 2, "encoder_attention_heads": 2,
                "encoder_ffn_dim": 64, "num_mel_bins": 80, "max_source_positions": 1500, "decoder_layers": 1}


def tiny_config(frontend: str = "wav2vec2", frontend_overrides: dict | None = None, **overrides: Any) -> Nes2NetConfig:
    """A Nes2NetConfig with a tiny random front-end (D = 64, 16 channels per outer group, 4 per inner group)."""
    if frontend == "spectrogram":
        base = {"frontend_type": "spectrogram", "spectrogram_n_fft": 126, "spectrogram_hop_length": 32}
    elif frontend == "whisper":
        base = {"frontend_type": "whisper", "frontend_config": {**TINY_WHISPER, **(frontend_overrides or {})}}
    else:
        base = {"frontend_config": {**TINY_FRONTENDS[frontend], **(frontend_overrides or {})}}
    return Nes2NetConfig(**{**base, "outer_ratio": 4, "inner_ratio": 4, **overrides})


def randomize_norm_statistics(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial running statistics and affine weights, so eval mode exercises them."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)


def tiny_model(frontend: str = "wav2vec2", seed: int = 0, **overrides: Any) -> Nes2NetForAudioClassification:
    """A tiny random model in eval mode with randomised normalisation statistics."""
    torch.manual_seed(seed)
    model = Nes2NetForAudioClassification(tiny_config(frontend, **overrides))
    randomize_norm_statistics(model, seed)
    return model.eval()


def framed_model(frame_bias: tuple[float, float], utterance_bias: tuple[float, float] = (0.0, 4.0)):
    """A tiny spectrogram frame model whose frame head reads the trunk (random weights, scaled down) plus
    `frame_bias`, and whose utterance head reads `utterance_bias` alone (bona fide by default)."""
    torch.manual_seed(0)
    model = Nes2NetForAudioFrameClassification(tiny_config("spectrogram"))
    randomize_norm_statistics(model)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor(utterance_bias))
        model.frame_classifier.weight.mul_(0.01)
        model.frame_classifier.bias.copy_(torch.tensor(frame_bias))
    return model.eval()
