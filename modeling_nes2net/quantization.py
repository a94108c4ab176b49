"""The opt-in fast path of PyTorch scoring: bfloat16 weights, or dynamic int8 quantisation of the linear layers.

An ONNX export has its own reduced-precision files (`onnx_export.VARIANTS`), chosen with `runtime="onnx"`.
"""

from __future__ import annotations

import warnings

import torch

QUANTIZATIONS: tuple[str, ...] = ("int8", "bf16")


def quantize_for_inference(model: torch.nn.Module, quantize: str | None, device: torch.device) -> torch.nn.Module:
    """The opt-in fast path, applied in place. `"bf16"`: bfloat16 weights and inputs; `"int8"`: dynamic int8
    quantisation of every `nn.Linear` (CPU only). On an XLS-R sized model (`benchmarks/detect.py`, a CPU with
    AVX512-BF16) both run 2.3-4x faster than float32 and bf16 moves the bona fide probability about 6x less
    (max 0.002 vs 0.014); without native bf16 instructions bf16 is emulated and slow, and int8 is the choice.
    `"fp16"` is the half-precision file of an ONNX export (`runtime="onnx"`) only."""
    if quantize is None:
        return model
    if quantize == "fp16":
        raise ValueError("fp16 scores an ONNX export's model.fp16.onnx (--runtime onnx); with PyTorch use bf16")
    if quantize == "int8":
        if device.type != "cpu":
            raise ValueError("int8 dynamic quantisation runs on the CPU only; use --device cpu or --quantize bf16")
        with warnings.catch_warnings():  # torch.ao's eager quantisation warns that it moves to torchao
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    if quantize == "bf16":
        return model.to(torch.bfloat16)
    raise ValueError(f"unknown quantization {quantize!r}; choose from {QUANTIZATIONS}")


def inference_dtype(quantize: str | None) -> torch.dtype:
    """The dtype of the model's inputs under `quantize`: bfloat16 for `"bf16"`, else float32."""
    return torch.bfloat16 if quantize == "bf16" else torch.float32
