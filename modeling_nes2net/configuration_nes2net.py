"""Nes2Net model configuration."""

from __future__ import annotations

from contextvars import ContextVar
from functools import cache
from typing import Any, Literal, get_args, get_origin

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec
from transformers.generation.configuration_utils import GenerationConfig
from transformers.utils import logging

logger = logging.get_logger(__name__)

SPOOF_LABEL = "spoof"
BONAFIDE_LABEL = "bonafide"
PARTLY_SPOOFED_LABEL = "partly spoofed"
# The one home of the label semantics: class ids of the two heads. Higher scores always mean more bona fide.
ID2LABEL = {2: {0: SPOOF_LABEL, 1: BONAFIDE_LABEL}, 1: {0: BONAFIDE_LABEL}}
# Every verdict on a recording: the two classes, and "partly spoofed" for a recording judged bona fide as a whole
# with a stretch that scores spoof (`detection.DetectionResult.label`). Every table of verdict words is keyed by these.
VERDICT_LABELS = (BONAFIDE_LABEL, SPOOF_LABEL, PARTLY_SPOOFED_LABEL)

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

# The encoder of Whisper tiny / tiny.en (OpenAI; the front-end of the embedded default model).
WHISPER_TINY_FRONTEND = {
    "model_type": "whisper",
    "d_model": 384,
    "encoder_layers": 4,
    "encoder_attention_heads": 6,
    "encoder_ffn_dim": 1536,
    "num_mel_bins": 80,
    "max_source_positions": 1500,
    "decoder_layers": 1,
    "dropout": 0.0,
}


@cache
def _literal_choices(cls: type) -> dict[str, tuple]:
    """Field -> allowed values, read from the class's own `Literal[...]` annotations (with None for `| None`)."""
    choices = {}
    for name, hint in cls.__annotations__.items():
        hint = eval(hint, globals()) if isinstance(hint, str) else hint  # postponed annotations of this module
        literal = next((arg for arg in (hint, *get_args(hint)) if get_origin(arg) is Literal), None)
        if literal is not None:
            choices[name] = ((None,) if type(None) in get_args(hint) else ()) + get_args(literal)
    return choices

# Keyword arguments `PreTrainedConfig` takes besides its fields (what `from_pretrained` and saved files pass along).
# The largest plausible value of every size (far above the largest released speech model: XLS-R 2B has 48 layers of
# width 1920, Whisper large-v3 32 layers of width 1280), so a damaged or hostile config is refused in one line instead
# of allocating gigabytes or building for minutes.
MAX_SIZES = {
    "outer_ratio": 1024, "inner_ratio": 1024, "se_ratio": 1024, "se_min_channels": 8192, "kernel_size": 63,
    "dilation": 64, "attention_channels": 8192, "spectrogram_n_fft": 65_536, "spectrogram_hop_length": 65_536,
    "frontend_num_layers": 128,
}
MAX_FRONTEND_SIZES = {
    "hidden_size": 8192, "d_model": 8192, "num_hidden_layers": 128, "encoder_layers": 128, "decoder_layers": 128,
    "intermediate_size": 32_768, "encoder_ffn_dim": 32_768, "num_attention_heads": 128,
    "encoder_attention_heads": 128, "num_mel_bins": 512, "max_source_positions": 65_536,
    "num_conv_pos_embeddings": 1024, "num_conv_pos_embedding_groups": 1024, "num_buckets": 4096,
    "max_bucket_distance": 65_536,
}
MAX_CONV_SIZE = 8192  # each entry of a front-end's conv_dim, conv_kernel and conv_stride
SAMPLING_RATES = (8_000, 48_000)  # the rates speech models are trained at (telephone to studio)
MAX_CALIBRATION_SCALE = 1e4  # a logistic calibration of logits: a scale of 1e-4..1e4 and an offset within +-1e4
MAX_CALIBRATION_OFFSET = 1e4

_BASE_KWARGS = frozenset({
    "auto_map", "model_type", "name_or_path", "torch_dtype", "_commit_hash", "output_attentions",
    "attn_implementation", "experts_implementation", "per_layer_config", "num_labels",
    "_attn_implementation_internal", "_experts_implementation_internal",
    *GenerationConfig._get_default_generation_params(),
})
_LOADING: ContextVar[bool] = ContextVar("nes2net_config_loading", default=False)


def check_frame_window(name: str, window: int | None) -> None:
    """Raise a one-line `ValueError` naming `name` unless `window` is None or an odd number of frames >= 1 (a window
    of frames centred on one frame)."""
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1
                               or window % 2 == 0):
        raise ValueError(f"{name} must be an odd number of frames >= 1 (or None), not {window!r}")


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
            `"whisper"`: the encoder of a Whisper model (`frontend_config` a `WhisperConfig`, default Whisper tiny)
            on its own log-mel of the waveform (see [`Nes2NetWhisperFrontend`]).
        frontend_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of the SSL front-end (any model type known to `AutoConfig`; defaults to XLS-R 300M) or of the
            Whisper model whose encoder is the front-end (defaults to Whisper tiny).
        frontend_num_layers (`int`, *optional*):
            Use only the first N transformer layers of the SSL or Whisper front-end (the rest are dropped when the model is
            built or loaded): a cheaper front-end at some cost in accuracy. `None` keeps them all.
        freeze_frontend (`bool`, *optional*, defaults to `False`):
            Keep the front-end's weights fixed (no gradients) during training.
        frontend_weights_dtype (`str`, *optional*, defaults to `"float32"`):
            Precision the front-end's weights are saved in. `"float16"` halves the file of a frozen pretrained
            encoder (the embedded default's Whisper tiny.en); they are loaded back in the model's own dtype.
        layer_merge (`str`, *optional*, defaults to `"last"`):
            How the front-end's hidden states become features: `"last"` (last hidden state), `"weighted_sum"`
            (softmax-weighted sum of all layers), `"sea"` (squeeze-excitation over layers) or `"attm"` (attentive merge).
        normalize_layers (`bool`, *optional*, defaults to `False`):
            Layer-normalise every hidden state over its features (no learned parameters) before the merge, as
            SUPERB's weighted sum does: for front-ends whose intermediate states are not normalised (Whisper's
            residual stream), so no layer or channel dominates the merge by scale alone.
        layer_statistics (`bool`, *optional*, defaults to `False`):
            Append the mean and standard deviation over frames of every hidden state the back-end reads (before
            `normalize_layers`) to the pooled embedding, so the classifier also reads them linearly: a linear probe of
            the front-end's layers beside the Nes2Net back-end (not part of the paper's model), whose weights
            `training.statistics_head` fits after training and fuses with the back-end's score.
        layer_statistics_window (`int`, *optional*):
            With `layer_statistics`: the statistics appended are the mean over frames of each hidden state's mean and
            standard deviation over the `layer_statistics_window` real frames centred on every frame (odd; 25 = 0.5 s
            at Whisper's 20 ms): the probe `training.statistics_head` fits on windows of that length, scoring a
            recording by the mean of its windows' log-odds. None: the mean and standard deviation over all frames.
        frame_statistics_window (`int`, *optional*):
            With a frame head ([`Nes2NetForAudioFrameClassification`]): the frame classifier also reads, at each frame,
            the mean and standard deviation of every hidden state the back-end reads (before `normalize_layers`) over
            the `frame_statistics_window` real frames centred on it (odd; 25 = 0.5 s at Whisper's 20 ms), a local
            linear probe of the front-end's layers that `training.frame_model` fits on spliced audio (not part of the
            paper's model). None: the frame classifier reads the trunk's output alone.
        stretch_margin (`float`, *optional*, defaults to 0.0):
            With a frame head: how far below the decision threshold (log-odds) the frames of a flagged stretch must
            reach over its confident core (`localisation.spoofed_stretches`); the stretch then spans the whole run
            below the threshold (less `stretch_edge`) around that core. `training.frame_model` fits it on dev bona fide
            speech so that few genuine recordings show a stretch, and the frame log-odds stay calibrated.
        stretch_edge (`float`, *optional*, defaults to 0.0):
            With a frame head: how far below the decision threshold (log-odds, at most `stretch_margin`) a flagged
            stretch ends on either side of its core. It changes where stretches end, never whether a recording has one:
            `training.frame_model` fits it on dev splices for the best overlap with the inserted spans.
        state_windows (`bool`, *optional*, defaults to `False`):
            Whether the `windows` protocol scores a recording longer than one window from its front-end's states,
            encoded once in chunks (`modeling_nes2net.state_windows`), unless the caller says otherwise. Set by
            `nes2net train` for a back-end trained on cached front-end states: it learnt from windows of states encoded
            with their whole clip around them, which state windows give and windows of audio encoded alone do not.
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
            These label ids are fixed: an `id2label` / `label2id` that says otherwise is refused (map a dataset's
            labels to them instead, e.g. `dataset.align_labels_with_mapping(config.label2id, "label")`).
            `problem_type` is derived from it: `"single_label_classification"` (softmax) with 2 logits,
            `"multi_label_classification"` (sigmoid) with 1, so `pipeline` reads either head right.
        loss (`str`, *optional*):
            Loss of `forward(labels=...)`. `None` (default): plain cross-entropy with 2 logits, plain binary
            cross-entropy with 1, what a `Trainer` user expects. The paper's losses, which its training recipes set:
            `"weighted_ce"` (class-weighted cross-entropy, 2 logits) and `"focal_bce"` (binary focal loss on
            smoothed labels, 1 logit).
        class_weights (`list[float]`, *optional*, defaults to `[0.1, 0.9]`):
            Cross-entropy weights of `[spoof, bonafide]` for `loss="weighted_ce"`.
        focal_gamma (`float`, *optional*, defaults to 2.0):
            Focusing parameter of the binary focal loss.
        focal_alpha (`float`, *optional*, defaults to 0.25):
            Weight of the bona fide class in the binary focal loss.
        label_smoothing (`float`, *optional*, defaults to 0.1):
            Soft targets `y * (1 - label_smoothing) + label_smoothing / 2` for the focal loss (0.9y + 0.05).
        calibration_scale (`float`, *optional*, defaults to 1.0):
            Scale `a` of the affine score calibration the forward pass applies: the calibrated log-odds are
            `a * raw_log_odds + b` (see [`Nes2NetScoreCalibration`]), so `argmax(logits)`, the probabilities and every
            decision mean "calibrated log-odds > 0". Must be positive.
        calibration_offset (`float`, *optional*, defaults to 0.0):
            Offset `b` of that calibration. The identity (1, 0) keeps the raw logits; `training.llr_fitting` fits both
            on a dev split. An older config's `decision_threshold: t` reads as offset `-t`.
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

    frontend_type: Literal["ssl", "spectrogram", "whisper"] = "ssl"
    frontend_config: dict | PreTrainedConfig | None = None
    frontend_num_layers: int | None = None
    freeze_frontend: bool = False
    frontend_weights_dtype: Literal["float32", "float16"] = "float32"
    layer_merge: Literal["last", "weighted_sum", "sea", "attm"] = "last"
    normalize_layers: bool = False
    layer_statistics: bool = False
    layer_statistics_window: int | None = None
    frame_statistics_window: int | None = None
    stretch_margin: float = 0.0
    stretch_edge: float = 0.0
    state_windows: bool = False
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
    calibration_scale: float = 1.0
    calibration_offset: float = 0.0
    sampling_rate: int = 16000
    normalize_waveform: bool = False
    training_data: str | None = None

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs) -> Nes2NetConfig:
        """Load a saved config: keys this version does not know are dropped with a warning, not refused."""
        _check_label_maps(kwargs.get("id2label"), kwargs.get("label2id"), None)  # overrides skip __post_init__
        token = _LOADING.set(True)
        try:
            return super().from_dict(config_dict, **kwargs)
        finally:
            _LOADING.reset(token)

    def __post_init__(self, **kwargs):
        legacy_threshold = kwargs.pop("decision_threshold", None)
        if legacy_threshold is not None:
            logger.warning(f"decision_threshold={legacy_threshold} is read as calibration_offset={-legacy_threshold}")
            self.calibration_offset = -float(legacy_threshold)
        unknown = sorted(set(kwargs) - _BASE_KWARGS)
        if unknown and not _LOADING.get():
            valid = sorted([*Nes2NetConfig.__annotations__, "num_labels"])
            raise TypeError(f"Nes2NetConfig got unknown argument(s) {', '.join(unknown)}; valid: {', '.join(valid)} "
                            "(and PreTrainedConfig's)")
        if unknown:
            logger.warning(f"ignoring config key(s) unknown to this version of Nes2NetConfig: {', '.join(unknown)}")
            kwargs = {key: value for key, value in kwargs.items() if key not in unknown}
        num_labels = _check_label_maps(self.id2label, self.label2id, kwargs.get("num_labels"))
        if self.frontend_type == "ssl" and self.frontend_config is None:
            self.frontend_config = dict(XLSR_300M_FRONTEND)
        if self.frontend_type == "whisper" and self.frontend_config is None:
            self.frontend_config = dict(WHISPER_TINY_FRONTEND)
        if self.frontend_type == "spectrogram":
            self.frontend_config = None
        if self.class_weights is None:
            self.class_weights = [0.1, 0.9]
        kwargs["num_labels"] = num_labels
        self.id2label = dict(ID2LABEL[num_labels])
        self.label2id = {label: index for index, label in self.id2label.items()}
        # Derived from the head (a saved value is the old head's after a head swap): softmax over two logits, a
        # sigmoid on the single bona fide logit.
        self.problem_type = "single_label_classification" if num_labels == 2 else "multi_label_classification"
        super().__post_init__(**kwargs)

    @property
    def feature_size(self) -> int:
        """Width D of the features the back-end receives."""
        if self.frontend_type == "spectrogram":
            return self.spectrogram_n_fft // 2 + 1
        return self.frontend_config.hidden_size

    @property
    def num_frontend_layers(self) -> int:
        """Number of hidden states the front-end returns (an SSL or Whisper front-end: its transformer layers + the
        convolutional output)."""
        if self.frontend_type == "spectrogram":
            return 1
        return (self.frontend_num_layers or self.frontend_config.num_hidden_layers) + 1

    @property
    def pooled_size(self) -> int:
        """Width of the pooled embedding the classifier reads: the back-end's pooling (`[mean; std]` with ASTP), then
        with `layer_statistics` the mean and std of each hidden state it reads (all of them with a layer merge)."""
        size = 2 * self.feature_size if self.pooling == "astp" else self.feature_size
        return size + (self.statistics_size if self.layer_statistics else 0)

    @property
    def statistics_size(self) -> int:
        """Width of the mean and std of each hidden state the back-end reads (all of them with a layer merge): what
        `layer_statistics` appends to the pooled embedding and `frame_statistics_window` to each frame."""
        return 2 * self.feature_size * (1 if self.layer_merge == "last" else self.num_frontend_layers)

    @property
    def frame_feature_size(self) -> int:
        """Width of what a frame head reads per frame: the trunk's output, then with `frame_statistics_window` the
        local statistics of the hidden states."""
        return self.feature_size + (self.statistics_size if self.frame_statistics_window else 0)

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
        self._check_sizes()
        for name, choices in _literal_choices(type(self)).items():
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
        if self.frontend_type == "whisper" and getattr(self.frontend_config, "model_type", None) != "whisper":
            raise ValueError("frontend_type='whisper' needs a Whisper frontend_config (model_type 'whisper'), got "
                             f"{getattr(self.frontend_config, 'model_type', None)!r}")
        if self.frontend_num_layers is not None and not (
            self.frontend_type != "spectrogram"
            and 1 <= self.frontend_num_layers <= self.frontend_config.num_hidden_layers
        ):
            raise ValueError(
                f"frontend_num_layers must be between 1 and the front-end's num_hidden_layers, "
                f"got {self.frontend_num_layers}"
            )
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
        if (self.layer_statistics or self.frame_statistics_window) and self.layer_merge == "last" \
                and self.normalize_layers:
            raise ValueError("layer_statistics and frame_statistics_window read the raw hidden states, which "
                             "layer_merge='last' with normalize_layers does not keep: set normalize_layers=False or a "
                             "layer merge")
        for name in ("layer_statistics_window", "frame_statistics_window"):
            check_frame_window(name, getattr(self, name))
        if self.layer_statistics_window is not None and not self.layer_statistics:
            raise ValueError("layer_statistics_window sets the window of layer_statistics, which is off")
        if not 0.0 <= self.stretch_margin <= MAX_CALIBRATION_OFFSET:
            raise ValueError(f"stretch_margin must be between 0 and {MAX_CALIBRATION_OFFSET:g} log-odds, got "
                             f"{self.stretch_margin}")
        if not 0.0 <= self.stretch_edge <= self.stretch_margin:
            raise ValueError(f"stretch_edge must be between 0 and the stretch_margin, {self.stretch_margin:g} "
                             f"log-odds, got {self.stretch_edge}")
        if self.loss == "weighted_ce" and self.num_labels != 2:
            raise ValueError("loss='weighted_ce' needs num_labels=2; use loss='focal_bce' with a single logit")
        if self.loss == "focal_bce" and self.num_labels != 1:
            raise ValueError("loss='focal_bce' needs num_labels=1 (a single bona fide logit)")
        if len(self.class_weights) != 2 or min(self.class_weights) < 0:
            raise ValueError(f"class_weights must be two non-negative numbers [spoof, bonafide], got {self.class_weights}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not SAMPLING_RATES[0] <= self.sampling_rate <= SAMPLING_RATES[1]:
            raise ValueError(f"sampling_rate must be a speech model's rate, {SAMPLING_RATES[0]}-{SAMPLING_RATES[1]} Hz, "
                             f"got {self.sampling_rate}")
        if not 1 / MAX_CALIBRATION_SCALE <= self.calibration_scale <= MAX_CALIBRATION_SCALE:
            raise ValueError(f"calibration_scale must be between {1 / MAX_CALIBRATION_SCALE:g} and "
                             f"{MAX_CALIBRATION_SCALE:g}, got {self.calibration_scale}")
        if not abs(self.calibration_offset) <= MAX_CALIBRATION_OFFSET:
            raise ValueError(f"calibration_offset must be within +-{MAX_CALIBRATION_OFFSET:g}, got "
                             f"{self.calibration_offset}")

    def _check_sizes(self) -> None:
        """Refuse a size over its plausible maximum (`MAX_SIZES`, `MAX_FRONTEND_SIZES`, `MAX_CONV_SIZE`)."""
        sizes = [(name, getattr(self, name), limit) for name, limit in MAX_SIZES.items()]
        if self.frontend_config is not None:
            sizes += [(f"frontend_config.{name}", getattr(self.frontend_config, name, None), limit)
                      for name, limit in MAX_FRONTEND_SIZES.items()]
            sizes += [(f"frontend_config.{name}", max(getattr(self.frontend_config, name, None) or [0]),
                       MAX_CONV_SIZE) for name in ("conv_dim", "conv_kernel", "conv_stride")]
        for name, value, limit in sizes:
            if value is not None and value > limit:
                raise ValueError(f"{name} = {value} is over {limit}, the most any speech model uses: a damaged "
                                 "or hostile config")


def _placeholder(id2label: dict[int, str]) -> bool:
    """transformers' default names (`LABEL_0`, ...), which say nothing about the meaning of a class."""
    return all(label == f"LABEL_{index}" for index, label in id2label.items())


def _check_label_maps(id2label: dict | None, label2id: dict | None, num_labels: int | None) -> int:
    """The number of logits (`num_labels`, else the length of the maps, else 2); refuses a map that is neither one of
    `ID2LABEL` nor transformers' placeholders. An explicit `num_labels` wins over the other head's map (a head swap)."""
    maps = []
    if id2label is not None:
        maps.append(("id2label", {int(index): label for index, label in id2label.items()}))
    if label2id is not None:
        maps.append(("label2id", {int(index): label for label, index in label2id.items()}))
    for name, given in maps:
        if not _placeholder(given) and given not in ID2LABEL.values():
            shown = given if name == "id2label" else {label: index for index, label in given.items()}
            raise ValueError(_label_message(name, shown))
    if num_labels is None:
        num_labels = len(maps[0][1]) if maps else 2
    if num_labels not in ID2LABEL:
        raise ValueError(f"num_labels must be 1 (bona fide logit) or 2 (spoof, bonafide), got {num_labels}")
    return num_labels


def _label_message(name: str, given: dict) -> str:
    return (
        f"Nes2Net's labels are fixed ({ID2LABEL[2]} with 2 logits, {ID2LABEL[1]} with 1), got {name}={given}. "
        "A dataset that numbers its labels otherwise (audiofolder: bonafide = 0) must be "
        "mapped to the model's ids: dataset.align_labels_with_mapping(model.config.label2id, 'label')"
    )


__all__ = ["Nes2NetConfig"]
