"""A model's architecture in words, read from its config: the one description that the model cards, the Space and the
ONNX export's README give (the back-end of the paper, Liu et al., Nes2Net, IEEE T-IFS 2025, Section III; its
front-end; how the front-end's hidden states are merged).

```python
str(describe_architecture(config))
# 'Nes2Net-X back-end on the Whisper encoder (4 layers, 384 dimensions), frozen, reading the last hidden layer'
```
"""

from __future__ import annotations

from dataclasses import dataclass

from .configuration_nes2net import Nes2NetConfig
from .frontends_nes2net import describe_frontend

BACKEND_NAMES = {"nes2net": "Nes2Net", "nes2net-x": "Nes2Net-X"}
LAYER_MERGE_DESCRIPTIONS = {
    "last": "the last hidden layer",
    "weighted_sum": "a softmax-weighted sum of all {layers} hidden states",
    "sea": "squeeze-excitation aggregation (SEA) of all {layers} hidden states",
    "attm": "an attentive merge (AttM) of all {layers} hidden states",
}


@dataclass(frozen=True)
class ArchitectureDescription:
    """The parts of a model in words; `str()` joins them into one phrase."""

    backend: str
    """`Nes2Net` or `Nes2Net-X`, with `SeLU` for the SeLU activation."""
    backend_details: str
    """The back-end's sizes: ratios, kernel, dilation, pooling."""
    frontend: str
    """The front-end (`describe_frontend`), `, frozen` when it is not trained."""
    merge: str
    """What the back-end reads of the front-end's hidden states."""

    def __str__(self) -> str:
        return f"{self.backend} back-end on {self.frontend}, reading {self.merge}"


def describe_architecture(config: Nes2NetConfig) -> ArchitectureDescription:
    """The model of `config` in words."""
    backend = BACKEND_NAMES[config.backend_variant] + (" SeLU" if config.activation == "selu" else "")
    details = (f"outer ratio {config.outer_ratio}, inner ratio {config.inner_ratio}, SE ratio {config.se_ratio}, "
               f"kernel {config.kernel_size}, dilation {config.dilation}, {config.pooling} pooling")
    frontend = describe_frontend(config) + (", frozen" if config.freeze_frontend else "")
    merge = LAYER_MERGE_DESCRIPTIONS[config.layer_merge].format(layers=config.num_frontend_layers)
    if config.layer_statistics:
        over = (f"the {config.layer_statistics_window} frames around each frame, averaged over frames"
                if config.layer_statistics_window else "frames")
        merge += f", with a linear head on each one's mean and standard deviation over {over}"
    if config.frame_statistics_window:
        merge += (f", and a frame head on each one's mean and standard deviation over the "
                  f"{config.frame_statistics_window} frames around every frame")
    return ArchitectureDescription(backend, details, frontend, merge)
