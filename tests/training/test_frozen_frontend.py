"""Training after a frozen front-end on cached states (`nes2net train`'s loop): corpora mixed by interleave_datasets,
states cached once, scores from the cache equal to the model's own forward pass, the front-end left untouched."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from datasets import Dataset

from modeling_nes2net.decision import log_odds
from tests.tiny_models import tiny_config, tiny_model
from training.batching import WaveformDataset, build_augmentation
from training.data import load_built_dataset
from training.corpus_sources import build_demo_dataset
from modeling_nes2net import Nes2NetForAudioClassification, Nes2NetForAudioFrameClassification
from training.frozen_frontend import (
    masked_states,
    FrontendCache,
    batch_states,
    cache_frontend_states,
    forward_states,
    mix_corpora,
    score_cache,
)
from modeling_nes2net.modeling_nes2net import layer_statistics, local_layer_statistics
from training.llr_fitting import fit_llr_fusion
from training.recipe import Recipe, recipe_from_dict
from training.statistics_head import (
    add_statistics_head,
    fit_logistic,
    fit_probe,
    pooled_statistics,
    pooled_window_statistics,
    standardise,
)
from training.train import train_on_states

COLUMNS = ["label", "utt_id", "attack"]


def _toy(prefix: str, rows: int) -> Dataset:
    return Dataset.from_dict({"utt_id": [f"{prefix}{index}" for index in range(rows)], "label": [index % 2 for index in
                              range(rows)], "extra": list(range(rows))})


def test_corpora_are_interleaved_by_weight_until_each_is_exhausted():
    mixed = mix_corpora({"small": (_toy("s", 10), 1.0), "large": (_toy("l", 60), 3.0)}, seed=0,
                        columns=["utt_id", "label"])
    assert mixed.column_names == ["utt_id", "label", "corpus"]
    corpus = np.array(mixed["corpus"])
    assert set(mixed["utt_id"]) == {f"s{i}" for i in range(10)} | {f"l{i}" for i in range(60)}
    assert 0.15 < (corpus == "small").mean() < 0.35  # about a quarter: the small corpus repeats
    assert mixed["utt_id"] == mix_corpora({"small": (_toy("s", 10), 1.0), "large": (_toy("l", 60), 3.0)}, seed=0,
                                          columns=["utt_id", "label"])["utt_id"]
    with pytest.raises(ValueError, match="weights must be positive"):
        mix_corpora({"a": (_toy("a", 3), 0.0), "b": (_toy("b", 3), 1.0)}, seed=0, columns=["utt_id"])


@pytest.fixture(scope="module")
def built(mini_antispoof, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mini")
    build_demo_dataset(mini_antispoof, folder)
    return folder


@pytest.fixture(scope="module")
def caches(built):
    """A tiny Whisper model and (train cache of 2 views, dev cache of whole clips) from 12 / 8 real clips."""
    torch.set_num_threads(1)
    model = tiny_model("whisper", layer_merge="weighted_sum", freeze_frontend=True)
    train = load_built_dataset(built, "train").shuffle(seed=0).select(range(12))
    dev = load_built_dataset(built, "dev").shuffle(seed=0).select(range(8))
    mixed = mix_corpora({"mini": (train, 1.0)}, seed=0, columns=["audio", *COLUMNS])
    augmentation = build_augmentation({"channel": {"conditions": ["mp3:32k", "noise:snr=10"], "p": 1.0}})
    items = WaveformDataset(mixed, "random", 16000, augmentation, seed=1, columns=[*COLUMNS, "corpus"])
    train_cache = cache_frontend_states(model, items, [1, 2], num_workers=0)
    dev_items = WaveformDataset(dev, "full", columns=COLUMNS)
    return model, train_cache, cache_frontend_states(model, dev_items, [0], num_workers=0), dev_items


def test_the_cache_holds_every_layer_of_every_view_and_round_trips(caches, tmp_path):
    model, train, _, _ = caches
    assert len(train) == 24 and train.metadata["corpus"] == ["mini"] * 24
    assert all(state.shape == (model.config.num_frontend_layers, 50, 64) and state.dtype == torch.float16
               for state in train.states)
    assert not torch.equal(train.states[0], train.states[12])  # view 2 is another crop and channel than view 1
    train.save(tmp_path / "train.safetensors")
    loaded = FrontendCache.load(tmp_path / "train.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(loaded.states, train.states))
    assert np.array_equal(loaded.labels, train.labels) and loaded.metadata == train.metadata


def states_recipe(**data) -> Recipe:
    """A recipe on cached states (their corpora given in memory): Adam with a cosine schedule, the last epochs
    averaged."""
    return recipe_from_dict({
        "data": {"corpora": {"mini": {"dataset": "in memory"}}, **data},
        "training": {"epochs": 3, "batch_size": 4, "lr": 1e-3, "min_lr": 1e-5, "schedule": "cosine", "frontend_lr": 0,
                     "average_best": 2, "average_epochs": "last", "mixed_precision": "no", "seed": 0}})


def test_training_moves_the_back_end_only_and_cached_scores_equal_the_forward_pass(caches, tmp_path):
    initial, train, dev, dev_items = caches
    final = train_on_states(states_recipe(), tmp_path / "run", (train, dev), model=copy.deepcopy(initial))
    assert len(list((tmp_path / "run" / "dev").glob("epoch-*.csv"))) == 3  # dev EER after every epoch
    model = Nes2NetForAudioClassification.from_pretrained(final)
    for name, tensor in model.nes2net.frontend.state_dict().items():
        assert torch.equal(tensor, initial.nes2net.frontend.state_dict()[name]), name
    assert not torch.equal(next(model.nes2net.backend.parameters()), next(initial.nes2net.backend.parameters()))
    cached = score_cache(model, dev)
    with torch.inference_mode():
        direct = [float(log_odds(model(torch.from_numpy(dev_items[index]["input_values"])[None]).logits)[0])
                  for index in range(len(dev_items))]
    np.testing.assert_allclose(cached, direct, atol=5e-3)  # the cache rounds the states to float16


def test_windows_of_the_cached_states_change_what_is_trained_and_repeat_under_the_seed(caches, tmp_path):
    """`crop_frames` trains on random windows of the whole-clip states (50 frames here): a window as long as the
    states trains exactly as no window, a shorter one trains other weights, the same ones on every run."""
    initial, train, _, _ = caches
    runs = iter(range(5))

    def trained(crop_frames: int | None) -> torch.Tensor:
        final = train_on_states(states_recipe(crop_frames=crop_frames), tmp_path / f"run-{next(runs)}", (train, None),
                                model=copy.deepcopy(initial))
        return next(Nes2NetForAudioClassification.from_pretrained(final).nes2net.backend.parameters()).detach()

    whole, windowed = trained(None), trained(20)
    assert torch.equal(trained(50), whole)
    assert not torch.equal(windowed, whole)
    assert torch.equal(trained(20), windowed)


def test_masking_zeroes_one_band_and_one_span_in_every_layer_and_spares_the_cache():
    state = torch.randn(3, 50, 16) + 5.0  # no zero before masking
    masked = masked_states(state, max_channels=6, max_frames=10, rng=np.random.default_rng(3))
    zero = masked == 0
    assert torch.equal(zero[0], zero[1]) and torch.equal(zero[0], zero[2])  # the same band and span in each layer
    channels = zero[0].all(dim=0).nonzero().flatten()
    frames = zero[0].all(dim=1).nonzero().flatten()
    assert 0 < len(channels) <= 6 and 0 < len(frames) <= 10
    assert torch.equal(channels, torch.arange(channels[0], channels[-1] + 1))  # one contiguous band
    assert torch.equal(frames, torch.arange(frames[0], frames[-1] + 1))  # one contiguous span
    unmasked = ~zero[0]
    assert torch.equal(masked[:, unmasked], state[:, unmasked])
    assert (state != 0).all()  # the cached state itself is untouched
    assert masked_states(state, 0, 0, np.random.default_rng(3)) is state


def test_a_fused_statistics_head_scores_the_fusion_it_was_fitted_as_through_the_forward_pass(caches, tmp_path):
    initial, _, dev, dev_items = caches  # whole clean clips: the probe's statistics need whole clips of one kind
    calibration = copy.deepcopy(dev)
    calibration.labels[:2] = 1 - calibration.labels[:2]  # two errors: a perfectly separated split has no finite fit
    plain_folder = train_on_states(states_recipe(), tmp_path / "plain", (dev, calibration), model=copy.deepcopy(initial))
    plain = Nes2NetForAudioClassification.from_pretrained(plain_folder)
    recipe = states_recipe()
    recipe.training.statistics_head = {"inverse_strength": 0.1}
    folder = train_on_states(recipe, tmp_path / "fused", (dev, calibration), model=copy.deepcopy(initial))
    model = Nes2NetForAudioClassification.from_pretrained(folder)
    assert model.config.layer_statistics and not plain.config.layer_statistics
    # each folder's card says what its forward pass returns
    plain_card, card = (" ".join((path / "README.md").read_text(encoding="utf-8").split())
                        for path in (plain_folder, folder))
    assert "linear probe" not in plain_card
    assert "the forward pass returns the fused log-odds" in card and "which the forward pass returns" not in card
    assert model.classifier.in_features == plain.classifier.in_features + 2 * 64 * model.config.num_frontend_layers

    # the fusion spelled out: the probe's log-odds and the plain model's, weighted as fitted on dev
    probe_weights, probe_bias = fit_probe(dev, inverse_strength=0.1)
    parts = np.stack([score_cache(plain, dev), pooled_statistics(dev) @ probe_weights + probe_bias], axis=1)
    weights, offset = fit_llr_fusion(parts, calibration.labels)
    assert weights[1] != 0  # the probe is in the score
    np.testing.assert_allclose(score_cache(model, dev), parts @ weights + offset, rtol=1e-4, atol=1e-4)
    with torch.inference_mode():
        direct = [float(log_odds(model(torch.from_numpy(dev_items[index]["input_values"])[None]).logits)[0])
                  for index in range(len(dev_items))]
    np.testing.assert_allclose(direct, parts @ weights + offset, atol=5e-3)  # the cache rounds the states to float16


def test_a_statistics_head_without_dev_states_is_refused_before_training(caches, tmp_path):
    initial, train, _, _ = caches
    recipe = states_recipe()
    recipe.training.statistics_head = {}
    with pytest.raises(ValueError, match="training.statistics_head is fused on the dev states, and none were given"):
        train_on_states(recipe, tmp_path / "run", (train, None), model=copy.deepcopy(initial))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_layer_statistics_count_only_the_real_frames_of_a_padded_batch():
    torch.manual_seed(0)
    short, long = torch.randn(3, 7, 4), torch.randn(3, 12, 4)
    padded = torch.zeros(2, 3, 12, 4)
    padded[0, :, :7], padded[1] = short, long
    mask = torch.arange(12)[None] < torch.tensor([[7], [12]])
    batch = layer_statistics(tuple(padded.unbind(1)), mask)
    for row, state in zip(batch, (short, long)):  # [mean; std] of each layer over its own frames
        expected = np.concatenate([part for layer in state.numpy() for part in (layer.mean(0), layer.std(0))])
        np.testing.assert_allclose(row.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(layer_statistics(tuple(padded.unbind(1)), None)[0].numpy(), batch[0].numpy())


def test_local_statistics_are_mean_and_std_over_the_real_frames_of_each_window():
    torch.manual_seed(0)
    short, long = torch.randn(2, 7, 3) + 5.0, torch.randn(2, 12, 3) - 2.0
    padded = torch.zeros(2, 2, 12, 3)
    padded[0, :, :7], padded[1] = short, long
    mask = torch.arange(12)[None] < torch.tensor([[7], [12]])
    window = 5
    batch = local_layer_statistics(tuple(padded.unbind(1)), mask, window)
    assert batch.shape == (2, 12, 2 * 2 * 3)
    for row, state in zip(batch, (short, long)):
        frames = state.shape[1]
        for frame in range(frames):  # the frames of the window that are real, whatever the padding holds
            around = state[:, max(0, frame - window // 2): min(frames, frame + window // 2 + 1)].numpy()
            expected = np.concatenate([part for layer in around for part in (layer.mean(0), layer.std(0))])
            np.testing.assert_allclose(row[frame].numpy(), expected, rtol=1e-4, atol=1e-5)
    one_frame = local_layer_statistics(tuple(padded.unbind(1)), mask, 1)[1]
    np.testing.assert_allclose(one_frame[:, :3].numpy(), long[0].numpy(), rtol=1e-5, atol=1e-5)  # the frame itself
    assert float(one_frame[:, 3:6].abs().max()) < 1e-3  # and no spread


@pytest.mark.parametrize("window", [0, 4, True, 2.5])
@pytest.mark.parametrize("name", ["frame_statistics_window", "layer_statistics_window"])
def test_a_statistics_window_must_be_an_odd_number_of_frames(window, name):
    with pytest.raises(Exception, match=f"{name} must be an odd number of frames"):
        tiny_config("whisper", layer_statistics=True, **{name: window})


def test_a_layer_statistics_window_without_layer_statistics_is_refused():
    with pytest.raises(Exception, match="layer_statistics_window sets the window of layer_statistics, which is off"):
        tiny_config("whisper", layer_statistics_window=5)


def test_features_standardised_in_place_fit_the_probe_that_a_copying_fit_finds():
    generator = np.random.default_rng(0)
    labels = generator.integers(0, 2, 600)
    features = generator.normal(size=(600, 6)) * [1.0, 10.0, 0.1, 3.0, 1.0, 1.0] + [0.0, 5.0, -2.0, 0.0, 100.0, 0.0]
    features[:, 0] += labels
    features = features.astype(np.float32)
    copied_weights, copied_bias = fit_logistic(features.copy(), labels, 0.1)
    standardised = features.copy()
    scaler = standardise(standardised, chunk_rows=64)  # ten chunks, the last one short
    np.testing.assert_allclose(standardised.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(standardised.std(axis=0), 1.0, atol=1e-4)
    np.testing.assert_allclose(scaler.mean_, features.astype(np.float64).mean(axis=0), rtol=1e-6)
    weights, bias = fit_logistic(standardised, labels, 0.1, scaler)
    np.testing.assert_allclose(weights, copied_weights, rtol=1e-3, atol=1e-5)
    assert bias == pytest.approx(copied_bias, rel=1e-3)
    assert weights[0] > 0.5  # the one informative feature


@pytest.mark.parametrize("window", [None, 5])
def test_a_statistics_head_on_one_logit_scores_the_fusion_through_the_forward_pass(caches, window):
    """One logit is the log-odds itself: the probe's columns and the fused calibration land on it (a probe of whole
    clips, or of windows of 5 frames)."""
    initial, _, dev, dev_items = caches
    calibration = copy.deepcopy(dev)
    calibration.labels[:2] = 1 - calibration.labels[:2]  # two errors: a perfectly separated split has no finite fit
    torch.manual_seed(1)
    plain = copy.deepcopy(initial)
    plain.config.num_labels = 1
    plain.classifier = torch.nn.Linear(plain.config.pooled_size, 1)
    plain.config.calibration_scale, plain.config.calibration_offset = 0.7, 0.3
    fused = add_statistics_head(plain, dev, calibration, inverse_strength=0.1, window=window)
    assert fused.config.num_labels == 1 and fused.classifier.out_features == 1
    assert fused.config.layer_statistics_window == window

    probe_weights, probe_bias = fit_probe(dev, inverse_strength=0.1, window=window)
    statistics = pooled_statistics(dev) if window is None else pooled_window_statistics(dev, window)
    parts = np.stack([score_cache(plain, dev), statistics @ probe_weights + probe_bias], axis=1)
    weights, offset = fit_llr_fusion(parts, calibration.labels)
    assert weights[0] != 0 and weights[1] != 0  # both systems are in the score
    np.testing.assert_allclose(score_cache(fused, dev), parts @ weights + offset, rtol=1e-4, atol=1e-4)
    with torch.inference_mode():
        direct = [float(log_odds(fused(torch.from_numpy(dev_items[index]["input_values"])[None]).logits)[0])
                  for index in range(len(dev_items))]
    # the cache rounds the states to float16 (the std of 5 frames feels it more than that of a clip); the untrained
    # back-end's log-odds reach 40
    tolerance = 5e-3 if window is None else 3e-2
    np.testing.assert_allclose(direct, parts @ weights + offset, rtol=tolerance, atol=tolerance)


def test_statistics_of_a_normalised_last_layer_are_refused():
    """With `layer_merge="last"` the cache holds the features the back-end reads, normalised by `normalize_layers`,
    while the statistics read the raw state: that model is refused rather than cached wrongly."""
    with pytest.raises(Exception, match="read the raw hidden states"):  # a validation error
        tiny_config("whisper", normalize_layers=True, layer_statistics=True)
    assert tiny_config("whisper", layer_statistics=True).pooled_size == 64 + 2 * 64  # the last state, raw


def test_a_statistics_head_keeps_a_frame_models_frame_classifier(caches):
    initial, _, dev, _ = caches
    calibration = copy.deepcopy(dev)
    calibration.labels[:2] = 1 - calibration.labels[:2]  # two errors: a perfectly separated split has no finite fit
    torch.manual_seed(2)
    framed = Nes2NetForAudioFrameClassification(initial.config)
    framed.load_state_dict(initial.state_dict(), strict=False)  # the utterance model, a new frame classifier
    fused = add_statistics_head(framed.eval(), dev, calibration, inverse_strength=0.1)
    assert isinstance(fused, Nes2NetForAudioFrameClassification) and fused.config.layer_statistics
    assert not framed.config.layer_statistics  # the input is left unchanged
    states, frame_mask = batch_states(dev.states[:3])
    with torch.inference_mode():
        expected = framed.frame_classifier(forward_states(framed, states, frame_mask)[1])
        np.testing.assert_array_equal(fused.frame_classifier(forward_states(fused, states, frame_mask)[1]), expected)
