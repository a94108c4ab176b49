"""Named configurations of the released Nes2Net models (see the README's table of checkpoints)."""

from __future__ import annotations

from typing import Any

from .configuration_nes2net import XLSR_300M_FRONTEND, Nes2NetConfig

# WavLM Large, the front-end of the CtrSVDD and ASVspoof 5 releases.
WAVLM_LARGE_FRONTEND = {
    "model_type": "wavlm",
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "feat_extract_norm": "layer",
    "conv_bias": False,
    "do_stable_layer_norm": True,
    "apply_spec_augment": False,
    "layerdrop": 0.0,
}

# The CtrSVDD releases ran WavLM Large through s3prl, which normalises each waveform (WavLM Large's `normalize`) and
# whose last hidden state is the encoder output after its final layer norm: in transformers that needs
# `tie_last_hidden_states=True` (otherwise `hidden_states[-1]` is taken before that norm).
_CTRSVDD = {
    "frontend_config": {**WAVLM_LARGE_FRONTEND, "tie_last_hidden_states": True},
    "layer_merge": "sea",
    "num_labels": 1,
    "dilation": 1,
    "normalize_waveform": True,
    "training_data": "CtrSVDD (singing voice deepfakes), RawBoost algorithm 8",
}

PRESETS: dict[str, dict[str, Any]] = {
    # XLS-R 300M (last layer) + Nes2Net-X: ASVspoof 2019 LA training, evaluated on 2021 LA/DF and In-the-Wild.
    "nes2net-x-xlsr": {
        "frontend_config": XLSR_300M_FRONTEND,
        "backend_variant": "nes2net-x",
        "num_labels": 2,
        "dilation": 2,
        "training_data": "ASVspoof 2019 LA train, RawBoost",
    },
    # WavLM Large (last layer) + Nes2Net-X with the SE bottleneck floored at 2: ASVspoof 5 (dilation 1, as in the
    # authors' config/WavLM_Nes2Net_ASVspoof5.conf).
    "nes2net-x-wavlm": {
        "frontend_config": WAVLM_LARGE_FRONTEND,
        "backend_variant": "nes2net-x",
        "num_labels": 2,
        "dilation": 1,
        "se_min_channels": 2,
        "training_data": "ASVspoof 5 train, MUSAN/RIR augmentation",
    },
    # WavLM Large, all 25 layers merged by SEA, one bona fide logit: the CtrSVDD releases.
    "nes2net-wavlm-sea": {**_CTRSVDD, "backend_variant": "nes2net"},
    "nes2net-x-wavlm-sea": {**_CTRSVDD, "backend_variant": "nes2net-x"},
    "nes2net-x-selu-wavlm-sea": {
        **_CTRSVDD,
        "backend_variant": "nes2net-x",
        "activation": "selu",
        "se_min_channels": 2,
    },
}


def config_from_preset(name: str, **overrides: Any) -> Nes2NetConfig:
    """The `Nes2NetConfig` of a released model, with any field overridden."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return Nes2NetConfig(**{**PRESETS[name], **overrides})
