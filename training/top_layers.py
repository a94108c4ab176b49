"""Fine-tuning the top layers of a frozen Whisper encoder from its cached states: the "frozen is a choice" candidate of
`benchmarks/generalisation.py`.

The state cache (`training.state_cache`) holds every hidden state of a clip: the input of each encoder layer and the
final layer norm's output. The layers below the top `layers` see none of the fine-tuning, so their cached states are
exact, and the top layers can be trained on them without audio: for each clip, the input of the first tuned layer is
run through trainable copies of the top layers (and the final layer norm), and a linear head on the mean and standard
deviation of every layer's states (`layer_statistics`, the probe of `training.statistics_head`) is trained with them.
The head starts as the logistic probe fitted on the frozen states, so training starts from the baseline it is compared
with. Whole clips, one at a time (no padding), so attention spans the whole clip as it does when the cache encodes it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from modeling_nes2net.modeling_nes2net import layer_statistics
from training.cross_validation import Candidate, Scorer
from training.frozen_frontend import FrontendCache
from training.llr_fitting import fit_llr_fusion
from training.state_cache import in_views
from training.statistics_head import fit_probe


class TopLayers(nn.Module):
    """Trainable copies of the top `layers` layers of `encoder` and its final layer norm: cached states of one clip
    `(N + 1, frames, D)` -> the same states with the top `layers` recomputed from the input of the first of them."""

    def __init__(self, encoder: WhisperEncoder, layers: int):
        super().__init__()
        total = len(encoder.layers)
        if not 1 <= layers <= total:
            raise ValueError(f"layers must be 1..{total} (the encoder's layers), got {layers}")
        self.first = total - layers
        self.layers = nn.ModuleList(copy.deepcopy(layer).float() for layer in encoder.layers[self.first:])
        self.layer_norm = copy.deepcopy(encoder.layer_norm).float()
        self.requires_grad_(True)  # the copies of a frozen front-end's layers are frozen too

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hidden = states[self.first].float()[None]
        recomputed = []
        for index, layer in enumerate(self.layers):
            hidden = layer(hidden, None)
            recomputed.append(self.layer_norm(hidden) if index == len(self.layers) - 1 else hidden)
        return tuple(state.float()[None] for state in states[: self.first + 1]) + tuple(recomputed)


def tuned_top_layers(encoder: WhisperEncoder, layers: int = 2, epochs: int = 1, lr: float = 2e-5,
                     batch_size: int = 8, inverse_strength: float = 0.01, views: Sequence[str] = ("clean",),
                     seed: int = 0, device: str = "cpu") -> Candidate:
    """A candidate (`training.cross_validation`): on the training trials of `views`, the logistic probe of the frozen
    states (`fit_probe`, L2 `C = inverse_strength`) becomes the head of `TopLayers`, and both are trained with Adam
    (`lr`, `batch_size` clips a step, `epochs` passes, class-balanced binary cross-entropy); the head's log-odds are
    then calibrated on the calibration split. Training and scoring run on `device`."""

    def fit(train: FrontendCache, calibration: FrontendCache) -> Scorer:
        train = in_views(train, views)
        weights, bias = fit_probe(train, inverse_strength)
        generator = torch.Generator().manual_seed(seed)
        top = TopLayers(encoder, layers).train().to(device)
        head = nn.Linear(len(weights), 1).to(device)
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(weights)[None])
            head.bias.fill_(bias)
        optimiser = torch.optim.Adam([*top.parameters(), *head.parameters()], lr=lr)
        labels = torch.from_numpy(train.labels.astype(np.float32)).to(device)
        class_weights = {label: len(labels) / (2 * max(int((labels == label).sum()), 1)) for label in (0.0, 1.0)}

        def log_odds(state: torch.Tensor) -> torch.Tensor:
            return head(layer_statistics(top(state.to(device)), None))[0, 0]

        with tqdm(total=epochs * len(train), desc=f"tuning the top {layers} layers", unit="clip", leave=False) as bar:
            for _ in range(epochs):
                order = torch.randperm(len(train), generator=generator).tolist()
                for start in range(0, len(order), batch_size):
                    optimiser.zero_grad()
                    for index in order[start : start + batch_size]:
                        label = labels[index]
                        loss = nn.functional.binary_cross_entropy_with_logits(log_odds(train.states[index]), label)
                        (loss * class_weights[float(label)] / batch_size).backward()
                    optimiser.step()
                    bar.update(len(order[start : start + batch_size]))
        top.eval()

        @torch.inference_mode()
        def raw(cache: FrontendCache) -> np.ndarray:
            return np.array([float(log_odds(state)) for state in cache.states])

        (scale,), offset = fit_llr_fusion(raw(calibration)[:, None], calibration.labels)
        return lambda cache: scale * raw(cache) + offset

    return fit
