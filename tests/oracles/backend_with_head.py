"""The package's side of the back-end oracle: `BackendWithHead` is the paper's `Nested_Res2Net_TDNN`
(`tests/oracles/nes2net.py`) as this package splits it, loaded from the authors' layout by the checkpoint converter.
Tests and `benchmarks/backend.py` compare the two."""

from __future__ import annotations

import torch

from modeling_nes2net import Nes2NetBackend, Nes2NetConfig
from modeling_nes2net.convert import OriginalCheckpoint, convert_state_dict
from modeling_nes2net.modeling_nes2net import Nes2NetSliceSum
from modeling_nes2net.original_layout import FRONTEND_PREFIX

MODEL_PREFIX = "nes2net."  # `Nes2NetForAudioClassification` holds the back-end as `nes2net.backend`


class BackendWithHead(torch.nn.Module):
    """`Nes2NetBackend`, then the classifier: features `(batch, frames, D)` -> logits `(batch, num_labels)`."""

    def __init__(self, config: Nes2NetConfig):
        super().__init__()
        self.backend = Nes2NetBackend(config)
        pooled_size = 2 * config.feature_size if config.pooling == "astp" else config.feature_size
        self.classifier = torch.nn.Linear(pooled_size, config.num_labels)
        for module in self.modules():  # `torch.empty` until a `PreTrainedModel` initialises it: do what it does
            if isinstance(module, Nes2NetSliceSum):
                torch.nn.init.constant_(module.weight, 1.0 / module.weight.numel())

    def load_original(self, original: dict[str, torch.Tensor]) -> None:
        """Load the authors' back-end state dict (keys without `Nested_Res2Net_TDNN.`) through
        `convert_state_dict`, which refuses unknown, missing and misshapen tensors."""
        expected = {(MODEL_PREFIX + key if key.startswith("backend.") else key): tensor
                    for key, tensor in self.state_dict().items()}
        converted, _ = convert_state_dict(OriginalCheckpoint({}, {}, original, FRONTEND_PREFIX), expected)
        self.load_state_dict({key.removeprefix(MODEL_PREFIX): tensor for key, tensor in converted.items()}, strict=True)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.backend(features)[1])
