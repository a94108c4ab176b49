"""The CPU inference path of [`Nes2NetBackend`]: the same function as its eval-mode forward, computed faster.

The back-end of the paper (Liu et al., Nes2Net, IEEE T-IFS 2025, Section III) chains many small convolutions: 1x1
convolutions over C = 128 channels and the dilated `(w, w, k)` convolutions of the nested hierarchy over w = 16
channels, each followed by an activation and a batch norm. On a CPU, oneDNN spends more time setting each of them up
than computing it. This path
- runs every convolution as batched matrix products, one per kernel tap, on zero-padded input;
- folds each batch norm (an affine map in eval mode) into the convolution before it: with ReLU and a positive scale
  `a`, `a * relu(z) + b = max(a z + b, b)`, so conv + ReLU + BN is one convolution and one in-place clamp;
- keeps the growing Nes2Net-X stack in one zero-bordered buffer instead of concatenating and padding it each step.
The folded weights are computed once and kept until a parameter or buffer of the back-end changes (its storage or
version counter). `benchmarks/backend.py` measures both paths against a transcription of the authors' loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import torch
import torch.nn.functional as F
from torch import nn

from .layer_merge_nes2net import masked_time_mean


@dataclass(frozen=True)
class ConvStage:
    """`norm(activation(conv(x)))` of one convolution and the batch norm after it, in eval mode.

    `taps`: `(kernel_size, C_out, C_in)`; `bias`: `(C_out, 1)`. With ReLU and a positive norm scale, the norm is
    folded into `taps` and `bias` and `floor` `(C_out, 1)` is its shift (the stage is `max(conv(x), floor)`);
    otherwise `floor` is None and `scale`, `shift` `(C_out, 1)` apply after the activation.
    """

    taps: torch.Tensor
    bias: torch.Tensor
    floor: torch.Tensor | None
    scale: torch.Tensor | None
    shift: torch.Tensor | None
    dilation: int
    padding: int


def norm_affine(norm: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """The eval-mode batch norm as `scale * x + shift`, each `(C,)`, in float32."""
    scale = norm.weight.float() * torch.rsqrt(norm.running_var.float() + norm.eps)
    return scale, norm.bias.float() - scale * norm.running_mean.float()


def conv_stage(conv: nn.Conv1d, norm: nn.BatchNorm1d, relu: bool) -> ConvStage:
    scale, shift = norm_affine(norm)
    weight, bias, dtype = conv.weight.float(), conv.bias.float(), conv.weight.dtype
    folded = relu and bool((scale > 0).all())
    if folded:
        weight, bias = weight * scale[:, None, None], torch.addcmul(shift, bias, scale)

    def column(values: torch.Tensor | None) -> torch.Tensor | None:
        return None if values is None else values[:, None].to(dtype).contiguous()

    return ConvStage(
        taps=weight.permute(2, 0, 1).to(dtype).contiguous(), bias=column(bias),
        floor=column(shift) if folded else None, scale=None if folded else column(scale),
        shift=None if folded else column(shift), dilation=conv.dilation[0], padding=conv.padding[0],
    )


def activate_(hidden_states: torch.Tensor, activation: nn.Module) -> torch.Tensor:
    """The back-end's activation (ReLU or SELU), in place."""
    return F.selu(hidden_states, inplace=True) if isinstance(activation, nn.SELU) else hidden_states.relu_()


def run_stage(stage: ConvStage, padded: torch.Tensor, activation: nn.Module) -> torch.Tensor:
    """`padded`: `(N, C_in, frames + 2 * padding)`, zeros in the padding -> `(N, C_out, frames)`."""
    batch, frames = padded.shape[0], padded.shape[2] - 2 * stage.padding
    taps = stage.taps
    hidden = torch.baddbmm(stage.bias.expand(batch, -1, frames), taps[0].expand(batch, -1, -1), padded[..., :frames])
    for tap in range(1, taps.shape[0]):
        start = tap * stage.dilation
        hidden.baddbmm_(taps[tap].expand(batch, -1, -1), padded[..., start:start + frames])
    if stage.floor is not None:
        return hidden.clamp_(min=stage.floor)
    return torch.addcmul(stage.shift, activate_(hidden, activation), stage.scale)


@dataclass(frozen=True)
class BlockWeights:
    """One inner block's stages, its squeeze-excitation as linear maps and (Nes2Net-X) its slice-sum weights."""

    conv_in: ConvStage
    hierarchy: tuple[ConvStage, ...]
    conv_out: ConvStage
    squeeze: tuple[torch.Tensor, torch.Tensor]
    excite: tuple[torch.Tensor, torch.Tensor]
    slice_weights: tuple[torch.Tensor, ...] | None


@dataclass(frozen=True)
class InferenceWeights:
    """Everything the inference path reads, derived from a back-end's parameters and buffers."""

    blocks: tuple[BlockWeights, ...]
    block_norms: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    norm: tuple[torch.Tensor, torch.Tensor]

    @classmethod
    def of(cls, backend: nn.Module) -> "InferenceWeights":
        relu = isinstance(backend.activation, nn.ReLU)

        def affine(norm: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
            return tuple(values[:, None].to(norm.weight.dtype) for values in norm_affine(norm))

        def linear(conv: nn.Conv1d) -> tuple[torch.Tensor, torch.Tensor]:
            return conv.weight[:, :, 0], conv.bias

        blocks = tuple(
            BlockWeights(
                conv_in=conv_stage(block.conv_in, block.norm_in, relu),
                hierarchy=tuple(conv_stage(conv, norm, relu) for conv, norm in zip(block.convs, block.norms)),
                conv_out=conv_stage(block.conv_out, block.norm_out, relu),
                squeeze=linear(block.se.squeeze), excite=linear(block.se.excite),
                slice_weights=(tuple(sums.weight[None] for sums in block.slice_sums)
                               if hasattr(block, "slice_sums") else None),
            )
            for block in backend.blocks
        )
        return cls(blocks, tuple(affine(norm) for norm in backend.block_norms), affine(backend.norm))


def weights_version(backend: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer of `backend` is replaced, moved or modified in place."""
    return tuple((tensor.data_ptr(), tensor._version) for tensor in chain(backend.parameters(), backend.buffers()))


def inference_path_applies(backend: nn.Module, features: torch.Tensor) -> bool:
    """Whether `backend(features)` may take this path: every module in eval mode and without forward hooks (this path
    calls none of them), no autograd, CPU, no autocast (whose casts follow the modules), and not being traced or
    exported (graphs keep the plain convolutions, which ONNX Runtime fuses itself)."""
    return (
        not any(module.training or module._forward_hooks or module._forward_pre_hooks for module in backend.modules())
        and not torch.is_grad_enabled()
        and features.device.type == "cpu"
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
        and not torch.jit.is_tracing()
        and not torch.onnx.is_in_onnx_export()
    )


def hierarchy(
    weights: BlockWeights, groups: torch.Tensor, buffer: torch.Tensor, activation: nn.Module,
    frame_weights: torch.Tensor | None,
) -> list[torch.Tensor]:
    """The block's hierarchy on `groups` `(batch, s2, w, frames)`, with `buffer` `(s2, batch, w, frames + 2p)` zero
    outside the frames as scratch; returns the `s2 - 1` outputs, each `(batch, w, frames)`."""
    batch, num_groups, width, frames = groups.shape
    padding = weights.hierarchy[0].padding
    inside = buffer[..., padding:padding + frames]
    outputs, stack = [], None
    for index, stage in enumerate(weights.hierarchy):
        if weights.slice_weights is None:  # Nes2Net: h = conv(h + g_i)
            slices = 1
            if stack is None:
                inside[0].copy_(groups[:, index])
            else:
                torch.add(stack[0], groups[:, index], out=inside[0])
        else:  # Nes2Net-X: the stack of the last group and the groups so far, every slice through the same conv
            slices = index + 2
            if stack is None:
                inside[0].copy_(groups[:, num_groups - 1])
            else:
                inside[:slices - 1].copy_(stack)
            inside[slices - 1].copy_(groups[:, index])
        if frame_weights is not None:
            inside[:slices].mul_(frame_weights)
        hidden = run_stage(stage, buffer[:slices].flatten(0, 1), activation)
        stack = hidden.view(slices, batch, width, frames)
        if weights.slice_weights is None:
            outputs.append(stack[0])
        else:
            outputs.append(torch.mm(weights.slice_weights[index], hidden.view(slices, -1)).view(batch, width, frames))
    return outputs


def block_forward(
    weights: BlockWeights, hidden_states: torch.Tensor, buffer: torch.Tensor, activation: nn.Module,
    frame_mask: torch.Tensor | None,
) -> torch.Tensor:
    """One inner block (`Nes2NetBottleneck.forward`): `(batch, C, frames)` -> the same shape."""
    batch, _, frames = hidden_states.shape
    num_groups, width = buffer.shape[0], buffer.shape[2]
    frame_weights = None if frame_mask is None else frame_mask[:, None, :].to(hidden_states.dtype)
    expanded = run_stage(weights.conv_in, hidden_states, activation)
    groups = expanded.view(batch, num_groups, width, frames)
    outputs = hierarchy(weights, groups, buffer, activation, frame_weights)
    outputs.append(groups[:, num_groups - 1])
    hidden = run_stage(weights.conv_out, torch.cat(outputs, dim=1), activation)
    summary = masked_time_mean(hidden, frame_mask, dim=2).squeeze(2)
    gate = torch.sigmoid(F.linear(F.linear(summary, *weights.squeeze).relu_(), *weights.excite))
    return torch.addcmul(hidden_states, hidden, gate[:, :, None])


def backend_forward(
    backend: nn.Module, weights: InferenceWeights, features: torch.Tensor, frame_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`Nes2NetBackend.forward` on this path: `(batch, frames, D)` -> trunk `(batch, frames, D)`, pooled embedding."""
    batch, frames, _ = features.shape
    first = backend.blocks[0]
    padding = weights.blocks[0].hierarchy[0].padding
    buffer = features.new_zeros(first.num_transformed + 1, batch, first.width, frames + 2 * padding)
    groups = features.transpose(1, 2).split(backend.group_channels, dim=1)
    trunk = features.new_empty(batch, features.shape[2], frames)
    parts = trunk.split(backend.group_channels, dim=1)
    hidden = None
    for index, (group, block_weights) in enumerate(zip(groups, weights.blocks)):
        hidden = group if hidden is None else hidden + group
        output = activate_(block_forward(block_weights, hidden, buffer, backend.activation, frame_mask),
                           backend.activation)
        scale, shift = weights.block_norms[index]
        hidden = torch.addcmul(shift, output, scale, out=parts[index])
    parts[-1].copy_(groups[-1])
    scale, shift = weights.norm
    activate_(torch.addcmul(shift, trunk, scale, out=trunk), backend.activation)
    return trunk.transpose(1, 2), backend.pooling(trunk, frame_mask)
