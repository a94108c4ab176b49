"""Fine-tuning the top encoder layers from cached states: before any training, the recomputed states are the cached
ones, and the candidate's training moves the tuned layers while the layers below stay as cached."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from training.frozen_frontend import FrontendCache
from training.state_cache import VIEW_COLUMN
from training.top_layers import TopLayers, tuned_top_layers


@pytest.fixture(scope="module")
def encoder() -> WhisperEncoder:
    torch.manual_seed(0)
    config = WhisperConfig(d_model=32, encoder_layers=3, encoder_attention_heads=4, encoder_ffn_dim=48,
                           num_mel_bins=8, max_source_positions=64, decoder_layers=1)
    return WhisperEncoder(config).eval()


def cached_states(encoder: WhisperEncoder, frames: int, seed: int) -> torch.Tensor:
    """`(layers + 1, frames, D)`: every hidden state of one clip, as the state cache stores them."""
    features = torch.randn(1, 8, 2 * frames, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        embedded = torch.nn.functional.gelu(encoder.conv2(torch.nn.functional.gelu(encoder.conv1(features))))
        hidden = embedded.transpose(1, 2) + encoder.embed_positions.weight[:frames]
        states = [hidden]
        for index, layer in enumerate(encoder.layers):
            hidden = layer(hidden, None)
            states.append(encoder.layer_norm(hidden) if index == len(encoder.layers) - 1 else hidden)
    return torch.cat(states).half()


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_untrained_top_layers_give_back_the_cached_states(encoder, layers):
    states = cached_states(encoder, 20, seed=1)
    with torch.no_grad():
        recomputed = TopLayers(encoder, layers).eval()(states)
    assert len(recomputed) == len(states)
    for cached, ours in zip(states, recomputed):
        torch.testing.assert_close(ours[0], cached.float(), atol=2e-2, rtol=2e-2)


def test_the_copies_of_a_frozen_encoders_layers_train_and_the_encoder_stays_frozen(encoder):
    frozen = copy.deepcopy(encoder).requires_grad_(False)
    top = TopLayers(frozen, 2)
    assert all(parameter.requires_grad for parameter in top.parameters())
    assert not any(parameter.requires_grad for parameter in frozen.parameters())


def test_a_layer_count_the_encoder_lacks_is_refused(encoder):
    with pytest.raises(ValueError, match="layers must be 1..3"):
        TopLayers(encoder, 4)


def test_training_separates_the_classes_and_scores_every_trial(encoder):
    """Two classes of clips that differ in their input statistics: the fitted candidate ranks them apart, and its
    training changes the scores of the probe it starts from (zero epochs)."""
    states, labels = [], []
    for index in range(24):
        state = cached_states(encoder, 12 + index % 5, seed=index)
        label = index % 2
        states.append(state + (0.5 if label else 0.0))
        labels.append(label)
    cache = FrontendCache(states, np.array(labels), {VIEW_COLUMN: ["clean"] * len(states)})
    scorer = tuned_top_layers(encoder, layers=1, epochs=2, lr=1e-3, batch_size=4)(cache, cache)
    scores = scorer(cache)
    assert scores.shape == (24,) and np.isfinite(scores).all()
    assert scores[cache.labels == 1].min() > scores[cache.labels == 0].max()
    untrained = tuned_top_layers(encoder, layers=1, epochs=0, lr=1e-3, batch_size=4)(cache, cache)(cache)
    assert not np.allclose(scores, untrained, atol=1e-3)
