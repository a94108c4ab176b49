"""A model exported by `modeling_nes2net.onnx_export`, run by ONNX Runtime behind the scorer's model call.

`Nes2NetOnnxModel(input_values, attention_mask) -> logits` takes and returns what the PyTorch model's call does in
`Nes2NetDetector` (a `(batch, samples)` waveform batch and its mask -> `(batch, num_labels)` logits), so
`Nes2NetDetector.from_pretrained(folder, runtime="onnx")` scores through it unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .configuration_nes2net import Nes2NetConfig
from .onnx_export import ONNX_FILES, inference_session


class Nes2NetOnnxModel:
    """An exported Nes2Net graph in an onnxruntime CPU session, with the model's config.

    Args:
        path: an exported folder (its `model.onnx`, or `model.<variant>.onnx` with `variant`) or one `.onnx` file
            of such a folder (its `config.json` lies beside it).
        variant: `"fp32"` (default), `"int8"` or `"fp16"`, the file of a folder to load.
        threads: intra-op threads of the session (None: onnxruntime's default, every core).
    """

    def __init__(self, path: str | os.PathLike, variant: str = "fp32", threads: int | None = None):
        path = Path(path)
        if path.is_dir():
            if variant not in ONNX_FILES:
                raise ValueError(f"unknown ONNX variant {variant!r}; choose from {', '.join(ONNX_FILES)}")
            path = path / ONNX_FILES[variant]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such ONNX file (export one with `nes2net export onnx MODEL OUT`)")
        if not (path.parent / "config.json").is_file():
            raise FileNotFoundError(f"{path.parent}: no config.json beside {path.name}; not an exported Nes2Net folder")
        self.path = path
        self.config = Nes2NetConfig.from_pretrained(path.parent)
        try:
            self.session = inference_session(path, threads)
        except Exception as error:  # onnxruntime's InvalidProtobuf, Fail, ...: not Python's error classes
            reason = " ".join(str(error).split()).rsplit("failed:", 1)[-1].strip()
            raise ValueError(f"{path}: not a loadable ONNX model, damaged or truncated? ({reason[:200]})") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        if "nes2net_min_samples" not in metadata:
            raise ValueError(f"{path}: not a Nes2Net export (no nes2net_min_samples in its metadata)")
        self.min_samples = int(metadata["nes2net_min_samples"])

    def __call__(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`input_values` `(batch, samples)` float, `attention_mask` `(batch, samples)` or None (all real) ->
        logits `(batch, num_labels)` float32."""
        values = input_values.detach().float().cpu().numpy()
        mask = np.ones(values.shape, np.int64) if attention_mask is None else attention_mask.cpu().numpy()
        (logits,) = self.session.run(["logits"], {"input_values": values, "attention_mask": mask.astype(np.int64)})
        return torch.from_numpy(logits)

    def score(self, input_values: np.ndarray, attention_mask: np.ndarray | None) -> tuple[np.ndarray, None]:
        """A `model_calls.ModelCall`: numpy waveforms `(batch, samples)` and mask -> logits `(batch, num_labels)` and no
        frame scores (the export has the utterance head only)."""
        mask = None if attention_mask is None else torch.from_numpy(attention_mask)
        return self(torch.from_numpy(input_values), mask).numpy(), None
