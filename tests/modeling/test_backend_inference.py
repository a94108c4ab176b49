"""The back-end's CPU inference path (`modeling_nes2net.backend_inference`) computes what its plain forward computes."""

from __future__ import annotations

import pytest
import torch

from modeling_nes2net import Nes2NetBackend
from modeling_nes2net.backend_inference import attentive_statistics_, inference_path_applies
from tests.tiny_models import randomize_norm_statistics, tiny_config

torch.set_num_threads(1)

VARIANTS = [
    {},
    {"backend_variant": "nes2net"},
    {"activation": "selu", "se_min_channels": 2},
    {"pooling": "astp", "dilation": 1},
    {"activation": "selu", "pooling": "astp", "se_min_channels": 2},
    {"kernel_size": 5, "se_ratio": 4},
]


def random_backend(seed: int = 0, **overrides) -> Nes2NetBackend:
    """A tiny back-end (D = 64) in eval mode with random weights and normalisation statistics."""
    torch.manual_seed(seed)
    backend = Nes2NetBackend(tiny_config(**overrides))
    with torch.no_grad():
        for parameter in backend.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.3)
    randomize_norm_statistics(backend, seed)
    return backend.eval()


def both_paths(backend: Nes2NetBackend, features: torch.Tensor, frame_mask: torch.Tensor | None = None):
    """(plain forward, inference path) outputs of `backend`, each `(trunk, pooled)`."""
    with torch.enable_grad():
        plain = tuple(output.detach() for output in backend(features, frame_mask))
    with torch.inference_mode():
        assert inference_path_applies(backend, features)
        fast = backend(features, frame_mask)
    return plain, fast


def assert_same(plain, fast, tolerance: float = 1e-5) -> None:
    for expected, actual in zip(plain, fast):
        torch.testing.assert_close(actual, expected, atol=tolerance, rtol=tolerance)


@pytest.mark.parametrize("overrides", VARIANTS)
def test_inference_path_equals_the_plain_forward(overrides):
    backend = random_backend(**overrides)
    features = torch.randn(3, 37, 64)
    plain, fast = both_paths(backend, features)
    assert backend._inference_weights is not None  # the inference path ran
    assert_same(plain, fast)


@pytest.mark.parametrize("overrides", VARIANTS)
def test_inference_path_keeps_padded_frames_out(overrides):
    """With a frame mask the padded frames are zeroed before every temporal convolution, as in the plain forward."""
    backend = random_backend(**overrides)
    frame_mask = torch.arange(40)[None, :] < torch.tensor([40, 23, 9])[:, None]
    plain, fast = both_paths(backend, torch.randn(3, 40, 64), frame_mask)
    assert_same(plain, fast)


@pytest.mark.parametrize("chunk_elements", [1, 500, 1 << 18])
def test_attentive_pooling_scores_a_few_channels_at_a_time(chunk_elements):
    """The pooling's scores are computed `chunk_elements` at a time (one channel, four, all 64): the same statistics."""
    backend = random_backend(activation="selu", pooling="astp", se_min_channels=2)
    hidden_states = torch.randn(3, 64, 40)
    frame_mask = torch.arange(40)[None, :] < torch.tensor([40, 23, 9])[:, None]
    with torch.inference_mode():
        expected = backend.pooling(hidden_states, frame_mask)
        actual = attentive_statistics_(backend.inference_weights(), hidden_states, frame_mask, chunk_elements)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


def test_negative_norm_scales_are_not_folded():
    """`a * relu(z) + b = max(a z + b, b)` holds only for `a > 0`: a stage with a negative scale runs unfolded."""
    backend = random_backend()
    with torch.no_grad():
        backend.blocks[0].norms[1].weight[0] = -0.7
    plain, fast = both_paths(backend, torch.randn(2, 30, 64))
    stages = backend.inference_weights().blocks[0].hierarchy
    assert stages[1].floor is None and stages[0].floor is not None
    assert_same(plain, fast)


def test_changed_weights_are_used_at_once():
    backend = random_backend()
    features = torch.randn(2, 30, 64)
    _, before = both_paths(backend, features)
    with torch.no_grad():
        backend.blocks[1].conv_out.weight.mul_(2.0)
        backend.norm.running_var.mul_(3.0)
    plain, after = both_paths(backend, features)
    assert not torch.allclose(after[1], before[1], atol=1e-3)
    assert_same(plain, after)
    replaced = random_backend(seed=1)
    backend.load_state_dict(replaced.state_dict())
    assert_same(both_paths(replaced, features)[0], both_paths(backend, features)[1])
    _, before = both_paths(backend, features)
    backend.blocks[2].convs[0] = random_backend(seed=2).blocks[2].convs[0]  # a submodule swapped for another
    plain, after = both_paths(backend, features)
    assert not torch.allclose(after[1], before[1], atol=1e-3)
    assert_same(plain, after)


def test_bfloat16_stays_close_to_the_plain_forward():
    backend = random_backend().to(torch.bfloat16)
    plain, fast = both_paths(backend, torch.randn(2, 30, 64, dtype=torch.bfloat16))
    assert fast[1].dtype == torch.bfloat16
    assert_same(plain, fast, tolerance=0.05)


def test_training_autograd_hooks_autocast_and_other_devices_take_the_plain_forward():
    backend = random_backend()
    features = torch.randn(2, 30, 64)
    with torch.no_grad():
        assert inference_path_applies(backend, features)
        backend.blocks[0].se.train()  # one submodule in training mode: its batch statistics must be used
        assert not inference_path_applies(backend, features)
        backend.eval()
        assert not inference_path_applies(backend, features.to("meta"))
        handle = backend.blocks[1].convs[0].register_forward_hook(lambda *args: None)  # hooks would not fire
        assert not inference_path_applies(backend, features)
        handle.remove()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not inference_path_applies(backend, features)
    assert not inference_path_applies(backend, features)  # autograd on
    backend.train()
    with torch.no_grad():
        assert not inference_path_applies(backend, features)
