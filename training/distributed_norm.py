"""BatchNorm over the global batch when training with several processes, on any device (gloo on CPU included).

Under DDP each process normalises with the statistics of its own slice of the batch, so N processes with B/N
trials each do not compute what one process with B trials does. `GlobalBatchNorm` gathers every process's
per-channel count, mean and sum of squared deviations (one all-reduce per layer, one more for its gradient), combines
them exactly (Chan et al.'s parallel variance), normalises with the global statistics and updates the running
statistics as `nn.BatchNorm*d` would on the whole batch. Gradients flow back through the all-reduce, so the
summed gradients equal those of the single-process batch. (`torch.nn.SyncBatchNorm` does the same but only on
accelerators; this one runs everywhere, which lets CPU tests check multi-process training against one process.)
Outside training, or without several processes, it is plain BatchNorm.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def _is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _SumOverProcesses(torch.autograd.Function):
    """All-reduce (sum) whose backward is the all-reduce of the incoming gradients."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
        gradient = gradient.clone()
        dist.all_reduce(gradient)
        return gradient


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm of any rank >= 2 input `(batch, channels, ...)` with statistics over every process's batch."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected an input of shape (batch, channels, ...), got {tuple(input.shape)}")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and _is_distributed()):
            return super().forward(input)
        self._check_input_dim(input)
        hidden = input.float()  # statistics in float32 under mixed precision, as cuDNN's BatchNorm keeps them
        channels = hidden.shape[1]
        dims = [0, *range(2, hidden.dim())]
        shape = [1, channels] + [1] * (hidden.dim() - 2)
        count = hidden.numel() // channels
        local_mean = hidden.mean(dims)
        local_m2 = ((hidden - local_mean.view(shape)) ** 2).sum(dims)
        own = torch.cat([local_mean, local_m2, local_mean.new_full((1,), float(count))])
        rows = [own if rank == dist.get_rank() else torch.zeros_like(own) for rank in range(dist.get_world_size())]
        rows = _SumOverProcesses.apply(torch.stack(rows))  # (world, 2C + 1): every process's statistics
        means, m2s, counts = rows[:, :channels], rows[:, channels : 2 * channels], rows[:, -1:]
        total = counts.sum()
        mean = (counts * means).sum(0) / total
        variance = (m2s.sum(0) + (counts * (means - mean) ** 2).sum(0)) / total
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), variance.detach() * total / (total - 1).clamp(min=1))
        output = (hidden - mean.view(shape)) * torch.rsqrt(variance.view(shape) + self.eps)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        return output.to(input.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, unbiased_variance: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        factor = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked.item()
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_(unbiased_variance.to(self.running_var.dtype), factor)


def convert_to_global_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every `nn.BatchNorm1d/2d/3d` in `module` by a `GlobalBatchNorm` holding the same parameters and
    buffers (state-dict keys unchanged); returns the module (a new one if `module` itself is a BatchNorm)."""
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        converted = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
            device=module.running_mean.device if module.running_mean is not None else None,
        )
        if module.affine:
            converted.weight, converted.bias = module.weight, module.bias
        if module.track_running_stats:
            converted.running_mean, converted.running_var = module.running_mean, module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        module.add_module(name, convert_to_global_batch_norm(child))
    return module
