"""Leave-one-family-out cross-validation of detectors on cached front-end states: how a candidate does on a kind of
generator, and on genuine sources, that its training never saw.

Each fold holds out every spoofed clip of one generator family (`training.data.families`) and a share of the genuine
sources (bona fide clips grouped by corpus and `system`, the corpus or page they come from), so neither the held-out
generators nor the held-out voices and rooms are in training. The candidate is trained on the rest of the `train`
splits (every cached view), calibrated on the rest of the `dev` splits, and scores the held-out clips of both splits
(clean view). Scores of all folds are pooled: one EER with a 95 % bootstrap interval, the share of held-out fakes
passed and of genuine clips flagged at the calibrated threshold (log-odds 0), and the EER of each fold.

    folds = plan_folds(pool, family_of)
    report = cross_validate({"logistic": logistic_probe, "nes2net": nes2net_candidate(recipe)},
                            train, dev, held_out, folds, family_of)

A candidate is a function `(train, calibration) -> scorer`, where `scorer(cache)` returns calibrated log-odds `(n,)`.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modeling_nes2net import Nes2NetForAudioClassification
from training.corpus_sources import PAIR_SOURCE_COLUMN
from training.llr_fitting import calibrate_model, fit_llr_fusion
from training.frozen_frontend import CORPUS_COLUMN, FrontendCache, score_cache
from training.recipe import Recipe
from training.train import train_on_states
from training.metrics import bootstrap_eer_interval, compute_eer
from training.statistics_head import add_statistics_head, fit_probe, probe_statistics

logger = logging.getLogger(__name__)

Scorer = Callable[[FrontendCache], np.ndarray]
Candidate = Callable[[FrontendCache, FrontendCache], Scorer]
BOOTSTRAP_RESAMPLES = 1000


@dataclass(frozen=True)
class Fold:
    """One fold: the spoof `family` it holds out and the genuine sources (`"corpus/system"`) held out with it."""

    family: str
    genuine_sources: tuple[str, ...]


def genuine_source(cache: FrontendCache, index: int) -> str:
    """The group a bona fide trial belongs to: its corpus and `system` (the source corpus or demo page)."""
    return f"{cache.metadata[CORPUS_COLUMN][index]}/{cache.metadata['system'][index]}"


def trial_families(cache: FrontendCache, family_of: Callable[[str], str]) -> np.ndarray:
    """`(n,)` object array: the family of each spoofed trial's `system`, "" for bona fide trials."""
    return np.array([family_of(system) if label == 0 else "" for label, system in
                     zip(cache.labels, cache.metadata["system"])], dtype=object)


def plan_folds(cache: FrontendCache, family_of: Callable[[str], str]) -> list[Fold]:
    """One fold per spoof family in `cache`; genuine sources dealt to folds largest first, each to the fold holding
    the fewest bona fide trials so far (ties to the earlier fold), so every fold holds out about the same share of
    genuine speech. Deterministic: families and sources are taken in sorted order."""
    families = sorted(set(trial_families(cache, family_of)) - {""})
    if len(families) < 2:
        raise ValueError(f"cross-validation needs at least two spoof families, found {families}")
    sizes: dict[str, int] = {}
    for index in np.flatnonzero(cache.labels == 1):
        source = genuine_source(cache, index)
        sizes[source] = sizes.get(source, 0) + 1
    held: list[list[str]] = [[] for _ in families]
    counts = [0] * len(families)
    for source in sorted(sizes, key=lambda name: (-sizes[name], name)):
        target = int(np.argmin(counts))
        held[target].append(source)
        counts[target] += sizes[source]
    return [Fold(family, tuple(sorted(sources))) for family, sources in zip(families, held)]


def held_out_mask(cache: FrontendCache, fold: Fold, family_of: Callable[[str], str]) -> np.ndarray:
    """`(n,)` bool: the trials of `cache` that `fold` holds out (its family's spoofs, its genuine sources, and the
    vocoded copies of clips of those sources, `PAIR_SOURCE_COLUMN`)."""
    families = trial_families(cache, family_of)
    sources = set(fold.genuine_sources)
    genuine = np.array([cache.labels[index] == 1 and genuine_source(cache, index) in sources
                        for index in range(len(cache))], dtype=bool)
    copies = np.isin(np.asarray(cache.metadata.get(PAIR_SOURCE_COLUMN, [""] * len(cache)), dtype=object),
                     list(sources))
    return genuine | copies | (families == fold.family)


# ----------------------------------------------------------------------------------------------- candidates


def trained_on(corpora: Iterable[str], candidate: Candidate) -> Candidate:
    """`candidate` trained on the trials of `corpora` alone (`CORPUS_COLUMN`), whatever else the training split holds,
    so that candidates with and without extra training corpora share one cache and the same folds."""
    corpora = list(corpora)

    def fit(train: FrontendCache, calibration: FrontendCache) -> Scorer:
        kept = np.isin(np.asarray(train.metadata[CORPUS_COLUMN], dtype=object), corpora)
        return candidate(train.select(kept), calibration)

    return fit


def logistic_probe(train: FrontendCache, calibration: FrontendCache, window: int | None = None,
                   **fit_options: Any) -> Scorer:
    """The linear baseline: `fit_probe` on `train` (with `fit_options`: `inverse_strength`, `views`, `corpora`,
    `paired_weight`), its log-odds calibrated on `calibration`. With `window`, the probe is fitted on windows of that
    many frames and scores a trial by the mean of its windows' log-odds."""
    weights, bias = fit_probe(train, window=window, **fit_options)
    (weight,), offset = fit_llr_fusion((probe_statistics(calibration, window) @ weights + bias)[:, None],
                                       calibration.labels)

    def scorer(cache: FrontendCache) -> np.ndarray:
        return weight * (probe_statistics(cache, window) @ weights + bias) + offset

    return scorer


def fused(candidates: Iterable[Candidate]) -> Candidate:
    """`candidates` fitted on the same trials, their scores fused by one linear logistic regression
    (`fit_llr_fusion`) fitted on the calibration split: `llr = scores @ weights + offset`."""
    candidates = list(candidates)

    def fit(train: FrontendCache, calibration: FrontendCache) -> Scorer:
        scorers = [candidate(train, calibration) for candidate in candidates]

        def scores(cache: FrontendCache) -> np.ndarray:
            return np.stack([scorer(cache) for scorer in scorers], axis=1)

        weights, offset = fit_llr_fusion(scores(calibration), calibration.labels)
        return lambda cache: scores(cache) @ weights + offset

    return fit


def nes2net_candidate(recipe: Recipe, device: str = "cpu") -> Candidate:
    """A Nes2Net back-end trained as `nes2net train` trains `recipe` (a recipe with `data.corpora`, whose corpora are
    not read: `training.train.train_on_states` on the fold's cached states, in a temporary folder, without a dev
    split, so the last `average_best` epochs are averaged), calibrated on the calibration split's log-odds
    (`calibrate_model`), with the recipe's `training.statistics_head` fused in on that split; it scores on
    `device`."""

    head = recipe.training.statistics_head

    def fit(train: FrontendCache, calibration: FrontendCache) -> Scorer:
        with tempfile.TemporaryDirectory(prefix="nes2net-fold-") as run_dir:
            fold = dataclasses.replace(recipe, data=dataclasses.replace(recipe.data, dev_split=None),
                                       training=dataclasses.replace(recipe.training, statistics_head=None))
            model = Nes2NetForAudioClassification.from_pretrained(train_on_states(fold, run_dir, (train, None)))
            model = model.eval().to(device)
        calibrate_model(model, score_cache(model, calibration), calibration.labels)
        if head is not None:
            # on the recipe's training views unless the head names its own, as `nes2net train` fits it
            model = add_statistics_head(model.cpu(), train, calibration, **{"views": recipe.data.views, **head})
            model = model.to(device)
        return lambda cache: score_cache(model, cache)

    return fit


# ----------------------------------------------------------------------------------------------- the run


def error_rates(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """EER % with its 95 % bootstrap interval, and the % of spoofs passed / genuine flagged at log-odds 0."""
    bonafide, spoof = scores[labels == 1], scores[labels == 0]
    low, high = bootstrap_eer_interval(bonafide, spoof, n_resamples=BOOTSTRAP_RESAMPLES)
    return {"eer": 100 * compute_eer(bonafide, spoof).eer, "eer_low": 100 * low, "eer_high": 100 * high,
            "spoof_passed": 100 * float((spoof >= 0).mean()), "bonafide_flagged": 100 * float((bonafide < 0).mean()),
            "bonafide": int(bonafide.size), "spoof": int(spoof.size)}


def test_report(scorer: Scorer, test: FrontendCache, channels: Mapping[str, FrontendCache] | None = None) -> dict:
    """`error_rates` of `scorer` on a test split: all of it, (when the corpus marks it) the `unseen_in_train` subset of
    generators no training clip came from against every bona fide trial, and, under `channels`, the whole split
    encoded through each named channel (`{name: cache}`, `state_cache.cache_conditions`)."""
    scores = scorer(test)
    report = {"all": error_rates(scores, test.labels)}
    if channels:
        report["channels"] = {name: error_rates(scorer(cache), cache.labels) for name, cache in channels.items()}
    unseen = np.array([str(value).lower() == "true" for value in test.metadata.get("unseen_in_train", [])])
    if unseen.size and (unseen & (test.labels == 0)).any():
        keep = unseen | (test.labels == 1)
        report["unseen"] = error_rates(scores[keep], test.labels[keep])
    return report


def cross_validate(candidates: Mapping[str, Candidate], train: FrontendCache, dev: FrontendCache,
                   held_out: FrontendCache, folds: list[Fold], family_of: Callable[[str], str]) -> dict:
    """Every candidate on every fold: trained on `train` minus the fold, calibrated on `dev` minus the fold, scored on
    the fold's trials of `held_out`. Returns `{candidate: {"pooled": error_rates, "folds": {family: {...}}}}`."""
    report = {}
    for name, candidate in candidates.items():
        scores, labels, per_fold = [], [], {}
        for fold in folds:
            scorer = candidate(train.select(~held_out_mask(train, fold, family_of)),
                               dev.select(~held_out_mask(dev, fold, family_of)))
            test = held_out.select(held_out_mask(held_out, fold, family_of))
            fold_scores = scorer(test)
            per_fold[fold.family] = {**error_rates(fold_scores, test.labels), "genuine_sources": fold.genuine_sources}
            logger.info("%s, held-out %s: EER %.1f %%", name, fold.family, per_fold[fold.family]["eer"])
            scores.append(fold_scores)
            labels.append(test.labels)
        report[name] = {"pooled": error_rates(np.concatenate(scores), np.concatenate(labels)), "folds": per_fold}
        logger.info("%s: pooled EER %.1f %%", name, report[name]["pooled"]["eer"])
    return report
