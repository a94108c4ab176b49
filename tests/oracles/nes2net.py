"""A plain, line-by-line transcription of the Nes2Net back-end as the paper describes it (NES2NET.md section 1).

It keeps the attribute names of the authors' released checkpoints (`Build_in_Res2Nets`, `bns`, `bn`, `fc`, ...)
so their state dicts load into it as they are, and follows the paper's loops literally: Nes2Net-X stacks groups on a
trailing axis and runs `Conv2d` with a `(k, 1)` kernel. It is the baseline of `benchmarks/backend.py` and the
independent reference the tests compare the package's model and checkpoint converter against.
Input `(batch, D, frames)`, output logits `(batch, n_logits)`.
"""

from __future__ import annotations

import torch
from torch import nn


class ReferenceSE(nn.Module):
    def __init__(self, channels: int, ratio: int, min_channels: int = 1):
        super().__init__()
        bottleneck = max(channels // ratio, min_channels)
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool1d(1),
            nn.Conv1d(channels, bottleneck, kernel_size=1),
            nn.ReLU(),
            nn.Conv1d(bottleneck, channels, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return x * self.se(x)


class ReferenceBlock(nn.Module):
    """Res2Net bottleneck (variant "nes2net") or its stacked version (variant "nes2net-x")."""

    def __init__(self, channels, scale, kernel_size, dilation, se_ratio, variant, activation, se_min_channels=1):
        super().__init__()
        self.variant = variant
        self.width = channels // scale
        self.nums = scale - 1
        pad = (kernel_size // 2) * dilation
        self.conv1 = nn.Conv1d(channels, self.width * scale, kernel_size=1)
        self.bn1 = nn.BatchNorm1d(self.width * scale)
        if variant == "nes2net-x":
            self.convs = nn.ModuleList(
                nn.Conv2d(self.width, self.width, (kernel_size, 1), dilation=(dilation, 1), padding=(pad, 0))
                for _ in range(self.nums)
            )
            self.bns = nn.ModuleList(nn.BatchNorm2d(self.width) for _ in range(self.nums))
            self.weighted_sum = nn.ParameterList(
                nn.Parameter(torch.ones(1, 1, 1, i + 2) / (i + 2)) for i in range(self.nums)
            )
        else:
            self.convs = nn.ModuleList(
                nn.Conv1d(self.width, self.width, kernel_size, dilation=dilation, padding=pad) for _ in range(self.nums)
            )
            self.bns = nn.ModuleList(nn.BatchNorm1d(self.width) for _ in range(self.nums))
        self.conv3 = nn.Conv1d(self.width * scale, channels, kernel_size=1)
        self.bn3 = nn.BatchNorm1d(channels)
        self.relu = nn.SELU() if activation == "selu" else nn.ReLU()
        self.se = ReferenceSE(channels, se_ratio, se_min_channels)

    def forward(self, x):
        residual = x
        out = self.bn1(self.relu(self.conv1(x)))
        spx = torch.split(out, self.width, 1)
        outputs = []
        if self.variant == "nes2net-x":
            sp = spx[self.nums].unsqueeze(-1)
            for i in range(self.nums):
                sp = torch.cat((sp, spx[i].unsqueeze(-1)), -1)
                sp = self.bns[i](self.relu(self.convs[i](sp)))
                outputs.append(torch.sum(sp * self.weighted_sum[i], dim=-1))
        else:
            for i in range(self.nums):
                sp = spx[i] if i == 0 else sp + spx[i]
                sp = self.bns[i](self.relu(self.convs[i](sp)))
                outputs.append(sp)
        out = torch.cat(outputs + [spx[self.nums]], 1)
        out = self.bn3(self.relu(self.conv3(out)))
        return self.se(out) + residual


class ReferenceASTP(nn.Module):
    def __init__(self, channels: int, bottleneck: int = 128):
        super().__init__()
        self.linear1 = nn.Conv1d(channels, bottleneck, kernel_size=1)
        self.linear2 = nn.Conv1d(bottleneck, channels, kernel_size=1)

    def forward(self, x):
        alpha = torch.softmax(self.linear2(torch.tanh(self.linear1(x))), dim=2)
        mean = torch.sum(alpha * x, dim=2)
        var = torch.sum(alpha * x**2, dim=2) - mean**2
        return torch.cat([mean, torch.sqrt(var.clamp(min=1e-10))], dim=1)


class ReferenceNes2Net(nn.Module):
    def __init__(
        self,
        input_channels=1024,
        outer=8,
        inner=8,
        n_logits=2,
        dilation=2,
        se_ratio=1,
        pooling="mean",
        variant="nes2net-x",
        activation="relu",
        se_min_channels=1,
        kernel_size=3,
    ):
        super().__init__()
        self.outer = outer
        self.C = input_channels // outer
        self.Build_in_Res2Nets = nn.ModuleList(
            ReferenceBlock(self.C, inner, kernel_size, dilation, se_ratio, variant, activation, se_min_channels)
            for _ in range(outer - 1)
        )
        self.bns = nn.ModuleList(nn.BatchNorm1d(self.C) for _ in range(outer - 1))
        self.bn = nn.BatchNorm1d(input_channels)
        self.relu = nn.SELU() if activation == "selu" else nn.ReLU()
        self.pool_func = pooling
        if pooling == "astp":
            self.pooling = ReferenceASTP(input_channels)
            self.fc = nn.Linear(2 * input_channels, n_logits)
        else:
            self.fc = nn.Linear(input_channels, n_logits)

    def forward(self, x):
        spx = torch.split(x, self.C, 1)
        outputs = []
        for i in range(self.outer - 1):
            sp = spx[i] if i == 0 else sp + spx[i]
            sp = self.bns[i](self.relu(self.Build_in_Res2Nets[i](sp)))
            outputs.append(sp)
        out = self.relu(self.bn(torch.cat(outputs + [spx[-1]], 1)))
        out = torch.mean(out, dim=-1) if self.pool_func == "mean" else self.pooling(out)
        return self.fc(out)
