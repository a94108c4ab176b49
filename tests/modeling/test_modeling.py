"""Nes2Net config, back-end and model: reference sizes, exactness against the paper's loop, masks, training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import expit

from modeling_nes2net import PRESETS, Nes2NetBackend, Nes2NetConfig, Nes2NetForAudioClassification, config_from_preset
from modeling_nes2net.complexity import backend_complexity, count_macs
from modeling_nes2net.scorer import pad_waveforms
from tests.oracles.backend_with_head import BackendWithHead
from tests.oracles.nes2net import ReferenceNes2Net
from tests.tiny_models import randomize_norm_statistics, tiny_config, tiny_model

torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("overrides", "parameters", "macs"),
    [
        ({"num_labels": 2}, 512_039, 91.80),
        ({"num_labels": 1}, 511_014, 91.80),
        ({"num_labels": 1, "backend_variant": "nes2net"}, 510_769, 58.40),
    ],
)
def test_reference_sizes(overrides, parameters, macs):
    complexity = backend_complexity(Nes2NetConfig(**overrides), frames=201)
    assert complexity["parameters"] == parameters
    assert round(complexity["macs"] / 1e6, 2) == macs


@pytest.mark.parametrize(
    "reference_kwargs",
    [{}, {"variant": "nes2net", "n_logits": 1}, {"pooling": "astp", "activation": "selu", "se_min_channels": 2}],
)
def test_mac_rules_agree_with_ptflops_on_the_reference(reference_kwargs):
    ptflops = pytest.importorskip("ptflops")
    reference = ReferenceNes2Net(input_channels=256, **reference_kwargs)
    expected, _ = ptflops.get_model_complexity_info(
        reference, (256, 50), as_strings=False, print_per_layer_stat=False, verbose=False
    )
    assert count_macs(reference, torch.zeros(1, 256, 50)) == expected


def _paired(reference_kwargs: dict, config: Nes2NetConfig, seed: int = 0):
    torch.manual_seed(seed)
    reference = ReferenceNes2Net(input_channels=config.feature_size, **reference_kwargs)
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    randomize_norm_statistics(reference, seed)
    backend = BackendWithHead(config)
    backend.load_original(reference.state_dict())
    return backend.eval(), reference.eval()



@pytest.mark.parametrize(
    ("config_kwargs", "reference_kwargs"),
    [
        ({}, {}),
        ({"backend_variant": "nes2net", "num_labels": 1}, {"variant": "nes2net", "n_logits": 1}),
        ({"activation": "selu", "se_min_channels": 2}, {"activation": "selu", "se_min_channels": 2}),
        ({"pooling": "astp", "dilation": 1}, {"pooling": "astp", "dilation": 1}),
        ({"kernel_size": 5, "se_ratio": 4}, {"kernel_size": 5, "se_ratio": 4}),
    ],
)
def test_backend_equals_the_papers_loop(config_kwargs, reference_kwargs):
    config = Nes2NetConfig(**config_kwargs)
    backend, reference = _paired(reference_kwargs, config)
    features = torch.randn(2, config.feature_size, 201)
    with torch.no_grad():
        expected = reference(features)
        actual = backend(features.transpose(1, 2))
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


def test_backend_equals_the_papers_loop_in_training_mode():
    """Batch statistics of the (slices * batch, w, T) layout equal those of the paper's (batch, w, T, slices)."""
    config = tiny_config()
    backend, reference = _paired({"outer": 4, "inner": 4}, config)
    backend.train()
    reference.train()
    features = torch.randn(3, config.feature_size, 40)
    torch.testing.assert_close(backend(features.transpose(1, 2)), reference(features), atol=1e-5, rtol=1e-5)
    for (name, ours), theirs in zip(backend.named_buffers(), reference.buffers()):
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.parametrize("frontend", ["wav2vec2", "wavlm", "hubert", "data2vec-audio", "spectrogram"])
@pytest.mark.parametrize("num_labels", [1, 2])
def test_output_shapes_and_loss(frontend, num_labels):
    model = tiny_model(frontend, num_labels=num_labels)
    output = model(torch.randn(3, 8000) * 0.1, labels=torch.tensor([0, 1, 1]), output_hidden_states=True)
    assert output.logits.shape == (3, num_labels)
    assert output.loss.ndim == 0 and torch.isfinite(output.loss)
    assert output.hidden_states[0].shape[0] == 3 and output.hidden_states[0].shape[2] == model.config.feature_size


@pytest.mark.parametrize("layer_merge", ["last", "weighted_sum", "sea", "attm"])
@pytest.mark.parametrize("variant", ["nes2net", "nes2net-x"])
def test_gradients_reach_every_parameter(layer_merge, variant):
    # 6 layers -> 7 hidden states, so the SEA bottleneck (L // 3 = 2 units) is not one ReLU that may start dead.
    model = tiny_model(
        "wavlm", layer_merge=layer_merge, backend_variant=variant, pooling="astp", frontend_overrides={"num_hidden_layers": 6}
    ).train()
    loss = model(torch.randn(4, 6000) * 0.1, labels=torch.tensor([0, 1, 0, 1])).loss
    loss.backward()
    # The merges read the per-layer hidden states, which (as in s3prl, whose features the released SEA models were
    # trained on) come before the encoder's final layer norm: only `last` uses that norm.
    unused = set() if layer_merge == "last" else {"nes2net.frontend.encoder.layer_norm.weight", "nes2net.frontend.encoder.layer_norm.bias"}
    for name, parameter in model.named_parameters():
        if name in unused:
            assert parameter.grad is None, name
            continue
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_eval_mode_is_deterministic():
    model = tiny_model(layer_merge="sea")
    waveform = torch.randn(2, 7000) * 0.1
    with torch.no_grad():
        assert torch.equal(model(waveform).logits, model(waveform).logits)


@pytest.mark.parametrize(
    ("frontend", "overrides"),
    [
        ("wav2vec2", {}),
        ("wav2vec2", {"backend_variant": "nes2net", "pooling": "astp"}),
        ("wavlm", {"layer_merge": "sea"}),
        ("wavlm", {"layer_merge": "attm", "activation": "selu"}),
        ("hubert", {"layer_merge": "weighted_sum"}),
        ("hubert", {"layer_merge": "weighted_sum", "normalize_layers": True}),
        ("wav2vec2", {"layer_statistics": True}),
        ("wav2vec2", {"layer_merge": "attm", "normalize_layers": True, "layer_statistics": True}),
        ("whisper", {"layer_merge": "attm", "normalize_layers": True, "layer_statistics": True}),
        ("spectrogram", {}),
    ],
)
def test_padded_batch_equals_single_utterances(frontend, overrides):
    model = tiny_model(frontend, **overrides)
    lengths = [9000, 6100, 3500]
    waveforms = [torch.randn(length) * 0.1 for length in lengths]
    batch, attention_mask = map(torch.from_numpy, pad_waveforms([waveform.numpy() for waveform in waveforms]))
    with torch.no_grad():
        batched = model(batch, attention_mask=attention_mask).logits
        single = torch.cat([model(waveform[None]).logits for waveform in waveforms])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)


def test_padding_without_mask_changes_the_result():
    """The mask is what makes padded batches exact: without it the padding is scored as audio."""
    model = tiny_model()
    waveform = torch.randn(5000) * 0.1
    padded = torch.cat([waveform, torch.zeros(3000)])[None]
    with torch.no_grad():
        assert not torch.allclose(model(padded).logits, model(waveform[None]).logits, atol=1e-4)


def test_normalized_layers_ignore_the_scale_of_each_hidden_state():
    """With `normalize_layers`, multiplying one layer's states by a constant (one layer louder than the others, as in
    Whisper's residual stream) leaves the merged features unchanged; without it, they follow that layer."""
    hidden_states = tuple(torch.randn(2, 30, 64) for _ in range(3))
    louder = (hidden_states[0] * 50.0, *hidden_states[1:])
    for normalize, same in ((True, True), (False, False)):
        model = tiny_model("wavlm", layer_merge="weighted_sum", normalize_layers=normalize).eval()
        with torch.no_grad():
            merged = model.nes2net.forward_frontend_states(hidden_states)[0]
            merged_louder = model.nes2net.forward_frontend_states(louder)[0]
        assert torch.allclose(merged, merged_louder, atol=1e-4) is same


def test_fresh_weights_follow_the_papers_initialisation():
    model = Nes2NetForAudioClassification(tiny_config("wavlm", layer_merge="weighted_sum"))
    for block in model.nes2net.backend.blocks:
        for index, slice_sum in enumerate(block.slice_sums):
            torch.testing.assert_close(slice_sum.weight, torch.full((index + 2,), 1 / (index + 2)))
    assert torch.equal(model.nes2net.layer_merge.layer_weights, torch.ones(3))
    for name, parameter in model.named_parameters():
        assert torch.isfinite(parameter).all() and parameter.abs().max() < 1e3, name


def test_save_and_load_round_trip_is_bit_exact(tmp_path):
    from modeling_nes2net import save_model_folder

    model = tiny_model("wavlm", layer_merge="attm", calibration_scale=0.5, calibration_offset=-0.25)
    save_model_folder(model, tmp_path / "model")
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert not list((tmp_path / "model").glob("*.bin"))
    loaded = Nes2NetForAudioClassification.from_pretrained(tmp_path / "model").eval()
    assert (loaded.config.calibration_scale, loaded.config.calibration_offset) == (0.5, -0.25)
    original_state, loaded_state = model.state_dict(), loaded.state_dict()
    assert original_state.keys() == loaded_state.keys()
    for key in original_state:
        assert torch.equal(original_state[key], loaded_state[key]), key
    waveform = torch.randn(2, 6000) * 0.1
    with torch.no_grad():  # identical weights; kernels may sum in another order on other memory alignments
        torch.testing.assert_close(model(waveform).logits, loaded(waveform).logits, atol=1e-6, rtol=0)


def test_weighted_cross_entropy_uses_the_class_weights():
    model = tiny_model(loss="weighted_ce", class_weights=[0.1, 0.9])
    logits = torch.tensor([[0.3, -0.2], [1.0, 2.0], [-1.0, 0.5]])
    labels = torch.tensor([0, 1, 1])
    expected = F.cross_entropy(logits, labels, weight=torch.tensor([0.1, 0.9]))
    torch.testing.assert_close(model.compute_loss(logits, labels), expected)


def test_focal_loss_on_soft_labels():
    model = tiny_model(num_labels=1, loss="focal_bce")
    logit, label = 0.7, 1
    target = 0.9 * label + 0.05
    probability = expit(logit)
    bce = -(target * math.log(probability) + (1 - target) * math.log(1 - probability))
    p_t = probability * target + (1 - probability) * (1 - target)
    alpha_t = 0.25 * target + 0.75 * (1 - target)
    expected = alpha_t * (1 - p_t) ** 2 * bce
    actual = model.compute_loss(torch.tensor([[logit]]), torch.tensor([label]))
    assert actual.item() == pytest.approx(expected, rel=1e-5)


def test_frozen_frontend_gets_no_gradient():
    model = tiny_model(freeze_frontend=True).train()
    model(torch.randn(2, 6000) * 0.1, labels=torch.tensor([0, 1])).loss.backward()
    assert all(parameter.grad is None for parameter in model.nes2net.frontend.parameters())
    assert all(parameter.grad is not None for parameter in model.nes2net.backend.parameters())


def test_freeze_feature_encoder_only_freezes_the_cnn():
    model = tiny_model().train()
    model.freeze_feature_encoder()
    model(torch.randn(2, 6000) * 0.1, labels=torch.tensor([0, 1])).loss.backward()
    assert all(parameter.grad is None for parameter in model.nes2net.frontend.feature_extractor.parameters())
    assert all(parameter.grad is not None for parameter in model.nes2net.frontend.encoder.parameters())


def test_gradient_checkpointing_gives_the_same_gradients():
    waveform, labels = torch.randn(2, 6000) * 0.1, torch.tensor([0, 1])
    gradients = []
    for checkpointing in (False, True):
        model = tiny_model(seed=3).train()
        if checkpointing:
            model.activation_checkpointing_enable()
            assert model.nes2net.backend.blocks[0].gradient_checkpointing
        torch.manual_seed(0)
        model(waveform, labels=labels).loss.backward()
        gradients.append({name: parameter.grad.clone() for name, parameter in model.named_parameters()})
    for name in gradients[0]:
        torch.testing.assert_close(gradients[0][name], gradients[1][name], atol=1e-6, rtol=1e-4, msg=name)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"outer_ratio": 3}, "not divisible by outer_ratio"),
        ({"inner_ratio": 32}, "leaves no channel"),
        ({"kernel_size": 4}, "odd"),
        ({"num_labels": 3}, "num_labels"),
        ({"num_labels": 1, "loss": "weighted_ce"}, "weighted_ce"),
        ({"class_weights": [0.1]}, "class_weights"),
        ({"se_ratio": 64}, "se_ratio"),
        ({"layer_merge": "median"}, "layer_merge"),
        ({"frontend_type": "spectrogram", "layer_merge": "sea"}, "single layer"),
        ({"dilation": 0}, "dilation"),
    ],
)
def test_invalid_configs_are_refused(overrides, message):
    with pytest.raises(Exception, match=message):
        tiny_config(**overrides)


def test_presets_describe_the_releases():
    xlsr = config_from_preset("nes2net-x-xlsr")
    assert (xlsr.frontend_config.model_type, xlsr.layer_merge, xlsr.backend_variant) == ("wav2vec2", "last", "nes2net-x")
    assert (xlsr.num_labels, xlsr.dilation, xlsr.se_ratio, xlsr.outer_ratio, xlsr.inner_ratio) == (2, 2, 1, 8, 8)
    assert xlsr.frontend_config.do_stable_layer_norm and xlsr.feature_size == 1024
    svdd = config_from_preset("nes2net-x-selu-wavlm-sea")
    assert (svdd.frontend_config.model_type, svdd.layer_merge, svdd.num_labels) == ("wavlm", "sea", 1)
    assert (svdd.activation, svdd.se_min_channels, svdd.num_frontend_layers) == ("selu", 2, 25)
    assert (svdd.loss, svdd.problem_type) == (None, "multi_label_classification")  # the recipe sets the focal loss
    assert config_from_preset("nes2net-x-xlsr", dilation=1).dilation == 1
    assert set(PRESETS) >= {"nes2net-x-xlsr", "nes2net-wavlm-sea", "nes2net-x-wavlm-sea", "nes2net-x-selu-wavlm-sea"}
    with pytest.raises(ValueError, match="unknown preset"):
        config_from_preset("aasist")


def test_config_labels_follow_the_paper():
    assert tiny_config().id2label == {0: "spoof", 1: "bonafide"}
    assert tiny_config(num_labels=1).id2label == {0: "bonafide"}
    assert tiny_config().label2id == {"spoof": 0, "bonafide": 1}


def test_spectrogram_frontend_refuses_too_short_input():
    model = tiny_model("spectrogram")
    with pytest.raises(ValueError, match="shorter than one spectrogram frame"):
        model(torch.zeros(1, 100))


def test_scores_are_monotonic_views_of_the_logits():
    from modeling_nes2net.decision import bonafide_probability, bonafide_score, log_odds

    logits = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    assert torch.equal(bonafide_score(logits), torch.tensor([1.0, -1.0]))
    assert torch.equal(log_odds(logits), torch.tensor([1.0, -3.0]))
    np.testing.assert_allclose(bonafide_probability(logits).numpy(), torch.softmax(logits, -1)[:, 1].numpy(), rtol=1e-6)
    assert torch.equal(log_odds(torch.tensor([[0.4]])), torch.tensor([0.4]))
