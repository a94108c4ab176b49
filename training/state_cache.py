"""Frozen front-end states of every split of several corpora, cached once per (corpus, split, view).

Candidates for the embedded default are compared under leave-one-family-out cross-validation
(`training.cross_validation`) and confirmed on the test splits; both read the same cached states, so a fold costs
seconds of back-end training instead of minutes of encoder time.

Views: `clean` is the stored audio as decoded (what a user scores); `channel` is the recipe's preprocessing (shortcut
removal) and augmentation (codecs, telephone channels, noise, reverberation), drawn from the recipe's seeds; it is
cached for the training splits only. `cache_conditions` encodes a split through one named channel condition at a
time (the test splits under codecs, for the robustness of a candidate).

    model = build_model(recipe.model, cache_dir / "weights")      # training.train
    caches = cache_corpora(model, built_corpora, cache_dir / "states", recipe.data)   # {(corpus, split, view): path}
    train, dev = training_states(caches, built_corpora)                            # train: both views; dev: clean

`nes2net train` does this for a recipe with `data.corpora` (`training.train`); the files depend on the front-end
alone, so a new back-end reuses them, and a new front-end needs a new cache folder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from modeling_nes2net import Nes2NetForAudioClassification
from training.batching import WaveformDataset, build_augmentation, build_preprocessing
from training.corpus_sources import PAIR_SOURCE_COLUMN, corpus_splits
from training.data import load_built_dataset
from training.data.splices import PAIR_COLUMN
from training.frozen_frontend import CORPUS_COLUMN, FrontendCache, cache_frontend_states
from training.recipe import VIEWS, DataSpec

logger = logging.getLogger(__name__)

METADATA_COLUMNS = ("label", "utt_id", "attack", "system", "speaker", "unseen_in_train", "segment_labels_10ms",
                    PAIR_COLUMN, PAIR_SOURCE_COLUMN)
"""Columns kept with each state (those a corpus lacks are left out): `system` names the genuine source of bona fide
clips and the generator of spoofed ones; cross-validation groups by it (and a vocoded clip by the genuine source of
the clip it copies, `PAIR_SOURCE_COLUMN`); a vocoded clip's `PAIR_COLUMN` is the `utt_id` of that clip (a paired
probe contrasts the two, `training.statistics_head.copy_pairs`); the 10 ms labels of partially spoofed utterances
(the splices builder's) train a frame head (`training.frame_model`)."""
TRAINING_SPLITS = ("train", "dev")
VIEW_COLUMN = "view"
"""Added by `training_states`: the view (`clean`, `channel`) each state was encoded from."""
SPLITS = (*TRAINING_SPLITS, "test")


def split_items(folder: str | Path, corpus: str, split: str, view: str, seed: int,
                augmentation: Mapping[str, Any] | None = None, preprocess: Mapping[str, Any] | None = None,
                max_rows: int | None = None) -> WaveformDataset:
    """Whole clips of one split of a built corpus (a random subset of `max_rows`, drawn by `seed`, when given), with
    `corpus` added; `view` `channel` through `preprocess` and `augmentation` (`training.batching`, seeded by `seed`),
    `clean` as stored."""
    rows = load_built_dataset(folder, split)
    if max_rows is not None and max_rows < len(rows):
        rows = rows.shuffle(seed=seed).select(range(max_rows))
    columns = [name for name in METADATA_COLUMNS if name in rows.column_names]
    rows = rows.select_columns(["audio", *columns]).add_column(CORPUS_COLUMN, [corpus] * len(rows))
    channel = view == "channel"
    return WaveformDataset(rows, "full", columns=[*columns, CORPUS_COLUMN], seed=seed,
                           augmentation=build_augmentation(augmentation) if channel else None,
                           preprocessing=build_preprocessing(preprocess) if channel else None)


def encoded_split(model: Nes2NetForAudioClassification, cache_dir: Path, folder: str | Path, corpus: str, split: str,
                  name: str, view: str, seed: int, augmentation: Mapping[str, Any] | None = None,
                  preprocess: Mapping[str, Any] | None = None) -> Path:
    """`cache_dir / f"{corpus}-{split}-{name}.safetensors"`, the states of one split of a built corpus in `view`
    (`split_items`), encoded unless that file exists."""
    path = cache_dir / f"{corpus}-{split}-{name}.safetensors"
    if not path.is_file():
        items = split_items(folder, corpus, split, view, seed, augmentation, preprocess)
        cache_frontend_states(model, items, [1 if view == "channel" else 0], desc=f"{corpus} {split} {name}").save(path)
    return path


def cache_corpora(model: Nes2NetForAudioClassification, corpora: Mapping[str, str | Path], cache_dir: Path,
                  data: DataSpec, splits: Iterable[str] = SPLITS) -> dict[tuple[str, str, str], Path]:
    """Encode `splits` of every corpus (clean; a vocoded corpus has only train) and, where `data.views` asks for it, the
    training splits again through the channel view of `data` (`channel_seed`, `preprocess`, `augmentation`), each into
    `cache_dir / f"{corpus}-{split}-{view}.safetensors"` unless that file exists; returns the paths by key."""
    paths = {}
    for corpus, folder in corpora.items():
        for split in corpus_splits((data.corpora or {}).get(corpus, {}), splits):
            for view in VIEWS if split in TRAINING_SPLITS and "channel" in data.views else VIEWS[:1]:
                paths[(corpus, split, view)] = encoded_split(model, cache_dir, folder, corpus, split, view, view,
                                                             data.channel_seed, data.augmentation, data.preprocess)
    return paths


def cache_conditions(model: Nes2NetForAudioClassification, corpora: Mapping[str, str | Path], cache_dir: Path,
                     conditions: Mapping[str, str], split: str = "test",
                     seed: int = 0) -> dict[tuple[str, str, str], Path]:
    """Encode `split` of every corpus once more through each channel condition of `conditions` (`{name: spec}`, a
    `training.channel` spec applied to every clip, nothing else changed), each into
    `cache_dir / f"{corpus}-{split}-{name}.safetensors"` unless that file exists; returns the paths by
    `(corpus, split, name)`. `seed` draws the randomness of conditions that have any."""
    return {(corpus, split, name): encoded_split(model, cache_dir, folder, corpus, split, name, "channel", seed,
                                                 {"channel": {"p": 1.0, "conditions": [spec]}})
            for corpus, folder in corpora.items() for name, spec in conditions.items()}


def load_states(paths: Mapping[tuple[str, str, str], Path], keys: Iterable[tuple[str, str, str]]) -> FrontendCache:
    """The caches of `keys` concatenated (metadata columns that some lack are filled with empty strings)."""
    caches = [FrontendCache.load(paths[key]) for key in keys]
    names = sorted({name for cache in caches for name in cache.metadata})
    for cache in caches:
        for name in names:
            cache.metadata.setdefault(name, [""] * len(cache))
    return sum(caches[1:], caches[0])


def training_states(paths: Mapping[tuple[str, str, str], Path], corpora: Iterable[str],
                    with_dev: bool = True, views: Iterable[str] = VIEWS) -> tuple[FrontendCache, FrontendCache | None]:
    """(train, dev) of `corpora`: every train split in `views` (each trial's view in `VIEW_COLUMN`), every dev
    split that `paths` holds clean (None without `with_dev`)."""
    corpora = list(corpora)
    caches = []
    for view in views:
        cache = load_states(paths, [(name, "train", view) for name in corpora])
        cache.metadata[VIEW_COLUMN] = [view] * len(cache)
        caches.append(cache)
    return (sum(caches[1:], caches[0]),
            load_states(paths, [(name, "dev", "clean") for name in corpora if (name, "dev", "clean") in paths])
            if with_dev else None)


def in_views(cache: FrontendCache, views: Iterable[str]) -> FrontendCache:
    """The trials of `cache` (one with `VIEW_COLUMN`) encoded in one of `views`."""
    return cache.select(np.isin(np.asarray(cache.metadata[VIEW_COLUMN], dtype=object), list(views)))
