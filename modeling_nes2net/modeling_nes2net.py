"""PyTorch Nes2Net: a nested Res2Net back-end on speech foundation model features, for speech anti-spoofing.

Liu, Truong, Das, Lee, Li, "Nes2Net: A Lightweight Nested Architecture for Foundation Model Driven Speech
Anti-spoofing", IEEE T-IFS 2025 (arXiv 2504.05657).

Data flow: waveform `(batch, samples)` -> front-end (`frontends_nes2net`: an SSL model, the spectrogram or the Whisper
encoder) -> layer merge ->
features `(batch, frames, D)` -> [`Nes2NetBackend`] -> pooled embedding (together: [`Nes2NetModel`]) -> classifier ->
score calibration -> logits `(batch, num_labels)` ([`Nes2NetForAudioClassification`]).

The back-end works in the channels-first layout `(batch, channels, frames)`. Where padded batches carry a
`frame_mask`, padded frames are zeroed before every temporal convolution and excluded from every mean, so a padded
utterance gives the same logits as the same utterance alone (in eval mode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.modeling_utils import load_state_dict
from transformers.utils import ModelOutput

from .backend_inference import InferenceWeights, backend_forward, inference_path_applies, weights_version
from .configuration_nes2net import Nes2NetConfig
from .frontends_nes2net import build_frontend, length_mask
from .layer_merge_nes2net import (
    Nes2NetAttentiveMerge,
    Nes2NetSqueezeExcitationMerge,
    Nes2NetWeightedSumMerge,
    build_layer_merge,
    masked_time_mean,
)
from .weight_checks import ModelLoadError, integer_stored_problems, loading_problems


def _activation(name: str) -> nn.Module:
    return nn.SELU() if name == "selu" else nn.ReLU()


def _zero_padding(hidden_states: torch.Tensor, frame_weights: torch.Tensor | None) -> torch.Tensor:
    """Zero the padded frames of `(..., channels, frames)` so a temporal convolution sees zeros there."""
    return hidden_states if frame_weights is None else hidden_states * frame_weights


def _normalize_waveform(input_values: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Zero mean and unit variance per waveform `(batch, samples)` over its real samples (what `F.layer_norm` over
    the whole unpadded waveform gives, eps 1e-5); padding stays zero."""
    if attention_mask is None:
        return F.layer_norm(input_values, input_values.shape[-1:])
    weights = attention_mask.to(input_values.dtype)
    lengths = weights.sum(dim=-1, keepdim=True)
    mean = (input_values * weights).sum(dim=-1, keepdim=True) / lengths
    variance = ((input_values - mean) ** 2 * weights).sum(dim=-1, keepdim=True) / lengths
    return (input_values - mean) * torch.rsqrt(variance + 1e-5) * weights


def layer_statistics(hidden_states: tuple[torch.Tensor, ...], frame_mask: torch.Tensor | None) -> torch.Tensor:
    """The mean and standard deviation over the real frames of each hidden state `(batch, frames, D)`, layer by layer:
    `(batch, layers * 2 * D)` float32, `[mean_0; std_0; mean_1; ...]`."""
    statistics = []
    for state in hidden_states:
        state = state.float()
        mean = masked_time_mean(state, frame_mask, dim=1)
        variance = masked_time_mean((state - mean) ** 2, frame_mask, dim=1)
        statistics += [mean.squeeze(1), variance.squeeze(1).sqrt()]
    return torch.cat(statistics, dim=-1)


def local_layer_statistics(hidden_states: tuple[torch.Tensor, ...], frame_mask: torch.Tensor | None,
                           window: int) -> torch.Tensor:
    """The mean and standard deviation of each hidden state `(batch, frames, D)` over the `window` (odd) real frames
    centred on every frame (fewer at the edges and next to padding), layer by layer: `(batch, frames, layers * 2 * D)`
    float32, `[mean_0; std_0; mean_1; ...]` at each frame. Each state is first centred on its mean over the real frames
    (the variance does not change), so the window sums of squares lose little to rounding."""

    def window_sum(values: torch.Tensor) -> torch.Tensor:  # (batch, channels, frames), zero-padded at both ends
        return F.avg_pool1d(values, window, stride=1, padding=window // 2, count_include_pad=True) * window

    first = hidden_states[0]
    weights = (torch.ones(first.shape[0], 1, first.shape[1], device=first.device) if frame_mask is None
               else frame_mask[:, None, :].float())
    counts = window_sum(weights).clamp(min=1.0)
    statistics = []
    for state in hidden_states:
        state = state.float()
        centre = masked_time_mean(state, frame_mask, dim=1)
        values = (state - centre).transpose(1, 2) * weights
        mean = window_sum(values) / counts
        variance = (window_sum(values * values) / counts - mean**2).clamp(min=0.0)
        statistics += [mean + centre.transpose(1, 2), variance.sqrt()]
    return torch.cat(statistics, dim=1).transpose(1, 2)


def pooled_local_layer_statistics(hidden_states: tuple[torch.Tensor, ...], frame_mask: torch.Tensor | None,
                                  window: int) -> torch.Tensor:
    """The mean over the real frames of `local_layer_statistics` over `window` frames: `(batch, layers * 2 * D)`
    float32, what a linear probe of windows scores a recording by (the mean of its windows' log-odds)."""
    local = local_layer_statistics(hidden_states, frame_mask, window)
    return masked_time_mean(local, frame_mask, dim=1).squeeze(1)


class Nes2NetSqueezeExcitation(nn.Module):
    """Channel gate `x * sigmoid(W2 relu(W1 mean_t(x)))` with 1x1 convolutions `C -> C / r -> C` (with biases)."""

    def __init__(self, channels: int, ratio: int, min_channels: int = 1):
        super().__init__()
        bottleneck = max(channels // ratio, min_channels)
        self.squeeze = nn.Conv1d(channels, bottleneck, kernel_size=1)
        self.activation = nn.ReLU()
        self.excite = nn.Conv1d(bottleneck, channels, kernel_size=1)

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`hidden_states`: `(batch, channels, frames)`; `frame_mask`: `(batch, frames)` bool or None."""
        summary = masked_time_mean(hidden_states, frame_mask, dim=2)
        return hidden_states * torch.sigmoid(self.excite(self.activation(self.squeeze(summary))))


class Nes2NetBottleneck(GradientCheckpointingLayer):
    """Inner block of Nes2Net: a Res2Net bottleneck with squeeze-excitation and a residual connection.

    `(batch, C, frames)` -> 1x1 conv to `w * s2`, activation, BN -> split into `s2` groups of `w`; group `i` (but the
    last) is added to the previous group's output and passed through a dilated conv, activation and BN -> the outputs
    and the untouched last group are concatenated -> 1x1 conv to C, activation, BN, SE -> + input.
    """

    def __init__(self, config: Nes2NetConfig):
        super().__init__()
        channels, width, scale = config.group_channels, config.inner_width, config.inner_ratio
        self.width = width
        self.num_transformed = scale - 1
        self.conv_in = nn.Conv1d(channels, width * scale, kernel_size=1)
        self.norm_in = nn.BatchNorm1d(width * scale)
        padding = (config.kernel_size // 2) * config.dilation
        self.convs = nn.ModuleList(
            nn.Conv1d(width, width, config.kernel_size, dilation=config.dilation, padding=padding)
            for _ in range(self.num_transformed)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(self.num_transformed))
        self.conv_out = nn.Conv1d(width * scale, channels, kernel_size=1)
        self.norm_out = nn.BatchNorm1d(channels)
        self.activation = _activation(config.activation)
        self.se = Nes2NetSqueezeExcitation(channels, config.se_ratio, config.se_min_channels)

    def hierarchy(self, groups: tuple[torch.Tensor, ...], frame_weights: torch.Tensor | None) -> list[torch.Tensor]:
        """The additive Res2Net hierarchy over the `s2` groups, each `(batch, w, frames)`; returns `s2 - 1` outputs."""
        outputs, hidden = [], None
        for index in range(self.num_transformed):
            hidden = groups[index] if hidden is None else hidden + groups[index]
            hidden = self.convs[index](_zero_padding(hidden, frame_weights))
            hidden = self.norms[index](self.activation(hidden))
            outputs.append(hidden)
        return outputs

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`hidden_states`: `(batch, C, frames)`; `frame_mask`: `(batch, frames)` bool or None. Returns the same shape."""
        frame_weights = None if frame_mask is None else frame_mask[:, None, :].to(hidden_states.dtype)
        expanded = self.norm_in(self.activation(self.conv_in(hidden_states)))
        groups = torch.split(expanded, self.width, dim=1)
        outputs = self.hierarchy(groups, frame_weights)
        outputs.append(groups[self.num_transformed])
        hidden = self.norm_out(self.activation(self.conv_out(torch.cat(outputs, dim=1))))
        return self.se(hidden, frame_mask) + hidden_states


class Nes2NetSliceSum(nn.Module):
    """Learnably weighted sum over the slices of a stack: `(slices, ...)` -> `(...)`, one weight per slice."""

    def __init__(self, num_slices: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_slices))

    def forward(self, stack: torch.Tensor) -> torch.Tensor:
        return torch.tensordot(self.weight.to(stack.dtype), stack, dims=1)


class Nes2NetXBottleneck(Nes2NetBottleneck):
    """Inner block of Nes2Net-X: the additive hierarchy becomes a growing stack of groups.

    Starting from the last group, step `i` appends group `i` to the stack (now `i + 2` slices), passes every slice
    through the same dilated conv, activation and BN, carries the whole stack on, and outputs the sum of the slices
    weighted by a learnable vector `slice_sums[i].weight` of length `i + 2` (initialised to `1 / (i + 2)`).
    The stack is kept as `(slices, batch, w, frames)` so each step is one 1-D convolution over `slices * batch`
    sequences: the same arithmetic as the paper's `(k, 1)` 2-D convolution, with `(w, w, k)` kernels.
    """

    def __init__(self, config: Nes2NetConfig):
        super().__init__(config)
        self.slice_sums = nn.ModuleList(Nes2NetSliceSum(index + 2) for index in range(self.num_transformed))

    def hierarchy(self, groups: tuple[torch.Tensor, ...], frame_weights: torch.Tensor | None) -> list[torch.Tensor]:
        outputs = []
        stack = groups[self.num_transformed].unsqueeze(0)  # (slices, batch, w, frames)
        for index in range(self.num_transformed):
            stack = torch.cat([stack, groups[index].unsqueeze(0)], dim=0)
            slices, batch_size = stack.shape[:2]
            hidden = self.convs[index](_zero_padding(stack, frame_weights).flatten(0, 1))
            stack = self.norms[index](self.activation(hidden)).unflatten(0, (slices, batch_size))
            outputs.append(self.slice_sums[index](stack))
        return outputs


class Nes2NetMeanPooling(nn.Module):
    """Mean over the real frames: `(batch, D, frames)` -> `(batch, D)`."""

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        return masked_time_mean(hidden_states, frame_mask, dim=2).squeeze(2)


class Nes2NetAttentiveStatsPooling(nn.Module):
    """Attentive statistics pooling (ASTP): `(batch, D, frames)` -> `(batch, 2 * D)` = `[mean; std]` under a
    per-channel softmax attention over frames, computed by 1x1 convolutions `D -> attention_channels -> D` with tanh."""

    def __init__(self, channels: int, attention_channels: int):
        super().__init__()
        self.attention_in = nn.Conv1d(channels, attention_channels, kernel_size=1)
        self.attention_out = nn.Conv1d(attention_channels, channels, kernel_size=1)

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        scores = self.attention_out(torch.tanh(self.attention_in(hidden_states)))
        if frame_mask is not None:
            scores = scores.masked_fill(~frame_mask[:, None, :], torch.finfo(scores.dtype).min)
        attention = torch.softmax(scores, dim=2)
        mean = torch.sum(attention * hidden_states, dim=2)
        variance = torch.sum(attention * hidden_states**2, dim=2) - mean**2
        return torch.cat([mean, torch.sqrt(variance.clamp(min=1e-10))], dim=1)


class Nes2NetBackend(nn.Module):
    """Everything after the front-end and the layer merge, up to the utterance embedding: the nested Res2Net and the
    pooling (the classifier sits in [`Nes2NetForAudioClassification`]).

    The D input channels are split into `s1` groups of C. A running sum over the groups feeds one inner block per
    group but the last (`h = g_0`, then `h = h + g_i`), each followed by activation and BN; the `s1 - 1` outputs and
    the untouched last group are concatenated back to D channels -> BN -> activation -> pooling.
    """

    def __init__(self, config: Nes2NetConfig):
        super().__init__()
        block_class = Nes2NetXBottleneck if config.backend_variant == "nes2net-x" else Nes2NetBottleneck
        self.group_channels = config.group_channels
        self.blocks = nn.ModuleList(block_class(config) for _ in range(config.outer_ratio - 1))
        self.block_norms = nn.ModuleList(nn.BatchNorm1d(config.group_channels) for _ in range(config.outer_ratio - 1))
        self.norm = nn.BatchNorm1d(config.feature_size)
        self.activation = _activation(config.activation)
        if config.pooling == "astp":
            self.pooling = Nes2NetAttentiveStatsPooling(config.feature_size, config.attention_channels)
        else:
            self.pooling = Nes2NetMeanPooling()
        self._inference_weights: tuple[tuple, InferenceWeights] | None = None

    def inference_weights(self) -> InferenceWeights:
        """The weights of the CPU inference path, derived once and again whenever a parameter or buffer changes."""
        version = weights_version(self)
        if self._inference_weights is None or self._inference_weights[0] != version:
            self._inference_weights = (version, InferenceWeights.of(self))
        return self._inference_weights[1]

    def forward(
        self, features: torch.Tensor, frame_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`features`: `(batch, frames, D)`; `frame_mask`: `(batch, frames)` bool (True on real frames) or None.
        Returns the trunk's output `(batch, frames, D)` and the pooled embedding `(batch, pooled_size)`. Inference on
        the CPU (eval mode, no autograd) takes the path of `backend_inference`: the same function, computed faster."""
        if inference_path_applies(self, features):
            return backend_forward(self, self.inference_weights(), features, frame_mask)
        groups = torch.split(features.transpose(1, 2).contiguous(), self.group_channels, dim=1)
        outputs, hidden = [], None
        for group, block, block_norm in zip(groups, self.blocks, self.block_norms):
            hidden = group if hidden is None else hidden + group
            hidden = block_norm(self.activation(block(hidden, frame_mask)))
            outputs.append(hidden)
        outputs.append(groups[-1])
        hidden = self.activation(self.norm(torch.cat(outputs, dim=1)))
        return hidden.transpose(1, 2), self.pooling(hidden, frame_mask)


class Nes2NetScoreCalibration(nn.Module):
    """The affine score calibration of the config: logits `(batch, num_labels)` whose log-odds
    `log p(bonafide) / p(spoof)` become `calibration_scale * log_odds + calibration_offset`.

    One logit: `a * logit + b`. Two logits: `a * logits + [0, b]`, which also scales the bona fide logit (the paper's
    score) monotonically. The identity `(1, 0)` returns the logits untouched.
    """

    def __init__(self, config: Nes2NetConfig):
        super().__init__()
        self.config = config

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        scale, offset = self.config.calibration_scale, self.config.calibration_offset
        if scale == 1.0 and offset == 0.0:
            return logits
        shift = torch.zeros(logits.shape[-1], dtype=logits.dtype, device=logits.device)
        shift[-1] = offset
        return logits * scale + shift


@dataclass
class Nes2NetModelOutput(ModelOutput):
    r"""
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, frames, feature_size)`):
        Output of the nested Res2Net trunk, before pooling.
    pooler_output (`torch.FloatTensor` of shape `(batch_size, pooled_size)`):
        Utterance embedding, the classifier's input (`config.pooled_size`: mean pooling `feature_size`, ASTP
        `2 * feature_size`, then with `layer_statistics` the mean and std of each hidden state read).
    merged_features (`torch.FloatTensor` of shape `(batch_size, frames, feature_size)`):
        The back-end's input: the front-end's hidden states merged by `config.layer_merge`.
    frame_mask (`torch.BoolTensor` of shape `(batch_size, frames)`, *optional*):
        True on real frames, when an `attention_mask` was given.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
        The front-end's hidden states, each `(batch_size, frames, feature_size)`: the feature projection and every
        transformer layer of an SSL model, the log-spectrogram for the spectrogram front-end.
    attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True`):
        The SSL front-end's attention weights per layer, each `(batch_size, num_heads, frames, frames)`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    merged_features: torch.FloatTensor | None = None
    frame_mask: torch.BoolTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class Nes2NetClassifierOutput(SequenceClassifierOutput):
    r"""
    `SequenceClassifierOutput` (calibrated `logits` `(batch_size, num_labels)`, `loss` with labels, the front-end's
    `hidden_states` and `attentions` when asked) plus:

    pooler_output (`torch.FloatTensor` of shape `(batch_size, pooled_size)`):
        The utterance embedding the classifier read.
    merged_features (`torch.FloatTensor` of shape `(batch_size, frames, feature_size)`, *optional*):
        The layer-merged features the back-end read, returned with `output_hidden_states=True`.
    """

    pooler_output: torch.FloatTensor | None = None
    merged_features: torch.FloatTensor | None = None


class Nes2NetPreTrainedModel(PreTrainedModel):
    config: Nes2NetConfig
    config_class = Nes2NetConfig
    base_model_prefix = "nes2net"
    main_input_name = "input_values"
    _no_split_modules = ["Nes2NetBottleneck", "Nes2NetXBottleneck"]
    input_modalities = "audio"
    supports_gradient_checkpointing = True

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, allow_new_weights: bool = False,
                        output_loading_info: bool = False, **kwargs):
        """`PreTrainedModel.from_pretrained`, refusing with a one-line `ModelLoadError` naming the folder (or Hub id)
        a checkpoint the model would not be what was trained with: NaN or infinite weights, weights missing from it
        (initialised at random, differently at each load), foreign weights (another architecture), and floating-point
        weights stored as integers (cast silently). Heads the class lacks and front-end layers a truncated model
        skips are dropped on purpose (`weight_checks.dropped_on_purpose`).

        `allow_new_weights=True` lets missing weights be initialised: a checkpoint loaded to train a new part (a
        frame head, a layer merge); non-finite and foreign weights are refused all the same."""
        model, loading_info = super().from_pretrained(
            pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
        )
        problems = loading_problems(model, loading_info, allow_new_weights)
        if problems:
            raise ModelLoadError.refusing(pretrained_model_name_or_path, problems)
        return (model, loading_info) if output_loading_info else model

    @staticmethod
    def _load_pretrained_model(model, state_dict, checkpoint_files, load_config, *args, **kwargs):
        """transformers' loader, after refusing floating-point weights the checkpoint stores with an integer dtype
        (the loader would cast them to float without a word); reads the files' dtypes, not their tensors."""
        stored = dict(state_dict or {})
        for file in checkpoint_files or ():
            stored.update(load_state_dict(file, map_location="meta"))
        problems = integer_stored_problems(stored, model)
        if problems:
            raise ModelLoadError.refusing(load_config.pretrained_model_name_or_path, problems)
        return PreTrainedModel._load_pretrained_model(model, state_dict, checkpoint_files, load_config, *args,
                                                      **kwargs)

    def save_pretrained(self, save_directory, *args, state_dict: dict[str, torch.Tensor] | None = None, **kwargs):
        """`PreTrainedModel.save_pretrained`, with the front-end's floating-point weights stored in
        `config.frontend_weights_dtype` (the config keeps the model's dtype, so they load back in it)."""
        if state_dict is None and self.config.frontend_weights_dtype != "float32":
            dtype = getattr(torch, self.config.frontend_weights_dtype)
            state_dict = {name: tensor.to(dtype) if ".frontend." in f".{name}" and tensor.is_floating_point()
                          else tensor for name, tensor in self.state_dict().items()}
        return super().save_pretrained(save_directory, *args, state_dict=state_dict, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        """PyTorch's default init for convolutions and linear layers (what the authors trained from), ones/zeros for
        norms, `1 / (i + 2)` for the Nes2Net-X slice weights, ones for the weighted-sum merge, N(0, 1) for AttM."""
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in = module.weight[0].numel()
                init.uniform_(module.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        elif isinstance(module, Nes2NetSliceSum):
            init.constant_(module.weight, 1.0 / module.weight.numel())
        elif isinstance(module, Nes2NetWeightedSumMerge):
            init.ones_(module.layer_weights)
        elif isinstance(module, Nes2NetAttentiveMerge):
            for parameter in (module.channel_weight, module.layer_squeeze, module.layer_excite):
                init.normal_(parameter)
        else:
            super()._init_weights(module)


class Nes2NetModel(Nes2NetPreTrainedModel):
    """Nes2Net without its classifier: waveform -> front-end -> layer merge -> nested Res2Net -> pooled utterance
    embedding, for embeddings, fusion and new heads."""

    def __init__(self, config: Nes2NetConfig):
        super().__init__(config)
        self.frontend = build_frontend(config)
        self.layer_merge = build_layer_merge(config)
        self.backend = Nes2NetBackend(config)
        self.post_init()
        if config.freeze_frontend:
            self.freeze_frontend()

    def freeze_frontend(self) -> None:
        """Stop gradients into the whole front-end (the layer merge and back-end keep training)."""
        self.config.freeze_frontend = True
        for parameter in self.frontend.parameters():
            parameter.requires_grad = False

    def freeze_feature_encoder(self) -> None:
        """Stop gradients into the front-end's convolutional feature encoder only."""
        self.frontend.freeze_feature_encoder()

    def frame_lengths(self, sample_lengths: torch.Tensor) -> torch.Tensor:
        """Number of feature frames for waveforms of `sample_lengths` samples."""
        return self.frontend.output_lengths(sample_lengths)

    def forward_frontend_states(
        self, hidden_states: tuple[torch.Tensor, ...], frame_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Everything after the front-end, on its `hidden_states` (each `(batch, frames, D)`; with
        `layer_merge="last"` only the last is read: the front-end's last hidden state) and a `(batch, frames)`
        `frame_mask`: returns the merged features, the trunk's
        output `(batch, frames, D)` and the pooled embedding `(batch, config.pooled_size)` (with `layer_statistics`,
        `layer_statistics` of the hidden states read appended, or with `layer_statistics_window` their
        `pooled_local_layer_statistics`). `forward` ends here; a frozen
        front-end's cached states can enter here directly (`training.frozen_frontend`)."""
        statistics, window = None, self.config.layer_statistics_window
        if self.config.layer_statistics:
            statistics = (layer_statistics(hidden_states, frame_mask) if window is None
                          else pooled_local_layer_statistics(hidden_states, frame_mask, window))
        if self.config.normalize_layers:
            hidden_states = tuple(F.layer_norm(state, state.shape[-1:]) for state in hidden_states)
        merged_features = hidden_states[-1] if self.layer_merge is None else self.layer_merge(hidden_states, frame_mask)
        merged_features = merged_features.to(self.dtype)  # the spectrogram is float32 whatever the model's dtype
        last_hidden_state, pooler_output = self.backend(merged_features, frame_mask)
        if statistics is not None:
            pooler_output = torch.cat([pooler_output, statistics.to(pooler_output.dtype)], dim=-1)
        return merged_features, last_hidden_state, pooler_output

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> Nes2NetModelOutput | tuple:
        r"""
        input_values (`torch.FloatTensor` of shape `(batch_size, samples)`):
            Raw 16 kHz mono waveform in [-1, 1] (the released models expect it unnormalised).
        attention_mask (`torch.LongTensor` of shape `(batch_size, samples)`, *optional*):
            1 on real samples, 0 on padding. Exact for front-ends with layer-normalised feature encoders (XLS-R,
            WavLM Large, the spectrogram); group-norm encoders (wav2vec2-base) mix padding into their statistics.
        output_hidden_states (`bool`, *optional*):
            Return the front-end's hidden states (see [`Nes2NetModelOutput`]).
        output_attentions (`bool`, *optional*):
            Return the SSL front-end's attention weights; refused by the spectrogram and Whisper front-ends.
        """
        config = self.config
        output_hidden_states = output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        output_attentions = output_attentions if output_attentions is not None else config.output_attentions
        return_dict = return_dict if return_dict is not None else config.return_dict
        if config.normalize_waveform:
            input_values = _normalize_waveform(input_values.float(), attention_mask)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not config.freeze_frontend):
            frontend_output = self.frontend(
                input_values,
                attention_mask=attention_mask,
                output_hidden_states=output_hidden_states or self.layer_merge is not None,
                output_attentions=output_attentions,
            )
        last_state = frontend_output.last_hidden_state
        frame_mask = None
        if attention_mask is not None:
            lengths = self.frame_lengths(attention_mask.sum(dim=-1))
            frame_mask = length_mask(lengths, last_state.shape[1])
        states = (last_state,) if self.layer_merge is None else frontend_output.hidden_states
        merged_features, last_hidden_state, pooler_output = self.forward_frontend_states(states, frame_mask)
        output = Nes2NetModelOutput(
            last_hidden_state=last_hidden_state,
            pooler_output=pooler_output,
            merged_features=merged_features,
            frame_mask=frame_mask,
            hidden_states=frontend_output.hidden_states if output_hidden_states else None,
            attentions=frontend_output.attentions,
        )
        return output if return_dict else output.to_tuple()


class Nes2NetForAudioClassification(Nes2NetPreTrainedModel):
    """Nes2Net spoofing detector on a raw 16 kHz waveform: [`Nes2NetModel`], a linear classifier on its pooled
    embedding, and the config's score calibration. Label 1 / the bona fide logit means genuine speech."""

    def __init__(self, config: Nes2NetConfig):
        super().__init__(config)
        self.nes2net = Nes2NetModel(config)
        self.classifier = nn.Linear(config.pooled_size, config.num_labels)
        self.calibration = Nes2NetScoreCalibration(config)
        self.post_init()

    def freeze_frontend(self) -> None:
        """Stop gradients into the whole front-end (the layer merge, back-end and classifier keep training)."""
        self.nes2net.freeze_frontend()

    def freeze_feature_encoder(self) -> None:
        """Stop gradients into the SSL front-end's convolutional feature encoder only."""
        self.nes2net.freeze_feature_encoder()

    def frame_lengths(self, sample_lengths: torch.Tensor) -> torch.Tensor:
        """Number of feature frames for waveforms of `sample_lengths` samples."""
        return self.nes2net.frame_lengths(sample_lengths)

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """`config.loss` on logits `(batch, num_labels)` and labels `(batch,)` (1 = bona fide): plain cross-entropy
        (2 logits) or binary cross-entropy (1 logit) by default; the paper's class-weighted cross-entropy or binary
        focal loss on soft labels when the config names them."""
        config = self.config
        if config.num_labels == 2:
            weight = None
            if config.loss == "weighted_ce":
                weight = torch.tensor(config.class_weights, dtype=logits.dtype, device=logits.device)
            return F.cross_entropy(logits, labels.long(), weight=weight)
        logits = logits.squeeze(-1)
        if config.loss is None:
            return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        targets = labels.to(logits.dtype) * (1 - config.label_smoothing) + config.label_smoothing / 2
        cross_entropy = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        probability = torch.sigmoid(logits)
        target_probability = probability * targets + (1 - probability) * (1 - targets)
        alpha = config.focal_alpha * targets + (1 - config.focal_alpha) * (1 - targets)
        return (alpha * (1 - target_probability) ** config.focal_gamma * cross_entropy).mean()

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> Nes2NetClassifierOutput | tuple:
        r"""
        input_values (`torch.FloatTensor` of shape `(batch_size, samples)`):
            Raw 16 kHz mono waveform in [-1, 1] (the released models expect it unnormalised).
        attention_mask (`torch.LongTensor` of shape `(batch_size, samples)`, *optional*):
            1 on real samples, 0 on padding (see [`Nes2NetModel.forward`]).
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            1 for bona fide, 0 for spoof.
        output_hidden_states (`bool`, *optional*):
            Return the front-end's hidden states, and the merged features as `merged_features`.
        output_attentions (`bool`, *optional*):
            Return the SSL front-end's attention weights (refused by the spectrogram front-end).

        Returns [`Nes2NetClassifierOutput`]: calibrated `logits` `(batch_size, num_labels)` (see
        [`Nes2NetScoreCalibration`]) and, with labels, `loss`.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.nes2net(
            input_values,
            attention_mask=attention_mask,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        logits = self.calibration(self.classifier(outputs.pooler_output))
        loss = self.compute_loss(logits, labels) if labels is not None else None
        output = Nes2NetClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            pooler_output=outputs.pooler_output,
            merged_features=outputs.merged_features if outputs.hidden_states is not None else None,
        )
        return output if return_dict else output.to_tuple()


__all__ = [
    "Nes2NetBackend",
    "Nes2NetBottleneck",
    "Nes2NetXBottleneck",
    "Nes2NetSliceSum",
    "Nes2NetSqueezeExcitation",
    "Nes2NetAttentiveStatsPooling",
    "Nes2NetMeanPooling",
    "Nes2NetSqueezeExcitationMerge",
    "Nes2NetScoreCalibration",
    "Nes2NetModelOutput",
    "Nes2NetClassifierOutput",
    "Nes2NetPreTrainedModel",
    "Nes2NetModel",
    "Nes2NetForAudioClassification",
]


@dataclass
class Nes2NetFrameClassifierOutput(Nes2NetClassifierOutput):
    r"""
    [`Nes2NetClassifierOutput`] (the calibrated utterance `logits` `(batch_size, num_labels)`, ...) plus:

    frame_logits (`torch.FloatTensor` of shape `(batch_size, frames, num_labels)`):
        Bona fide / spoof logits of every back-end frame (padded frames included; mask them with `frame_mask`).
    frame_mask (`torch.BoolTensor` of shape `(batch_size, frames)`, *optional*):
        True on real frames, when an `attention_mask` was given.
    """

    frame_logits: torch.FloatTensor | None = None
    frame_mask: torch.BoolTensor | None = None


class Nes2NetForAudioFrameClassification(Nes2NetForAudioClassification):
    """Nes2Net that also says where: [`Nes2NetForAudioClassification`] (same weights, same utterance `logits`) plus a
    linear frame classifier on the nested Res2Net's output before pooling, giving bona fide / spoof logits per
    back-end frame (20 ms for the spectrogram front-end at hop 320 and for wav2vec2-style SSL front-ends).

    Loading a trained utterance model into this class keeps its trunk and classifier and initialises the frame
    classifier only (train it jointly, or alone after `freeze_utterance_model`); loading a frame model into
    `Nes2NetForAudioClassification` drops the frame classifier. Frame logits are not calibrated: their log-odds
    `frame_logits[..., 1] - frame_logits[..., 0]` are what cross-entropy trained them to be.
    """

    def __init__(self, config: Nes2NetConfig):
        super().__init__(config)
        self.frame_classifier = nn.Linear(config.frame_feature_size, config.num_labels)
        self.post_init()

    def frame_logits_of(self, hidden_states: tuple[torch.Tensor, ...], last_hidden_state: torch.Tensor,
                        frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Frame logits `(batch, frames, num_labels)` from the hidden states the back-end read (each `(batch, frames,
        D)`, as `Nes2NetModel.forward_frontend_states` takes them), the trunk's output `(batch, frames, D)` and the
        `(batch, frames)` frame mask: the frame classifier on the trunk's output, with `frame_statistics_window` and
        the local statistics of the hidden states (`local_layer_statistics`) after it."""
        features = last_hidden_state
        window = self.config.frame_statistics_window
        if window:
            statistics = local_layer_statistics(hidden_states, frame_mask, window)
            features = torch.cat([features, statistics.to(features.dtype)], dim=-1)
        return self.frame_classifier(features)

    def freeze_utterance_model(self) -> None:
        """Stop gradients into everything but the frame classifier (to train it on top of a trained model)."""
        for name, parameter in self.named_parameters():
            parameter.requires_grad = name.startswith("frame_classifier.")

    def frame_times(self, num_frames: int) -> torch.Tensor:
        """Centre of each of `num_frames` back-end frames, in seconds from the start of the input: `(num_frames,)`."""
        return self.nes2net.frontend.frame_geometry().centres(num_frames) / self.config.sampling_rate

    def compute_frame_loss(self, frame_logits: torch.Tensor, frame_labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy (2 logits) or binary cross-entropy (1 logit) over the frames whose label is not -100:
        `frame_logits` `(batch, frames, num_labels)`, `frame_labels` `(batch, frames)` (1 bona fide, 0 spoof)."""
        if self.config.num_labels == 2:
            return F.cross_entropy(frame_logits.flatten(0, 1), frame_labels.flatten().long(), ignore_index=-100)
        kept = frame_labels != -100
        return F.binary_cross_entropy_with_logits(frame_logits[..., 0][kept], frame_labels[kept].to(frame_logits.dtype))

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        frame_labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> Nes2NetFrameClassifierOutput | tuple:
        r"""
        input_values (`torch.FloatTensor` of shape `(batch_size, samples)`):
            Raw 16 kHz mono waveform in [-1, 1].
        attention_mask (`torch.LongTensor` of shape `(batch_size, samples)`, *optional*):
            1 on real samples, 0 on padding (see [`Nes2NetModel.forward`]).
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Utterance labels, 1 for bona fide, 0 for spoof (the utterance loss).
        frame_labels (`torch.LongTensor` of shape `(batch_size, frames)`, *optional*):
            Frame labels, 1 bona fide, 0 spoof, -100 ignored (padded frames are ignored whatever they hold).

        Returns [`Nes2NetFrameClassifierOutput`]; `loss` is the sum of the utterance and frame losses given labels.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (output_hidden_states if output_hidden_states is not None
                                else self.config.output_hidden_states)
        reads_states = bool(self.config.frame_statistics_window)
        outputs = self.nes2net(
            input_values,
            attention_mask=attention_mask,
            output_hidden_states=output_hidden_states or reads_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        logits = self.calibration(self.classifier(outputs.pooler_output))
        states = None
        if reads_states:  # the hidden states the back-end read: all of them with a layer merge, else the one it read
            states = outputs.hidden_states if self.nes2net.layer_merge is not None else (outputs.merged_features,)
        frame_logits = self.frame_logits_of(states, outputs.last_hidden_state, outputs.frame_mask)
        if not output_hidden_states:
            outputs.hidden_states = None
        losses = []
        if labels is not None:
            losses.append(self.compute_loss(logits, labels))
        if frame_labels is not None:
            if outputs.frame_mask is not None:
                frame_labels = frame_labels.masked_fill(~outputs.frame_mask, -100)
            losses.append(self.compute_frame_loss(frame_logits, frame_labels))
        output = Nes2NetFrameClassifierOutput(
            loss=sum(losses) if losses else None,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            pooler_output=outputs.pooler_output,
            merged_features=outputs.merged_features if outputs.hidden_states is not None else None,
            frame_logits=frame_logits,
            frame_mask=outputs.frame_mask,
        )
        return output if return_dict else output.to_tuple()


__all__ += ["Nes2NetFrameClassifierOutput", "Nes2NetForAudioFrameClassification"]
