"""The CPU inference path of [`Nes2NetBackend`]: the same function as its eval-mode forward, computed faster.

The back-end of the paper (Liu et al., Nes2Net, IEEE T-IFS 2025, Section III) chains many small convolutions: 1x1
convolutions over C = 128 channels and the dilated `(w, w, k)` convolutions of the nested hierarchy over w = 16
channels, each followed by an activation and a batch norm. On a CPU, oneDNN spends more time setting each of them up
than computing it. This path
- runs every convolution as batched matrix products, one per kernel tap, on zero-padded input;
- folds each batch norm (an affine map in eval mode) into the convolution before it: with ReLU and a positive scale
  `a`, `a * relu(z) + b = max(a z + b, b)`, so conv + ReLU + BN is one convolution and one in-place clamp;
- keeps the growing Nes2Net-X stack in one zero-bordered buffer instead of concatenating and padding it each step;
- writes every stage into a few scratch tensors that all blocks reuse ([`Workspace`]): at these sizes a fresh tensor per
  operation (first-touch page faults, cold cache) costs more than the arithmetic;
- computes SELU as `λ elu(x, α)`, its scale λ absorbed by the batch norm after it (one multiplication less), and the
  attentive statistics pooling's scores a few hundred channels at a time into one buffer, with the softmax and weighted
  sums done in place.
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

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805  # torch.nn.SELU's constants


@dataclass(frozen=True)
class ConvStage:
    """`norm(activation(conv(x)))` of one convolution and the batch norm after it, in eval mode.

    `taps`: `(kernel_size, C_out, C_in)`; `bias`: `(C_out, 1)`. With ReLU and a positive norm scale, the norm is
    folded into `taps` and `bias` and `floor` `(C_out, 1)` is its shift (the stage is `max(conv(x), floor)`);
    otherwise `floor` is None and `scale`, `shift` `(C_out, 1)` apply after the activation (`norm_after_activation`;
    `selu`: the activation is SELU, not ReLU).
    """

    taps: torch.Tensor
    bias: torch.Tensor
    floor: torch.Tensor | None
    scale: torch.Tensor | None
    shift: torch.Tensor | None
    selu: bool
    dilation: int
    padding: int


def norm_affine(norm: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """The eval-mode batch norm as `scale * x + shift`, each `(C,)`, in float32."""
    scale = norm.weight.float() * torch.rsqrt(norm.running_var.float() + norm.eps)
    return scale, norm.bias.float() - scale * norm.running_mean.float()


def norm_after_activation(norm: nn.BatchNorm1d, selu: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The eval-mode batch norm that follows the activation, as `scale * g + shift` of what
    `activation_norm` computes, `g`: ReLU itself, or `selu(x) / λ = elu(x, α)`, whose λ the affine map absorbs;
    each `(C,)`, float32."""
    scale, shift = norm_affine(norm)
    return (scale * SELU_SCALE if selu else scale), shift


def column(values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A per-channel vector `(C,)` as a contiguous `(C, 1)` column in `dtype`, broadcast over frames."""
    return values[:, None].to(dtype).contiguous()


def conv_stage(conv: nn.Conv1d, norm: nn.BatchNorm1d, selu: bool) -> ConvStage:
    scale, shift = norm_after_activation(norm, selu)
    weight, bias, dtype = conv.weight.float(), conv.bias.float(), conv.weight.dtype
    folded = not selu and bool((scale > 0).all())
    if folded:
        weight, bias = weight * scale[:, None, None], torch.addcmul(shift, bias, scale)
    return ConvStage(
        taps=weight.permute(2, 0, 1).to(dtype).contiguous(), bias=column(bias, dtype),
        floor=column(shift, dtype) if folded else None, scale=None if folded else column(scale, dtype),
        shift=None if folded else column(shift, dtype), selu=selu, dilation=conv.dilation[0], padding=conv.padding[0],
    )


def affine(values: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """`scale * values + shift` into `out`, for `values` `(..., C, frames)` and `(C, 1)` `scale` and `shift`. The shift
    is first expanded to `(C, frames)`: `addcmul` with two broadcast operands runs several times slower on the CPU."""
    return torch.addcmul(shift.expand(-1, values.shape[-1]).contiguous(), values, scale, out=out)


def activation_norm(values: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, selu: bool,
                    out: torch.Tensor) -> torch.Tensor:
    """`scale * g(values) + shift` into `out`, for `values` `(..., C, frames)` (overwritten) and `scale`, `shift`
    `(C, 1)` from `norm_after_activation`: `g` is ReLU, or SELU as `elu(x, α)` (λ is in `scale`)."""
    activated = F.elu(values, SELU_ALPHA, inplace=True) if selu else values.relu_()
    return affine(activated, scale, shift, out)


def run_stage(stage: ConvStage, padded: torch.Tensor, scratch: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`padded`: `(N, C_in, frames + 2 * padding)`, zeros in the padding. The convolution is computed in `scratch`
    `(N, C_out, frames)`; the stage's output is written to `target` (the same shape; may be `scratch` itself)."""
    batch, frames = padded.shape[0], scratch.shape[2]
    taps = stage.taps
    torch.baddbmm(stage.bias.expand(batch, -1, frames), taps[0].expand(batch, -1, -1), padded[..., :frames],
                  out=scratch)
    for tap in range(1, taps.shape[0]):
        start = tap * stage.dilation
        scratch.baddbmm_(taps[tap].expand(batch, -1, -1), padded[..., start:start + frames])
    if stage.floor is not None:
        return torch.clamp(scratch, min=stage.floor, out=target)
    return activation_norm(scratch, stage.scale, stage.shift, stage.selu, out=target)


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
    selu: bool
    attention: tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None

    @classmethod
    def of(cls, backend: nn.Module) -> "InferenceWeights":
        selu = isinstance(backend.activation, nn.SELU)

        def linear(conv: nn.Conv1d) -> tuple[torch.Tensor, torch.Tensor]:
            return conv.weight[:, :, 0], conv.bias

        blocks = tuple(
            BlockWeights(
                conv_in=conv_stage(block.conv_in, block.norm_in, selu),
                hierarchy=tuple(conv_stage(conv, norm, selu) for conv, norm in zip(block.convs, block.norms)),
                conv_out=conv_stage(block.conv_out, block.norm_out, selu),
                squeeze=linear(block.se.squeeze), excite=linear(block.se.excite),
                slice_weights=(tuple(sums.weight[None] for sums in block.slice_sums)
                               if hasattr(block, "slice_sums") else None),
            )
            for block in backend.blocks
        )
        pooling = backend.pooling
        attention = ((linear(pooling.attention_in), linear(pooling.attention_out))
                     if hasattr(pooling, "attention_in") else None)
        block_norms = tuple(tuple(column(values, norm.weight.dtype) for values in norm_after_activation(norm, selu))
                            for norm in backend.block_norms)
        norm = tuple(column(values, backend.norm.weight.dtype) for values in norm_affine(backend.norm))
        return cls(blocks, block_norms, norm, selu, attention)


def submodules(module: nn.Module) -> list[nn.Module]:
    """`module` and every module under it, as `module.modules()` yields them (a module held twice comes twice) without
    its generator's cost, which at batch 1 is a sizeable part of a forward; both checks below run on every call."""
    found, pending = [], [module]
    while pending:
        found.append(pending.pop())
        pending += [child for child in found[-1]._modules.values() if child is not None]
    return found


def weights_version(backend: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer of `backend` is replaced, moved or modified in place."""
    return tuple((tensor.data_ptr(), tensor._version) for module in submodules(backend)
                 for tensor in chain(module._parameters.values(), module._buffers.values()) if tensor is not None)


def inference_path_applies(backend: nn.Module, features: torch.Tensor) -> bool:
    """Whether `backend(features)` may take this path: every module in eval mode and without forward hooks (this path
    calls none of them), no autograd, CPU, no autocast (whose casts follow the modules), and not being traced or
    exported (graphs keep the plain convolutions, which ONNX Runtime fuses itself)."""
    return (
        not any(module.training or module._forward_hooks or module._forward_pre_hooks for module in submodules(backend))
        and not torch.is_grad_enabled()
        and features.device.type == "cpu"
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
        and not torch.jit.is_tracing()
        and not torch.onnx.is_in_onnx_export()
    )


@dataclass(frozen=True)
class Workspace:
    """The scratch tensors of one forward, reused by every block so each stage writes into memory that is already
    mapped and in cache (a fresh tensor per operation costs more than the arithmetic at these sizes).

    `expanded` `(batch, s2 * w, frames)`: the block's 1x1 expansion, whose group `i` is replaced by the hierarchy's
    output `i` once read, so it is also the input of the block's last 1x1 convolution; `stack` `(s2, batch, w,
    frames + 2p)`: the hierarchy's stack, zero outside the frames; `stage` `(s2 * batch, w, frames)`: a hierarchy
    stage's convolution; `slice_sum` `(1, batch * w * (frames + 2p))`: a Nes2Net-X slice sum; `block_in`, `block_out`
    `(batch, C, frames)`: a block's input and output.
    """

    expanded: torch.Tensor
    stack: torch.Tensor
    stage: torch.Tensor
    slice_sum: torch.Tensor
    block_in: torch.Tensor
    block_out: torch.Tensor

    @classmethod
    def for_input(cls, backend: nn.Module, weights: InferenceWeights, features: torch.Tensor) -> "Workspace":
        batch, frames, _ = features.shape
        block = backend.blocks[0]
        groups, width, channels = block.num_transformed + 1, block.width, backend.group_channels
        padding = weights.blocks[0].hierarchy[0].padding
        return cls(
            expanded=features.new_empty(batch, groups * width, frames),
            stack=features.new_zeros(groups, batch, width, frames + 2 * padding),
            stage=features.new_empty(groups * batch, width, frames),
            slice_sum=features.new_empty(1, batch * width * (frames + 2 * padding)),
            block_in=features.new_empty(batch, channels, frames),
            block_out=features.new_empty(batch, channels, frames),
        )


def hierarchy_(weights: BlockWeights, workspace: Workspace, frame_weights: torch.Tensor | None) -> None:
    """The block's hierarchy over the groups of `workspace.expanded` `(batch, s2 * w, frames)`, in place: output `i`
    replaces group `i`, the last group stays."""
    num_groups, batch, width, padded_frames = workspace.stack.shape
    padding = weights.hierarchy[0].padding
    frames = padded_frames - 2 * padding
    groups = workspace.expanded.view(batch, num_groups, width, frames)
    inside = workspace.stack[..., padding:padding + frames]
    for index, stage in enumerate(weights.hierarchy):
        if weights.slice_weights is None:  # Nes2Net: output i = conv(output i-1 + g_i), in the first slice
            slices = 1
            if index == 0:
                inside[0].copy_(groups[:, 0])
            else:
                torch.add(groups[:, index - 1], groups[:, index], out=inside[0])
        else:  # Nes2Net-X: the last group and the stage outputs so far, then g_i; every slice through the same conv
            slices = index + 2
            if index == 0:
                inside[0].copy_(groups[:, num_groups - 1])
            inside[slices - 1].copy_(groups[:, index])
        if frame_weights is not None:
            inside[:slices].mul_(frame_weights)
        target = groups[:, index] if weights.slice_weights is None else inside[:slices].flatten(0, 1)
        run_stage(stage, workspace.stack[:slices].flatten(0, 1), workspace.stage[:slices * batch], target)
        if weights.slice_weights is not None:
            torch.mm(weights.slice_weights[index], workspace.stack[:slices].view(slices, -1), out=workspace.slice_sum)
            groups[:, index].copy_(workspace.slice_sum.view(batch, width, padded_frames)[..., padding:padding + frames])


def block_forward(
    weights: BlockWeights, hidden_states: torch.Tensor, workspace: Workspace, frame_mask: torch.Tensor | None
) -> torch.Tensor:
    """One inner block (`Nes2NetBottleneck.forward`): `(batch, C, frames)` -> `workspace.block_out`, the same shape."""
    frame_weights = None if frame_mask is None else frame_mask[:, None, :].to(hidden_states.dtype)
    run_stage(weights.conv_in, hidden_states, workspace.expanded, workspace.expanded)
    hierarchy_(weights, workspace, frame_weights)
    hidden = run_stage(weights.conv_out, workspace.expanded, workspace.block_out, workspace.block_out)
    summary = masked_time_mean(hidden, frame_mask, dim=2).squeeze(2)
    gate = torch.sigmoid(F.linear(F.linear(summary, *weights.squeeze).relu_(), *weights.excite))
    return torch.addcmul(hidden_states, hidden, gate[:, :, None], out=hidden)


def attentive_statistics_(weights: InferenceWeights, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None,
                          chunk_elements: int = 1 << 18) -> torch.Tensor:
    """`Nes2NetAttentiveStatsPooling.forward`: `(batch, D, frames)` -> `(batch, 2 * D)`. The attention's second 1x1
    convolution is a matrix product over all frames of the batch, for a few hundred channels at a time (about
    `chunk_elements` scores, which stay in cache), and the softmax and both weighted sums run in place in them."""
    (weight_in, bias_in), (weight_out, bias_out) = weights.attention
    batch, channels, frames = hidden_states.shape
    attention_in = torch.baddbmm(bias_in[:, None].expand(batch, -1, frames), weight_in.expand(batch, -1, -1),
                                 hidden_states).tanh_()
    attention_in = attention_in.transpose(0, 1).reshape(-1, batch * frames)
    features = hidden_states.transpose(0, 1)  # (D, batch, frames)
    statistics = hidden_states.new_empty(2, channels, batch)
    rows = min(channels, max(1, chunk_elements // (batch * frames)))
    buffer = hidden_states.new_empty(rows, batch * frames)
    for start in range(0, channels, rows):
        part = slice(start, min(start + rows, channels))
        scores = torch.addmm(bias_out[part, None], weight_out[part], attention_in, out=buffer[:part.stop - start])
        scores = scores.view(-1, batch, frames)
        if frame_mask is not None:
            scores.masked_fill_(~frame_mask, torch.finfo(scores.dtype).min)
        attention = torch.ops.aten._softmax.out(scores, 2, False, out=scores)  # in place, a row at a time
        mean = torch.sum(attention.mul_(features[part]), dim=2, out=statistics[0, part])
        torch.sum(attention.mul_(features[part]), dim=2, out=statistics[1, part]).sub_(mean**2)
    statistics[1].clamp_(min=1e-10).sqrt_()
    return statistics.permute(2, 0, 1).reshape(batch, 2 * channels)


def backend_forward(
    backend: nn.Module, weights: InferenceWeights, features: torch.Tensor, frame_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`Nes2NetBackend.forward` on this path: `(batch, frames, D)` -> trunk `(batch, frames, D)`, pooled embedding."""
    batch, frames, _ = features.shape
    workspace = Workspace.for_input(backend, weights, features)
    groups = features.transpose(1, 2).split(backend.group_channels, dim=1)
    trunk = features.new_empty(batch, features.shape[2], frames)
    parts = trunk.split(backend.group_channels, dim=1)
    hidden = groups[0]
    for index, block_weights in enumerate(weights.blocks):
        if index > 0:
            hidden = torch.add(parts[index - 1], groups[index], out=workspace.block_in)
        output = block_forward(block_weights, hidden, workspace, frame_mask)
        activation_norm(output, *weights.block_norms[index], weights.selu, out=parts[index])
    parts[-1].copy_(groups[-1])
    scale, shift = weights.norm
    affine(trunk, scale, shift, out=trunk)
    if weights.selu:
        F.selu(trunk, inplace=True)
    else:
        trunk.relu_()
    pooled = (backend.pooling(trunk, frame_mask) if weights.attention is None
              else attentive_statistics_(weights, trunk, frame_mask))
    return trunk.transpose(1, 2), pooled
