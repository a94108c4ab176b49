"""A linear probe of the front-end's layers fused into a trained Nes2Net detector (`Nes2NetConfig.layer_statistics`).

Under leave-one-family-out cross-validation (`benchmarks/generalisation.py`) a logistic regression on the mean and
standard deviation of every frozen Whisper layer generalises to unseen generators at least as well as any Nes2Net
back-end trained on the same states, and the two fused do better on the test splits than either. This module folds
that fusion into one model folder, so `detect`, `pipeline`, the ONNX export and the Space run it unchanged:

    model = add_statistics_head(model, train_states, dev_states, inverse_strength=0.01, views=("clean",))

The probe (`fit_probe`, also the cross-validation's linear baseline) is fitted on the training states, the back-end's
calibrated log-odds and the probe's are fused by one logistic regression on the dev states (`fit_llr_fusion`), and the result is written
into the classifier's weights (the statistics columns of the bona fide logit) and the score calibration: the new
model's log-odds are the fused score exactly.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from modeling_nes2net import Nes2NetForAudioClassification
from modeling_nes2net.configuration_nes2net import MAX_CALIBRATION_OFFSET, MAX_CALIBRATION_SCALE
from modeling_nes2net.modeling_nes2net import layer_statistics, local_layer_statistics, pooled_local_layer_statistics
from training.corpus_sources import PAIR_SOURCE_COLUMN
from training.data.splices import PAIR_COLUMN
from training.frozen_frontend import CORPUS_COLUMN, FrontendCache, score_cache
from training.llr_fitting import fit_llr_fusion
from training.state_cache import VIEW_COLUMN, in_views

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from sklearn.preprocessing import StandardScaler


def pooled_statistics(cache: FrontendCache) -> np.ndarray:
    """`(n, layers * 2 * D)` float64: the mean and standard deviation over frames of every cached layer, as the model
    computes them (`layer_statistics`)."""
    return np.concatenate([layer_statistics(tuple(state.float()[:, None]), None).numpy() for state in cache.states]
                          ).astype(np.float64)


def local_statistics(state: torch.Tensor, window: int) -> torch.Tensor:
    """`(frames, layers * 2 * D)` float32: the local statistics (`local_layer_statistics` over `window` frames) at
    every frame of one trial's cached `state` `(layers, frames, D)`."""
    return local_layer_statistics(tuple(state.float()[:, None]), None, window)[0]


def window_statistics(cache: FrontendCache, window: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """The local statistics of every `step`-th frame (from `step // 2`) of every trial: `(windows, layers * 2 * D)`
    float32, and `(windows,)` the index of the trial each window belongs to."""
    rows = [local_statistics(state, window)[step // 2::step].numpy() for state in cache.states]
    return np.concatenate(rows), np.repeat(np.arange(len(rows)), [len(part) for part in rows])


def pooled_window_statistics(cache: FrontendCache, window: int) -> np.ndarray:
    """`(n, layers * 2 * D)` float64: the mean over every frame of each trial's local statistics over `window` frames,
    as the model computes them (`pooled_local_layer_statistics`; a linear probe of `window_statistics` scores a trial
    by the mean of its windows' log-odds on these)."""
    return np.concatenate([pooled_local_layer_statistics(tuple(state.float()[:, None]), None, window).numpy()
                           for state in cache.states]).astype(np.float64)


def probe_statistics(cache: FrontendCache, window: int | None) -> np.ndarray:
    """`(n, layers * 2 * D)` float64: what a probe `fit_probe(..., window=window)` scores, `pooled_statistics` or with
    `window` `pooled_window_statistics`."""
    return pooled_statistics(cache) if window is None else pooled_window_statistics(cache, window)


def copy_pairs(cache: FrontendCache) -> tuple[np.ndarray, np.ndarray]:
    """`(originals, copies)`, each `(pairs,)`: the indices of the bona fide trials of `cache` that have a vocoded copy
    in it, and of those copies, matched by the copy's `PAIR_COLUMN` (its clip's `utt_id`) and `PAIR_SOURCE_COLUMN`
    (its clip's corpus first), in the same view where trials name one (`VIEW_COLUMN`). Copies that name no clip
    (states cached before `PAIR_COLUMN` was kept) are refused."""
    empty = [""] * len(cache)
    clips, sources = cache.metadata.get(PAIR_COLUMN, empty), cache.metadata.get(PAIR_SOURCE_COLUMN, empty)
    if any(source and not clip for clip, source in zip(clips, sources)):
        raise ValueError(f"vocoded copies without `{PAIR_COLUMN}`: their states were cached before that column was "
                         "kept; delete those cache files to encode them again")
    views = cache.metadata.get(VIEW_COLUMN, empty)
    originals = {(cache.metadata[CORPUS_COLUMN][index], cache.metadata["utt_id"][index], views[index]): index
                 for index in np.flatnonzero(cache.labels == 1)}
    pairs = []
    for index, (clip, source, view) in enumerate(zip(clips, sources, views)):
        original = originals.get((source.split("/")[0], clip, view))
        if clip and original is not None:
            pairs.append((original, index))
    originals_index, copies_index = np.array(pairs, dtype=np.int64).reshape(-1, 2).T
    return originals_index, copies_index


def fit_probe(train: FrontendCache, inverse_strength: float = 1.0, views: Sequence[str] | None = None,
              corpora: Sequence[str] | None = None, window: int | None = None,
              window_step: int = 10, paired_weight: float | None = None) -> tuple[np.ndarray, float]:
    """A logistic regression (scikit-learn, balanced classes, L2 with `C = inverse_strength`) on standardised
    `pooled_statistics` of the training trials of `views` (`training.state_cache.VIEW_COLUMN`) and `corpora`
    (`CORPUS_COLUMN`; None: every view, every corpus): returns `(weights (features,), bias)` of its log-odds on the
    unstandardised statistics. With `window`, it is fitted on `window_statistics` instead (every `window_step`-th
    frame's statistics over `window` frames, each labelled as its trial), and scores `pooled_window_statistics`.
    With `paired_weight`, each bona fide trial and its vocoded copy among the trials of `views` (`copy_pairs`, the
    copy in any corpus) add a paired term: the difference of their statistics is a bona fide row and its negative a
    spoofed one, each weighted `paired_weight`, so the probe learns what tells a clip from its own copy (Wang and
    Yamagishi, ICASSP 2023, train on such pairs); with no pair among the trials there is no such term (a warning)."""
    if views is not None:
        train = in_views(train, views)
    kept = (np.ones(len(train), dtype=bool) if corpora is None else
            np.isin(np.asarray(train.metadata[CORPUS_COLUMN], dtype=object), list(corpora)))
    if window is not None:
        if paired_weight is not None:
            raise ValueError("the paired term is fitted on whole-clip statistics: set `window` or `paired_weight`")
        features, trials = window_statistics(train.select(kept), window, window_step)
        return fit_logistic(features, train.labels[kept][trials], inverse_strength)
    if paired_weight is None:
        return fit_logistic(pooled_statistics(train.select(kept)), train.labels[kept], inverse_strength)
    statistics = pooled_statistics(train)  # the copies too, wherever their corpus
    originals, copies = copy_pairs(train)
    if not len(copies):  # e.g. a cross-validation fold that holds out the copies' vocoder family
        logger.warning("no trial is a vocoded copy of a bona fide trial among them (`%s`): the probe has no paired "
                       "term", PAIR_COLUMN)
    return fit_logistic(statistics[kept], train.labels[kept], inverse_strength,
                        differences=statistics[originals] - statistics[copies], difference_weight=paired_weight)


def standardise(features: np.ndarray, chunk_rows: int = 4096) -> StandardScaler:
    """`(n, F)` float `features` standardised in place, `chunk_rows` rows at a time (`StandardScaler.partial_fit`, then
    each chunk scaled where it lies), so that no copy of the whole matrix is made; returns the fitted scaler."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    for start in range(0, len(features), chunk_rows):
        scaler.partial_fit(features[start:start + chunk_rows])
    mean, scale = scaler.mean_.astype(features.dtype), scaler.scale_.astype(features.dtype)
    for start in range(0, len(features), chunk_rows):
        chunk = features[start:start + chunk_rows]
        chunk -= mean
        chunk /= scale
    return scaler


def fit_logistic(features: np.ndarray, labels: np.ndarray, inverse_strength: float = 1.0,
                 scaler: StandardScaler | None = None, differences: np.ndarray | None = None,
                 difference_weight: float = 1.0) -> tuple[np.ndarray, float]:
    """A logistic regression (scikit-learn, balanced classes, L2 with `C = inverse_strength`) on standardised
    `features` `(n, F)` with `labels` `(n,)` (1 bona fide): `(weights (F,), bias)` of its log-odds on the
    unstandardised features (the scaler folded in). Given `scaler`, `features` are already standardised by it
    (`standardise`) and are fitted as they are (float32 stays float32: no copy). Given `differences` `(pairs, F)`
    (bona fide minus spoofed features of paired trials), each is also a bona fide row and its negative a spoofed
    one, weighted `difference_weight`, scaled as the features are but not centred."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if scaler is None:
        scaler = StandardScaler().fit(features)
        features = scaler.transform(features)
    sample_weight = None
    if differences is not None:
        scaled = differences / scaler.scale_
        sample_weight = np.r_[np.ones(len(features)), np.full(2 * len(scaled), difference_weight)]
        features = np.concatenate([features, scaled, -scaled])
        labels = np.r_[labels, np.ones(len(scaled), dtype=labels.dtype), np.zeros(len(scaled), dtype=labels.dtype)]
    probe = LogisticRegression(C=inverse_strength, class_weight="balanced", max_iter=2000)
    probe.fit(features, labels, sample_weight=sample_weight)
    weights = probe.coef_[0] / scaler.scale_
    return weights, float(probe.intercept_[0] - weights @ scaler.mean_)


def add_statistics_head(model: Nes2NetForAudioClassification, train: FrontendCache, calibration: FrontendCache,
                        inverse_strength: float = 1.0, views: Sequence[str] | None = None,
                        corpora: Sequence[str] | None = None, window: int | None = None,
                        ) -> Nes2NetForAudioClassification:
    """A copy of the calibrated `model` (of its class: a frame model keeps its frame classifier) with `layer_statistics`
    on, whose log-odds are `a * model_log_odds + b * probe_log_odds + c`: the probe fitted on `train`'s trials of
    `views` and `corpora` (`fit_probe`; with `window`, on windows of that many frames, and the model's
    `layer_statistics_window` set to it), `(a, b, c)` fitted on `calibration`. `model` is left unchanged."""
    config = model.config
    if config.layer_statistics:
        raise ValueError("the model already reads layer statistics")
    if config.layer_merge != "last" and train.states[0].shape[0] != config.num_frontend_layers:
        raise ValueError(f"the cached states hold {train.states[0].shape[0]} layers, the model reads "
                         f"{config.num_frontend_layers}")
    probe_weights, probe_bias = fit_probe(train, inverse_strength, views, corpora, window)
    fused_scores = np.stack([score_cache(model, calibration),
                             probe_statistics(calibration, window) @ probe_weights + probe_bias], axis=1)
    (model_weight, probe_weight), offset = fit_llr_fusion(fused_scores, calibration.labels)
    if max(abs(model_weight), abs(probe_weight)) > MAX_CALIBRATION_SCALE or abs(offset) > MAX_CALIBRATION_OFFSET:
        raise ValueError(f"the fusion diverged on {len(calibration)} calibration trials (weights {model_weight:.3g}, "
                         f"{probe_weight:.3g}): they are separated perfectly, so no weighting is better than another")

    fused_config = copy.deepcopy(config)
    fused_config.layer_statistics = True
    fused_config.layer_statistics_window = window
    fused = type(model)(fused_config)  # a frame model keeps its frame classifier
    state = model.state_dict()
    old = model.classifier
    scale = model_weight * config.calibration_scale
    weight = torch.zeros_like(fused.classifier.weight)
    weight[:, :old.in_features] = scale * old.weight
    weight[-1, old.in_features:] = torch.from_numpy(probe_weight * probe_weights).to(weight.dtype)
    state["classifier.weight"], state["classifier.bias"] = weight, scale * old.bias
    fused.load_state_dict(state)
    fused.config.calibration_scale = 1.0
    fused.config.calibration_offset = float(model_weight * config.calibration_offset + probe_weight * probe_bias
                                            + offset)
    return fused.eval()


__all__ = ["add_statistics_head", "copy_pairs", "fit_logistic", "fit_probe", "local_statistics", "pooled_statistics",
           "pooled_window_statistics", "probe_statistics", "standardise", "window_statistics"]
