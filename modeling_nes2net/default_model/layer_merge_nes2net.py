"""Merges of a speech foundation model's hidden states into one feature sequence for the Nes2Net back-end.

Each merge takes the L hidden states of the front-end, each `(batch_size, frames, hidden_size)`, and an optional
`frame_mask` `(batch_size, frames)` (True on real frames), and returns `(batch_size, frames, hidden_size)`.
"""

from __future__ import annotations

import torch
from torch import nn

from .configuration_nes2net import Nes2NetConfig


def masked_time_mean(hidden_states: torch.Tensor, frame_mask: torch.Tensor | None, dim: int) -> torch.Tensor:
    """Mean over the frame axis `dim` (kept), counting only the frames where `frame_mask` is True.

    `frame_mask` is `(batch_size, frames)`; it is broadcast to `hidden_states` with frames at `dim`.
    """
    if frame_mask is None:
        return hidden_states.mean(dim=dim, keepdim=True)
    shape = [1] * hidden_states.dim()
    shape[0], shape[dim] = frame_mask.shape
    weights = frame_mask.view(shape).to(hidden_states.dtype)
    return (hidden_states * weights).sum(dim=dim, keepdim=True) / weights.sum(dim=dim, keepdim=True)


class Nes2NetWeightedSumMerge(nn.Module):
    """Softmax-weighted sum of the layers, with one learnable weight per layer (initialised to ones)."""

    def __init__(self, config: Nes2NetConfig):
        super().__init__()
        self.layer_weights = nn.Parameter(torch.empty(config.num_frontend_layers))

    def forward(self, hidden_states: tuple[torch.Tensor, ...], frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        stacked = torch.stack(hidden_states, dim=0)  # (layers, batch, frames, hidden)
        weights = self.layer_weights.softmax(dim=-1).to(stacked.dtype)
        return torch.tensordot(weights, stacked, dims=1)


class Nes2NetSqueezeExcitationMerge(nn.Module):
    """SEA: squeeze each layer to its mean over frames and channels, excite through a 2-layer bottleneck
    `L -> L // 3 -> L` (no biases, ReLU then sigmoid), and sum the layers weighted by the gates."""

    def __init__(self, config: Nes2NetConfig):
        super().__init__()
        num_layers = config.num_frontend_layers
        self.squeeze = nn.Linear(num_layers, num_layers // 3, bias=False)
        self.activation = nn.ReLU()
        self.excite = nn.Linear(num_layers // 3, num_layers, bias=False)

    def forward(self, hidden_states: tuple[torch.Tensor, ...], frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        stacked = torch.stack(hidden_states, dim=1)  # (batch, layers, frames, hidden)
        mask = None if frame_mask is None else frame_mask[:, None, :].expand(-1, stacked.shape[1], -1)
        summary = masked_time_mean(stacked.flatten(0, 1), None if mask is None else mask.flatten(0, 1), dim=1)
        summary = summary.mean(dim=-1).view(stacked.shape[0], stacked.shape[1])  # (batch, layers)
        gates = torch.sigmoid(self.excite(self.activation(self.squeeze(summary))))
        return torch.einsum("bl,bltd->btd", gates, stacked)


class Nes2NetAttentiveMerge(nn.Module):
    """AttM: a gate per layer from the time-averaged layers (`(hidden -> 1)`, SiLU, `L -> L // 2`, SiLU, `L // 2 -> L`,
    sigmoid), then the gated layers concatenated per frame (channel-major: index `d * L + l`) and projected back to
    `hidden_size` by a linear layer."""

    def __init__(self, config: Nes2NetConfig):
        super().__init__()
        num_layers, hidden_size = config.num_frontend_layers, config.feature_size
        self.channel_weight = nn.Parameter(torch.empty(hidden_size, 1))
        self.layer_squeeze = nn.Parameter(torch.empty(num_layers, num_layers // 2))
        self.layer_excite = nn.Parameter(torch.empty(num_layers // 2, num_layers))
        self.activation = nn.SiLU()
        self.projection = nn.Linear(num_layers * hidden_size, hidden_size)

    def forward(self, hidden_states: tuple[torch.Tensor, ...], frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        stacked = torch.stack(hidden_states, dim=1)  # (batch, layers, frames, hidden)
        batch_size, num_layers, frames, hidden_size = stacked.shape
        mask = None if frame_mask is None else frame_mask[:, None, :].expand(-1, num_layers, -1).flatten(0, 1)
        summary = masked_time_mean(stacked.flatten(0, 1), mask, dim=1).view(batch_size, num_layers, hidden_size)
        gates = self.activation(summary @ self.channel_weight).squeeze(-1)  # (batch, layers)
        gates = torch.sigmoid(self.activation(gates @ self.layer_squeeze) @ self.layer_excite)
        gated = stacked * gates[:, :, None, None]
        concatenated = gated.permute(0, 2, 3, 1).reshape(batch_size, frames, hidden_size * num_layers)
        return self.projection(concatenated)


LAYER_MERGES: dict[str, type[nn.Module]] = {
    "weighted_sum": Nes2NetWeightedSumMerge,
    "sea": Nes2NetSqueezeExcitationMerge,
    "attm": Nes2NetAttentiveMerge,
}


def build_layer_merge(config: Nes2NetConfig) -> nn.Module | None:
    """The merge module named by `config.layer_merge`, or None for `"last"` (the last hidden state as is)."""
    if config.layer_merge == "last":
        return None
    return LAYER_MERGES[config.layer_merge](config)
