"""Leave-one-family-out cross-validation: folds hold out whole families and genuine sources, nothing held out is
trained on, and the candidates score what they should."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from training.cross_validation import (
    cross_validate,
    fused,
    held_out_mask,
    logistic_probe,
    nes2net_candidate,
    plan_folds,
    trained_on,
)
from training.corpus_sources import PAIR_SOURCE_COLUMN
from training.data.splices import PAIR_COLUMN
from training.data.families import FAMILIES, family_of
from training.divergence import TrainingDivergedError
from training.frozen_frontend import CORPUS_COLUMN, FrontendCache
from training.metrics import compute_eer
from training.recipe import recipe_from_dict
from training.state_cache import VIEW_COLUMN, training_states
from training.statistics_head import (
    copy_pairs,
    fit_probe,
    pooled_statistics,
    pooled_window_statistics,
    window_statistics,
)
from modeling_nes2net import Nes2NetConfig

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FAMILY = {"tts-a": "classic", "tts-b": "classic", "voc": "neural vocoder", "vc": "voice conversion"}


def synthetic_cache(per_system: int = 12, separation: float = 1.0, seed: int = 0) -> FrontendCache:
    """States `(2, 30, 8)`: bona fide from four genuine sources, spoofs of four systems in three families; spoofs are
    shifted by `separation` on every channel, so a detector that learns anything separates them."""
    rng = np.random.default_rng(seed)
    states, labels, systems, corpora = [], [], [], []
    for label, names in ((1, ["src-1", "src-2", "src-3", "src-4"]), (0, list(FAMILY))):
        for system in names:
            for _ in range(per_system):
                shift = 0.0 if label else separation
                states.append(torch.from_numpy(rng.standard_normal((2, 30, 8)) + shift).half())
                labels.append(label)
                systems.append(system)
                corpora.append("corpus-a" if system in ("src-1", "src-2", "tts-a") else "corpus-b")
    return FrontendCache(states, np.array(labels), {"system": systems, CORPUS_COLUMN: corpora,
                                                   "attack": [s if l == 0 else "" for s, l in zip(systems, labels)]})


def test_folds_hold_out_each_family_and_every_genuine_source_once():
    cache = synthetic_cache()
    folds = plan_folds(cache, FAMILY.__getitem__)
    assert [fold.family for fold in folds] == sorted(set(FAMILY.values()))
    sources = [source for fold in folds for source in fold.genuine_sources]
    assert sorted(sources) == sorted({f"{c}/{s}" for c, s, l in zip(cache.metadata[CORPUS_COLUMN],
                                                                    cache.metadata["system"], cache.labels) if l == 1})
    assert all(fold.genuine_sources for fold in folds)  # four sources over three folds: none left without genuine speech
    assert plan_folds(cache, FAMILY.__getitem__) == folds  # deterministic


def test_held_out_trials_are_exactly_the_family_and_its_sources():
    cache = synthetic_cache()
    fold = plan_folds(cache, FAMILY.__getitem__)[0]  # "classic": tts-a and tts-b
    mask = held_out_mask(cache, fold, FAMILY.__getitem__)
    held_systems = {system for system, held in zip(cache.metadata["system"], mask) if held}
    assert held_systems == {"tts-a", "tts-b", *(source.split("/")[1] for source in fold.genuine_sources)}
    assert not set(np.array(cache.metadata["system"])[~mask]) & held_systems


def with_vocoded_copies(cache: FrontendCache) -> FrontendCache:
    """`cache` and, in a `copies` corpus, a vocoded copy (system `voc`) of each of its bona fide trials, naming the
    genuine source of the clip it copies."""
    genuine = cache.select(cache.labels == 1)
    copies = FrontendCache(genuine.states, np.zeros(len(genuine), dtype=np.int64),
                           {"system": ["voc"] * len(genuine), CORPUS_COLUMN: ["copies"] * len(genuine),
                            "attack": ["voc"] * len(genuine),
                            PAIR_SOURCE_COLUMN: [f"{corpus}/{system}" for corpus, system in
                                                 zip(genuine.metadata[CORPUS_COLUMN], genuine.metadata["system"])]})
    cache.metadata[PAIR_SOURCE_COLUMN] = [""] * len(cache)
    return cache + copies


def test_a_vocoded_copy_is_held_out_with_the_genuine_source_of_its_clip():
    cache = with_vocoded_copies(synthetic_cache())
    for fold in plan_folds(synthetic_cache(), FAMILY.__getitem__):
        mask = held_out_mask(cache, fold, FAMILY.__getitem__)
        copies = np.array(cache.metadata[CORPUS_COLUMN]) == "copies"
        copied_from = np.array(cache.metadata[PAIR_SOURCE_COLUMN], dtype=object)
        expected = np.isin(copied_from, fold.genuine_sources) | (fold.family == "neural vocoder")
        assert (mask[copies] == expected[copies]).all(), fold
        assert mask[copies].any() and (fold.family == "neural vocoder" or not mask[copies].all())


def test_a_candidate_trained_on_some_corpora_sees_no_other():
    cache = with_vocoded_copies(synthetic_cache())
    seen = []

    def spy(train, calibration):
        seen.append((set(train.metadata[CORPUS_COLUMN]), len(calibration)))
        return logistic_probe(train, calibration)

    scores = trained_on(["corpus-a", "corpus-b"], spy)(cache, cache)(cache)
    assert seen == [({"corpus-a", "corpus-b"}, len(cache))]  # calibration untouched
    assert scores.shape == (len(cache),)
    trained_on(["corpus-a", "corpus-b", "copies"], spy)(cache, cache)
    assert seen[1][0] == {"corpus-a", "corpus-b", "copies"}


def test_pooled_statistics_are_mean_and_std_of_every_layer():
    cache = synthetic_cache(per_system=1)
    features = pooled_statistics(cache)
    state = cache.states[0].float()
    assert features.shape == (len(cache), 2 * 2 * 8)
    np.testing.assert_allclose(features[0].reshape(2, 16)[:, :8], state.mean(1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(features[0].reshape(2, 16)[:, 8:], state.std(1, correction=0).numpy(), rtol=1e-5)


def test_windows_of_one_frame_are_the_frames_themselves():
    cache = synthetic_cache(per_system=1)
    features, trials = window_statistics(cache, window=1, step=4)
    frames = cache.states[0].float()[:, 2::4]  # (layers, 7 windows, D): every 4th frame from the 2nd
    assert features.shape == (len(cache) * 7, 2 * 2 * 8)
    assert list(trials) == [index for index in range(len(cache)) for _ in range(7)]
    per_layer = features[:7].reshape(7, 2, 16)
    np.testing.assert_allclose(per_layer[:, :, :8], frames.transpose(0, 1).numpy(), atol=1e-3)
    assert np.abs(per_layer[:, :, 8:]).max() < 1e-3  # the std of one frame


def test_windows_wider_than_the_clip_pool_to_the_clip_statistics():
    cache = synthetic_cache(per_system=1)
    np.testing.assert_allclose(pooled_window_statistics(cache, window=61), pooled_statistics(cache), atol=1e-4)


def alternating_cache(per_class: int, seed: int, spoof_amplitude: float = 1.0) -> FrontendCache:
    """States `(2, 60, 4)` whose channel 0 is +-1: bona fide flips sign every frame, spoofs (+-`spoof_amplitude`)
    every 30 frames; at amplitude 1 the whole clip's mean and std of every channel are the same for both, the std over
    a few frames is not."""
    rng = np.random.default_rng(seed)
    states, labels = [], []
    for label in (1, 0):
        flips = (np.where(np.arange(60) % 2 == 0, 1.0, -1.0) if label
                 else spoof_amplitude * np.where(np.arange(60) < 30, 1.0, -1.0))
        for _ in range(per_class):
            state = 0.3 * rng.standard_normal((2, 60, 4))
            state[:, :, 0] += flips * rng.choice([-1.0, 1.0])
            states.append(torch.from_numpy(state).float())
            labels.append(label)
    return FrontendCache(states, np.array(labels), {"system": ["x"] * len(labels)})


def test_a_window_probe_finds_what_whole_clip_statistics_average_away():
    train, test = alternating_cache(40, seed=0), alternating_cache(40, seed=1)

    def eer(window):
        scores = logistic_probe(train, train, window=window)(test)
        return compute_eer(scores[test.labels == 1], scores[test.labels == 0]).eer

    assert eer(5) < 0.05
    assert eer(None) > 0.2


def test_a_window_probe_is_fitted_on_the_windows_not_the_whole_clips():
    # louder spoofs: over whole clips a spoof's channel 0 varies more, over a few frames far less
    train, test = (alternating_cache(40, seed, spoof_amplitude=1.5) for seed in (0, 1))
    weights, bias = fit_probe(train, window=5)  # uncalibrated: a probe fitted on whole clips would score backwards
    scores = pooled_window_statistics(test, window=5) @ weights + bias
    assert compute_eer(scores[test.labels == 1], scores[test.labels == 0]).eer < 0.05


def test_a_trainer_never_sees_a_held_out_trial():
    cache = synthetic_cache()
    folds = plan_folds(cache, FAMILY.__getitem__)
    seen = []

    def spy(train, calibration):
        seen.append((set(train.metadata["system"]), set(calibration.metadata["system"])))
        return logistic_probe(train, calibration)

    cross_validate({"spy": spy}, cache, cache, cache, folds, FAMILY.__getitem__)
    for fold, (trained, calibrated) in zip(folds, seen):
        held = {system for system, family in FAMILY.items() if family == fold.family}
        held |= {source.split("/")[1] for source in fold.genuine_sources}
        assert not (trained | calibrated) & held


def test_separable_families_score_low_and_random_ones_near_chance():
    separable = cross_validate({"logistic": logistic_probe}, *[synthetic_cache(separation=1.0)] * 3,
                               plan_folds(synthetic_cache(), FAMILY.__getitem__), FAMILY.__getitem__)
    chance = cross_validate({"logistic": logistic_probe}, *[synthetic_cache(separation=0.0)] * 3,
                            plan_folds(synthetic_cache(), FAMILY.__getitem__), FAMILY.__getitem__)
    assert separable["logistic"]["pooled"]["eer"] < 5
    assert chance["logistic"]["pooled"]["eer"] > 25
    pooled = separable["logistic"]["pooled"]
    assert pooled["eer_low"] <= pooled["eer"] <= pooled["eer_high"]
    assert pooled["bonafide"] == 48 and pooled["spoof"] == 48


def test_the_probe_trains_on_the_views_it_is_given(tmp_path):
    clean, inverted = synthetic_cache(separation=1.0), synthetic_cache(separation=-3.0, seed=1)
    paths = {("corpus", "train", "clean"): tmp_path / "clean.safetensors",
             ("corpus", "train", "channel"): tmp_path / "channel.safetensors"}
    clean.save(paths[("corpus", "train", "clean")])
    inverted.save(paths[("corpus", "train", "channel")])
    train, _ = training_states(paths, ["corpus"], with_dev=False)
    assert train.metadata[VIEW_COLUMN] == ["clean"] * len(clean) + ["channel"] * len(inverted)
    test = synthetic_cache(separation=1.0, seed=2)

    def eer(views):
        scores = logistic_probe(train, clean, views=views)(test)
        return compute_eer(scores[test.labels == 1], scores[test.labels == 0]).eer

    assert eer(("clean",)) < 0.05  # the inverted channel view is left out
    assert eer(None) > 0.25  # ...and spoils the probe when it is not


def tiny_states_recipe(**data):
    """A recipe for a Nes2Net-X back-end on the one-layer, 8-channel states of `synthetic_cache`."""
    config = {"frontend_type": "spectrogram", "spectrogram_n_fft": 14, "backend_variant": "nes2net-x",
              "outer_ratio": 2, "inner_ratio": 2, "attention_channels": 8, "se_ratio": 1}
    assert Nes2NetConfig(**config).feature_size == 8
    return recipe_from_dict({
        "model": {"config": config}, "data": {"corpora": {"synthetic": {"dataset": "in memory"}}, **data},
        "training": {"epochs": 3, "batch_size": 8, "lr": 1e-3, "min_lr": 1e-5, "schedule": "cosine",
                     "frontend_lr": 0, "average_best": 3, "mixed_precision": "no"}})


def test_the_probe_fits_on_the_corpora_it_is_given():
    train, test = synthetic_cache(separation=1.0), synthetic_cache(separation=1.0, seed=2)
    in_b = np.asarray(train.metadata[CORPUS_COLUMN]) == "corpus-b"
    train.labels = np.where(in_b, 1 - train.labels, train.labels)  # corpus-b says the opposite

    def eer(corpora):
        weights, bias = fit_probe(train, corpora=corpora)
        scores = pooled_statistics(test) @ weights + bias
        return compute_eer(scores[test.labels == 1], scores[test.labels == 0]).eer

    assert eer(["corpus-a"]) < 0.1 and eer(["corpus-b"]) > 0.9  # each fitted on its own trials alone


def paired_cache(per_class: int, seed: int, copies: bool = True) -> FrontendCache:
    """States `(1, 20, 2)` of bona fide and spoofed trials that differ only on channel 0 (spoofs +1, a cue of the
    training generators alone), and, in a `copies` corpus, a vocoded copy of each bona fide trial: the clip with
    channel 1 raised by 1 (the vocoder's trace), naming the clip it copies."""
    rng = np.random.default_rng(seed)
    states, labels, metadata = [], [], {"utt_id": [], CORPUS_COLUMN: [], PAIR_COLUMN: [], PAIR_SOURCE_COLUMN: []}
    for label in (1, 0):
        for index in range(per_class):
            state = rng.standard_normal((1, 20, 2))
            state[:, :, 0] += 0.0 if label else 1.0
            states.append(state)
            labels.append(label)
            metadata["utt_id"].append(f"{label}-{index}")
            metadata[CORPUS_COLUMN].append("real")
            metadata[PAIR_COLUMN].append("")
            metadata[PAIR_SOURCE_COLUMN].append("")
            if label and copies:
                states.append(state + np.array([0.0, 1.0]))
                labels.append(0)
                metadata["utt_id"].append(f"{label}-{index}-copy")
                metadata[CORPUS_COLUMN].append("copies")
                metadata[PAIR_COLUMN].append(f"{label}-{index}")
                metadata[PAIR_SOURCE_COLUMN].append("real/page")
    return FrontendCache([torch.from_numpy(state).float() for state in states], np.array(labels),
                         {**metadata, "system": ["x"] * len(labels)})


def test_each_copy_is_paired_with_its_own_clip_in_its_own_corpus_and_view():
    cache = paired_cache(per_class=5, seed=0)
    twin = cache.select(np.asarray(cache.metadata[CORPUS_COLUMN]) == "real")  # same utt_ids in another corpus
    twin.metadata[CORPUS_COLUMN] = ["other"] * len(twin)
    both = cache + twin
    both.metadata[VIEW_COLUMN] = ["clean"] * len(both)
    channel = cache.select(np.ones(len(cache), dtype=bool))
    channel.metadata[VIEW_COLUMN] = ["channel"] * len(channel)
    both = both + channel
    originals, copies = copy_pairs(both)
    assert len(copies) == 2 * 5  # each copy once, in each view
    for original, copy in zip(originals, copies):
        assert both.labels[original] == 1 and both.labels[copy] == 0
        assert both.metadata[PAIR_COLUMN][copy] == both.metadata["utt_id"][original]
        assert both.metadata[CORPUS_COLUMN][original] == "real"
        assert both.metadata[VIEW_COLUMN][original] == both.metadata[VIEW_COLUMN][copy]


def test_the_paired_term_learns_what_tells_a_clip_from_its_own_copy():
    train = paired_cache(per_class=40, seed=0)
    test = paired_cache(per_class=40, seed=1, copies=False)
    test.states = [state + torch.tensor([-1.0, 1.0]) * (1 - label) for state, label in
                   zip(test.states, test.labels)]  # spoofs of another generator: the trace, not the training cue

    def eer(**options):
        weights, bias = fit_probe(train, corpora=["real"], **options)  # the copies enter as pairs or not at all
        scores = pooled_statistics(test) @ weights + bias
        return compute_eer(scores[test.labels == 1], scores[test.labels == 0]).eer

    assert eer(paired_weight=1.0) < 0.15
    assert eer() > 0.3


def test_a_paired_probe_without_copies_is_the_plain_probe_and_says_so_and_stale_copies_are_refused(caplog):
    cache = paired_cache(per_class=10, seed=0, copies=False)
    plain = fit_probe(cache)
    paired = fit_probe(cache, paired_weight=1.0)
    np.testing.assert_allclose(paired[0], plain[0])
    assert "no paired term" in caplog.text
    with pytest.raises(ValueError, match="whole-clip"):
        fit_probe(paired_cache(per_class=5, seed=0), paired_weight=1.0, window=5)
    stale = paired_cache(per_class=5, seed=0)  # copies cached before their pair_id was kept
    stale.metadata[PAIR_COLUMN] = [""] * len(stale)
    with pytest.raises(ValueError, match="encode them again"):
        fit_probe(stale, paired_weight=1.0)


def test_fusing_two_half_informed_candidates_beats_each_of_them():
    train, test = synthetic_cache(separation=-0.15), synthetic_cache(separation=-0.15, seed=3)

    def channel_mean(channels: slice):
        def candidate(train_cache, calibration):  # needs no fitting: bona fide states sit higher on every channel
            return lambda cache: np.array([state[:, :, channels].float().mean().item() for state in cache.states])
        return candidate

    def eer(candidate):
        scores = candidate(train, train)(test)
        return compute_eer(scores[test.labels == 1], scores[test.labels == 0]).eer

    halves = [channel_mean(slice(0, 4)), channel_mean(slice(4, 8))]
    assert eer(fused(halves)) < min(eer(half) for half in halves) - 0.02


def clean_and_broken_views(folder: Path) -> tuple[FrontendCache, FrontendCache]:
    """(train states of a clean view and a NaN channel view, the clean view alone): what reads the channel view
    diverges."""
    clean = synthetic_cache(separation=1.5)
    clean.states = [state[-1:] for state in clean.states]
    broken = FrontendCache([torch.full_like(state, float("nan")) for state in clean.states], clean.labels,
                           dict(clean.metadata))
    paths = {("corpus", "train", view): folder / f"{view}.safetensors" for view in ("clean", "channel")}
    clean.save(paths[("corpus", "train", "clean")])
    broken.save(paths[("corpus", "train", "channel")])
    train, _ = training_states(paths, ["corpus"], with_dev=False)
    return train, clean


def test_nes2net_candidate_trains_on_the_views_its_recipe_names(tmp_path):
    train, clean = clean_and_broken_views(tmp_path)
    scores = nes2net_candidate(tiny_states_recipe(views=["clean"]))(train, clean)(clean)
    assert np.isfinite(scores).all()  # the NaN channel view is never fed...
    with pytest.raises(TrainingDivergedError):  # ...and stops training when it is
        nes2net_candidate(tiny_states_recipe())(train, clean)


def test_a_candidates_statistics_head_reads_the_views_its_recipe_names(tmp_path):
    """A head without its own views is fitted on the recipe's `data.views`, as `nes2net train` fits it."""
    train, clean = clean_and_broken_views(tmp_path)
    recipe = tiny_states_recipe(views=["clean"])
    recipe.training.statistics_head = {"inverse_strength": 0.1}
    calibration = FrontendCache(clean.states, clean.labels.copy(), clean.metadata)
    calibration.labels[:2] = 1 - calibration.labels[:2]  # two errors: a perfectly separated split has no finite fit
    scores = nes2net_candidate(recipe)(train, calibration)(clean)
    assert np.isfinite(scores).all()


def test_nes2net_candidate_learns_cached_states():
    recipe = tiny_states_recipe()
    cache = synthetic_cache(separation=1.5)
    cache.states = [state[-1:] for state in cache.states]  # one layer: the spectrogram front-end's
    report = cross_validate({"nes2net": nes2net_candidate(recipe)},
                            cache, cache, cache, plan_folds(cache, FAMILY.__getitem__), FAMILY.__getitem__)
    assert report["nes2net"]["pooled"]["eer"] < 20


def test_every_spoof_system_of_the_shared_sets_has_a_family():
    tables = sorted(SHARED.glob("*/metadata.csv"))
    if not tables:
        pytest.skip("../shared/data is absent")
    systems = {row["system"] for table in tables for row in csv.DictReader(table.open(encoding="utf-8"))
               if row["label"] == "spoof"}
    assert {family_of(system) for system in systems} <= set(FAMILIES)


def test_an_unknown_system_is_named():
    with pytest.raises(KeyError, match="no generator family for system 'NewTTS'"):
        family_of("NewTTS")
