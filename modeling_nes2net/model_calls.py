"""What the scoring path calls to run a model on a batch: a `ModelCall` takes `(input_values (batch, samples) float32,
attention_mask (batch, samples) int64 or None)` and returns `(logits (batch, num_labels) float32, frame log-odds or
None)`, numpy in and out; the second item is, for a model with a frame head, each row's `(frames,)` log-odds over its
real frames. `TorchModelCall` runs a torch model; an ONNX Runtime session (`onnx_runtime`) plugs in with the same
signature. Below both `scorer` (windows of audio) and `state_windows` (windows of the front-end's states)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch

from .decision import log_odds

ModelOutput = tuple[np.ndarray, "list[np.ndarray] | None"]
ModelCall = Callable[[np.ndarray, "np.ndarray | None"], ModelOutput]


class TorchModelCall:
    """A `ModelCall` running a torch model on `device` with inputs in `dtype`, inside `autocast()` (for instance
    Accelerate's mixed precision)."""

    def __init__(
        self,
        model: torch.nn.Module,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> None:
        self.model, self.device, self.dtype, self.autocast = model, device, dtype, autocast

    @torch.inference_mode()
    def __call__(self, input_values: np.ndarray, attention_mask: np.ndarray | None) -> ModelOutput:
        values = torch.from_numpy(input_values).to(self.device, self.dtype)
        mask = None if attention_mask is None else torch.from_numpy(attention_mask).to(self.device)
        with self.autocast():
            output = self.model(input_values=values, attention_mask=mask)
        logits = output.logits.float().cpu().numpy()
        frame_logits = getattr(output, "frame_logits", None)
        if frame_logits is None:
            return logits, None
        lengths = torch.full((len(values),), values.shape[1]) if mask is None else mask.sum(dim=-1).cpu()
        return logits, frame_log_odds(frame_logits, self.model.frame_lengths(lengths).tolist())


def frame_log_odds(frame_logits: torch.Tensor, frames: list[int]) -> list[np.ndarray]:
    """`(batch, frames, num_labels)` frame logits -> each row's log-odds over its first `frames[row]` (real) frames."""
    frame_odds = log_odds(frame_logits.float().flatten(0, 1)).unflatten(0, frame_logits.shape[:2])
    return [row[:count].cpu().numpy() for row, count in zip(frame_odds, frames)]
