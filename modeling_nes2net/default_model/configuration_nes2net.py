"""Nes2Net model configuration."""

from __future__ import annotations

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

SPOOF_LABEL = "spoof"
BONAFIDE_LABEL = "bonafide"

# wav2vec 2.0 XLS-R 300M, the front-end of the ASVspoof 2019/2021 and In-the-Wild releases.
XLSR_300M_FRONTEND = {
    "model_type": "wav2vec2",
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "feat_extract_norm": "layer",
    "conv_bias": True,
    "do_stable_layer_norm": True,
    "apply_spec_augment": False,
    "layerdrop": 0.0,
}


_CHOICES = {
    "frontend_type": ("ssl", "spectrogram"),
    "layer_merge": ("last", "weighted_sum", "sea", "attm"),
    "backend_variant": ("nes2net", "nes2net-x"),
    "activation": ("relu", "selu"),
    "pooling": ("mean", "astp"),
    "loss": ("weighted_ce", "focal_bce"),
}


@strict
class Nes2NetConfig(PreTrainedConfig):
    r"""
    Configuration of a [`Nes2NetForAudioClassification`]: a speech front-end, an optional merge of its hidden
    layers, and the Nes2Net back-end of Liu et al., "Nes2Net: A Lightweight Nested Architecture for Foundation Model
    Driven Speech Anti-spoofing" (IEEE T-IFS 2025).

    Args:
        frontend_type (`str`, *optional*, defaults to `"ssl"`):
            `"ssl"`: a transformers speech model (wav2vec2 / XLS-R, WavLM, HuBERT, data2vec-audio) described by
            `frontend_config`. `"spectrogram"`: a log-magnitude STFT with `spectrogram_n_fft // 2 + 1` bins.
        frontend_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of the SSL front-end (any model type known to `AutoConfig`). Defaults to XLS-R 300M.
        freeze_frontend (`bool`, *optional*, defaults to `False`):
            Keep the front-end's weights fixed (no gradients) during training.
        layer_merge (`str`, *optional*, defaults to `"last"`):
            How the front-end's hidden states become features: `"last"` (last hidden state), `"weighted_sum"`
            (softmax-weighted sum of all layers), `"sea"` (squeeze-excitation over layers) or `"attm"` (attentive merge).
        spectrogram_n_fft (`int`, *optional*, defaults to 2046):
            FFT size of the spectrogram front-end; 2046 gives 1024 bins, the width of XLS-R features.
        spectrogram_hop_length (`int`, *optional*, defaults to 320):
            Hop of the spectrogram front-end in samples (20 ms at 16 kHz, the SSL frame rate).
        backend_variant (`str`, *optional*, defaults to `"nes2net-x"`):
            `"nes2net"` (additive Res2Net hierarchy inside each block) or `"nes2net-x"` (stacked, learnably weighted).
        activation (`str`, *optional*, defaults to `"relu"`):
            Activation of the back-end, `"relu"` or `"selu"` (Nes2Net-X SeLU). The one inside SE stays ReLU.
        outer_ratio (`int`, *optional*, defaults to 8):
            Number of channel groups of the outer level (`s1`); the feature size must be divisible by it.
        inner_ratio (`int`, *optional*, defaults to 8):
            Number of channel groups inside each block (`s2`).
        se_ratio (`int`, *optional*, defaults to 1):
            Squeeze-excitation reduction ratio inside each block.
        se_min_channels (`int`, *optional*, defaults to 1):
            Floor of the SE bottleneck width (the released SeLU variant uses 2).
        kernel_size (`int`, *optional*, defaults to 3):
            Odd temporal kernel of the inner convolutions.
        dilation (`int`, *optional*, defaults to 2):
            Temporal dilation of the inner convolutions.
        pooling (`str`, *optional*, defaults to `"mean"`):
            `"mean"` over frames or `"astp"` (attentive statistics pooling).
        attention_channels (`int`, *optional*, defaults to 128):
            Bottleneck width of the ASTP attention.
        num_labels (`int`, *optional*, defaults to 2):
            2: softmax over `{0: "spoof", 1: "bonafide"}` (the paper's convention); 1: a single bona fide logit.
        loss (`str`, *optional*):
            `"weighted_ce"` (default with 2 logits) or `"focal_bce"` (default with 1 logit).
        class_weights (`list[float]`, *optional*, defaults to `[0.1, 0.9]`):
            Cross-entropy weights of `[spoof, bonafide]`.
        focal_gamma (`float`, *optional*, defaults to 2.0):
            Focusing parameter of the binary focal loss.
        focal_alpha (`float`, *optional*, defaults to 0.25):
            Weight of the bona fide class in the binary focal loss.
        label_smoothing (`float`, *optional*, defaults to 0.1):
            Soft targets `y * (1 - label_smoothing) + label_smoothing / 2` for the focal loss (0.9y + 0.05).
        decision_threshold (`float`, *optional*):
            Calibrated threshold on the log-odds `log p(bonafide) / p(spoof)`; `None` means 0 (probability 0.5).
        sampling_rate (`int`, *optional*, defaults to 16000):
            Sampling rate of the waveform the model expects.
        normalize_waveform (`bool`, *optional*, defaults to `False`):
            Normalise each waveform to zero mean and unit variance over its real samples (`F.layer_norm`, eps 1e-5)
            before the front-end, as s3prl does for WavLM Large: the CtrSVDD releases were trained that way. The
            other releases were trained on the raw waveform.
        training_data (`str`, *optional*):
            Free-text description of what the weights were trained on, shown by the demo and the cards.

    Example:

    ```python
    >>> from modeling_nes2net import Nes2NetConfig, Nes2NetForAudioClassification
    >>> config = Nes2NetConfig()  # XLS-R 300M, last layer, Nes2Net-X, 2 logits
    >>> config.feature_size
    1024
    ```
    """

    model_type = "nes2net"
    sub_configs_defaults = {
        "frontend_config": SubConfigSpec(config_class=AutoConfig, model_type="wav2vec2", optional=True)
    }

    frontend_type: Literal["ssl", "spectrogram"] = "ssl"
    frontend_config: dict | PreTrainedConfig | None = None
    freeze_frontend: bool = False
    layer_merge: Literal["last", "weighted_sum", "sea", "attm"] = "last"
    spectrogram_n_fft: int = 2046
    spectrogram_hop_length: int = 320
    backend_variant: Literal["nes2net", "nes2net-x"] = "nes2net-x"
    activation: Literal["relu", "selu"] = "relu"
    outer_ratio: int = 8
    inner_ratio: int = 8
    se_ratio: int = 1
    se_min_channels: int = 1
    kernel_size: int = 3
    dilation: int = 2
    pooling: Literal["mean", "astp"] = "mean"
    attention_channels: int = 128
    loss: Literal["weighted_ce", "focal_bce"] | None = None
    class_weights: list[float] | None = None
    focal_gamma: float = 2.0
    focal_alpha: float = 0.25
    label_smoothing: float = 0.1
    decision_threshold: float | None = None
    sampling_rate: int = 16000
    normalize_waveform: bool = False
    training_data: str | None = None

    def __post_init__(self, **kwargs):
        if self.frontend_type == "ssl" and self.frontend_config is None:
            self.frontend_config = dict(XLSR_300M_FRONTEND)
        if self.frontend_type == "spectrogram":
            self.frontend_config = None
        if self.class_weights is None:
            self.class_weights = [0.1, 0.9]
        super().__post_init__(**kwargs)
        if self.num_labels not in (1, 2):
            raise ValueError(f"num_labels must be 1 (bona fide logit) or 2 (spoof, bonafide), got {self.num_labels}")
        if self.num_labels == 2:
            self.id2label = {0: SPOOF_LABEL, 1: BONAFIDE_LABEL}
        else:
            self.id2label = {0: BONAFIDE_LABEL}
        self.label2id = {label: index for index, label in self.id2label.items()}
        if self.loss is None:
            self.loss = "weighted_ce" if self.num_labels == 2 else "focal_bce"

    @property
    def feature_size(self) -> int:
        """Width D of the features the back-end receives."""
        if self.frontend_type == "spectrogram":
            return self.spectrogram_n_fft // 2 + 1
        return self.frontend_config.hidden_size

    @property
    def num_frontend_layers(self) -> int:
        """Number of hidden states the SSL front-end returns (its transformer layers + the CNN output)."""
        if self.frontend_type == "spectrogram":
            return 1
        return self.frontend_config.num_hidden_layers + 1

    @property
    def group_channels(self) -> int:
        """Channels C = D / outer_ratio of each outer group."""
        return self.feature_size // self.outer_ratio

    @property
    def inner_width(self) -> int:
        """Channels w = floor(C / inner_ratio) of each inner group."""
        return self.group_channels // self.inner_ratio

    def validate_architecture(self):
        """Part of `@strict` validation: every field must describe a buildable Nes2Net."""
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {getattr(self, name)!r}")
        for name in ("outer_ratio", "inner_ratio", "se_ratio", "se_min_channels", "dilation", "attention_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.outer_ratio < 2 or self.inner_ratio < 2:
            raise ValueError(
                f"outer_ratio and inner_ratio must be at least 2, got {self.outer_ratio} and {self.inner_ratio}"
            )
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {self.kernel_size}")
        if self.frontend_type == "ssl" and not hasattr(self.frontend_config, "hidden_size"):
            raise ValueError(f"frontend_config of type {type(self.frontend_config).__name__} has no hidden_size")
        if self.frontend_type == "spectrogram":
            if self.layer_merge != "last":
                raise ValueError("the spectrogram front-end has a single layer: layer_merge must be 'last'")
            if self.spectrogram_n_fft < 2 or self.spectrogram_hop_length < 1:
                raise ValueError("spectrogram_n_fft must be >= 2 and spectrogram_hop_length >= 1")
        if self.feature_size % self.outer_ratio != 0:
            raise ValueError(
                f"the feature size {self.feature_size} is not divisible by outer_ratio {self.outer_ratio}"
            )
        if self.inner_width < 1:
            raise ValueError(
                f"inner_ratio {self.inner_ratio} leaves no channel per inner group "
                f"(C = {self.feature_size} / {self.outer_ratio} = {self.group_channels})"
            )
        if self.group_channels // self.se_ratio < 1:
            raise ValueError(f"se_ratio {self.se_ratio} exceeds the group width {self.group_channels}")
        if self.layer_merge == "sea" and self.num_frontend_layers < 3:
            raise ValueError("layer_merge='sea' needs at least 3 hidden states (L // 3 >= 1)")
        if self.layer_merge == "attm" and self.num_frontend_layers < 2:
            raise ValueError("layer_merge='attm' needs at least 2 hidden states (L // 2 >= 1)")
        if self.loss == "weighted_ce" and self.num_labels != 2:
            raise ValueError("loss='weighted_ce' needs num_labels=2; use loss='focal_bce' with a single logit")
        if self.loss == "focal_bce" and self.num_labels != 1:
            raise ValueError("loss='focal_bce' needs num_labels=1 (a single bona fide logit)")
        if len(self.class_weights) != 2 or min(self.class_weights) < 0:
            raise ValueError(f"class_weights must be two non-negative numbers [spoof, bonafide], got {self.class_weights}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.sampling_rate <= 0:
            raise ValueError(f"sampling_rate must be positive, got {self.sampling_rate}")


__all__ = ["Nes2NetConfig"]
