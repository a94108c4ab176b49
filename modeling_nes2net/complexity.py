"""Parameter and multiply-accumulate (MAC) counts of the Nes2Net back-end, counted the way `ptflops` counts them.

`ptflops` (the tool behind the paper's figures) hooks modules: a convolution costs `kernel * in/groups * out` per
output position plus one per output element for its bias; a linear layer `in * out` per row plus `out` for its bias;
batch norm one (two if affine) per input element; ReLU one per output element and adaptive average pooling one per
input element -- each of these two counted twice, because ptflops (pytorch backend, `count_functional=True`, its
default) hooks both the module and the `F.relu` / `F.adaptive_avg_pool1d` call inside it. Means, sums, softmax,
sigmoid, SELU and element-wise products cost nothing. This module applies the same rules to the package's modules,
so the Nes2Net-X back-end at D = 1024 and 201 frames costs 91.80 M MACs and Nes2Net 58.40 M, as in the paper.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .configuration_nes2net import Nes2NetConfig
from .modeling_nes2net import Nes2NetBackend, Nes2NetSqueezeExcitation


def _convolution_macs(module: nn.Conv1d, inputs: tuple, output: torch.Tensor) -> int:
    positions = output.shape[0] * math.prod(output.shape[2:])
    per_position = math.prod(module.kernel_size) * module.in_channels * (module.out_channels // module.groups)
    bias = output.numel() if module.bias is not None else 0
    return per_position * positions + bias


def _linear_macs(module: nn.Linear, inputs: tuple, output: torch.Tensor) -> int:
    return inputs[0].numel() * module.out_features + (module.out_features if module.bias is not None else 0)


def _norm_macs(module: nn.BatchNorm1d, inputs: tuple, output: torch.Tensor) -> int:
    return inputs[0].numel() * (2 if module.affine else 1)


def _relu_macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    return 2 * output.numel()  # the module hook and the F.relu hook


def _average_pool_macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    return 2 * inputs[0].numel()  # the module hook and the F.adaptive_avg_pool1d hook


_RULES = {
    nn.Conv1d: _convolution_macs,
    nn.Conv2d: _convolution_macs,
    nn.Linear: _linear_macs,
    nn.BatchNorm1d: _norm_macs,
    nn.BatchNorm2d: _norm_macs,
    nn.ReLU: _relu_macs,
    nn.AdaptiveAvgPool1d: _average_pool_macs,
    # The SE time average is functional here; ptflops counts the authors' AdaptiveAvgPool1d. Its convolutions hook
    # themselves.
    Nes2NetSqueezeExcitation: _average_pool_macs,
}


def count_macs(module: nn.Module, *inputs: torch.Tensor) -> int:
    """MACs of one forward pass of `module` on `inputs`, by the ptflops rules above."""
    total = 0

    def hook(rule):
        def accumulate(submodule, hook_inputs, output):
            nonlocal total
            total += rule(submodule, hook_inputs, output)

        return accumulate

    handles = [
        submodule.register_forward_hook(hook(_RULES[type(submodule)]))
        for submodule in module.modules()
        if type(submodule) in _RULES
    ]
    try:
        with torch.no_grad():
            module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return total


def count_parameters(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def backend_complexity(config: Nes2NetConfig, frames: int = 201) -> dict[str, int]:
    """`{"parameters", "macs"}` of the back-end `config` describes with its classifier (the paper's
    `Nested_Res2Net_TDNN`), for one utterance of `frames` frames (201 frames = 64,600 samples, the paper's 4 s
    input)."""
    backend = Nes2NetBackend(config).eval()
    features = torch.zeros(1, frames, config.feature_size)
    with torch.no_grad():
        pooled = backend(features)[1]
    classifier = nn.Linear(pooled.shape[-1], config.num_labels)
    return {
        "parameters": count_parameters(backend) + count_parameters(classifier),
        "macs": count_macs(backend, features) + count_macs(classifier, pooled),
    }
