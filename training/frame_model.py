"""The frame head of the embedded default: where in a recording the machine-made speech is, on the default's frozen
Whisper encoder, trained on cached encoder states of spliced real audio.

    python -m training.frame_model                      # everything; writes modeling_nes2net/default_frame_model
    python -m training.frame_model --max-clips 60 --output-dir runs/frames/model   # a first, small run

Steps (the recipe: `training/recipes/frozen_frontend/frames.yaml`), each a function here or in the library:
1. `build_sources`: each corpus of the recipe built twice, by `nes2net data build splices` (genuine hosts with 1-3
   machine-made pieces of the same split, labelled per 10 ms; the test split from sources unseen in training) and by
   the generic builder (`training.corpus_sources.build_demo_dataset`: whole genuine and whole spoofed clips); with
   `data.splice_draws`, spliced again with other seeds for training; with `data.vocoders`, as paired splices of its
   clips' own copy-syntheses.
2. `initial_frame_model`: the base model folder (the shipped default) as `Nes2NetForAudioFrameClassification`:
   its encoder, layer merge, back-end and utterance head kept, the frame classifier new.
3. `frame_state_files` (`training.frozen_frontend`): the train splits of both builds of every corpus encoded once
   per view (view 0 clean, the others whole-clip through one channel condition each: codec round trips of the whole
   splice, telephone paths, noise, reverberation; every condition keeps the length and removes codec delay, so the
   10 ms labels still hold), their dev splits clean; each state kept with its 10 ms labels.
4. `nes2net train`'s loop (`training.train.Trainer`, the recipe's `training` section, in `WORK_DIR/run`) with
   `frame_loss`: on random windows of those whole-clip states, the frame loss on every frame (the label of the 10 ms
   cell its centre falls in) plus, unless `freeze_utterance_model`, the utterance loss of the window (spoof when any
   of its frames is); the mean of the last epochs' weights; with the utterance model trained, its log-odds are
   calibrated again on dev (`training.llr_fitting`).
5. The folder (`save_model_folder`, no code files: package data like the default). `load_model(None)`, so `nes2net
   detect`, the Space and the demo, score with `default_frame_model` (`model_loading.DEFAULT_FRAME_MODEL_DIR`) when it is
   there.

`freeze_utterance_model: true` trains the frame classifier alone on the frozen trunk: the utterance log-odds stay the
base model's to the bit, so the frame model can replace the default without changing one verdict. Paired vocoded
stretches (a genuine clip with a span replaced by its own copy-synthesis, `splices.make_paired_splice`) are added by
`data.vocoders` (e.g. `[world, griffin-lim]`): each corpus' train and dev clips are vocoded first (`nes2net data build
vocoded`, copies cached across runs). The shipped recipe leaves them out: with WORLD's pairs the held-back splices
(which hold none) were localised no better, for half again as much encoding (the figures are in the commit that
says so).
"""

from __future__ import annotations

import argparse
import copy
import csv
import functools
import json
import logging
import re
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import yaml

from hub_cards.published_files import BUILD_INFO_FILE
from modeling_nes2net import Nes2NetForAudioFrameClassification, save_model_folder
from modeling_nes2net.model_loading import DEFAULT_FRAME_MODEL_DIR
from modeling_nes2net.folder import remote_code_files
from modeling_nes2net.detection import MIN_STRETCH_SECONDS
from modeling_nes2net.localisation import (
    CELL_SECONDS,
    flagging_threshold,
    frame_cell_scores,
    spoofed_stretches,
    stretch_iou,
)
from modeling_nes2net.model_calls import frame_log_odds
from training.data import build_dataset
from training.data.splices import SpliceOptions, SplicesBuilder
from training.data.vocoded import METADATA_FILE, default_cache_dir, write_vocoded_corpus
from training.data.vocoders import get_vocoder
from training.corpus_sources import build_demo_dataset
from training.default_model import REPO_ROOT, make_deterministic, repository_path
from training.divergence import TrainingDivergedError
from training.frozen_frontend import FrontendCache, cache_frontend_states, forward_states
from training.llr_fitting import fit_llr_fusion
from training.metrics import compute_eer
from training.segment_metrics import IOU_HIT
from training.localisation import LABEL_COLUMN, frame_targets
from training.recipe import Recipe, states_recipe
from training.state_cache import TRAINING_SPLITS, load_states, split_items
from training.statistics_head import fit_logistic, local_statistics, standardise
from training.train import train_on_states

if TYPE_CHECKING:
    from sklearn.preprocessing import StandardScaler

logger = logging.getLogger(__name__)

DEFAULT_RECIPE = REPO_ROOT / "training" / "recipes" / "frozen_frontend" / "frames.yaml"
DEFAULT_WORK_DIR = REPO_ROOT / "runs" / "frames"
FRAME_STATISTICS_KEYS = ("window", "inverse_strength", "frame_step", "genuine_flagged")
"""`model.frame_statistics` of a recipe: `add_frame_statistics_head`'s arguments."""
SOURCE_KINDS = ("splices", "clips")
"""The two builds of each corpus: spliced utterances (10 ms labels) and its whole clips (one label each)."""
NUM_THREADS = 2


@dataclass
class FrameRecipe:
    """A `training/recipes/frozen_frontend/frames.yaml` file: `model` (`base`: the model folder the frame model
    starts from, relative to the repository; `freeze_utterance_model`), `corpora` (name -> `{source}`), `data`
    (`seed`, `views`, `max_clips`, `augmentation` as in `training.batching`, `splice_draws`, `vocoders`, and the
    windows: `crop_frames`, `mask_channels`, `mask_frames`) and `training` (`nes2net train`'s training section); `backend` is
    the recipe the `Trainer` runs (the corpora, windows and training section)."""

    base: str
    freeze_utterance_model: bool
    corpora: dict[str, dict]
    data: dict
    backend: Recipe
    path: str
    frame_statistics: dict | None = None

    @classmethod
    def load(cls, path: str | Path) -> FrameRecipe:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        unknown = set(raw) - {"model", "corpora", "data", "training"}
        if unknown:
            raise ValueError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
        model = raw["model"]
        statistics = model.get("frame_statistics")
        if statistics is not None:
            unknown = set(statistics) - set(FRAME_STATISTICS_KEYS)
            if unknown or not isinstance(statistics.get("window"), int):
                raise ValueError(f"{path}: model.frame_statistics takes {', '.join(FRAME_STATISTICS_KEYS)} (window "
                                 f"an odd number of frames), not {statistics}")
        return cls(model["base"], bool(model.get("freeze_utterance_model", False)), raw["corpora"], raw["data"],
                   states_recipe(raw["corpora"], raw["data"], raw.get("training")), str(path), statistics)


def extra_draw(source_name: str) -> int:
    """The splice draw a source of `build_sources` holds (`splices{draw}-{corpus}`, draw >= 1), 0 for any other."""
    match = re.match(r"splices(\d+)-", source_name)
    return int(match.group(1)) if match else 0


def build_sources(recipe: FrameRecipe, data_dir: Path) -> dict[str, Path]:
    """Each corpus of the recipe built (once) into `data_dir / f"{kind}-{name}"` for each of `SOURCE_KINDS`; with
    `data.splice_draws` N > 1, spliced N - 1 more times with splice seeds 1 .. N - 1 (`splices{seed}-{name}`: new
    pieces, places and cross-fades in the same hosts; only their train splits are encoded, so dev and the held-back
    test split stay the first draw's); with `data.vocoders`, as paired splices (`paired-{name}`) of its train and dev
    clips' copy-syntheses by those vocoders (`vocoded-{name}`, copies cached in `vocoded.default_cache_dir()`);
    returns the folder name -> built folder."""
    built = {}
    vocoders = [get_vocoder(name) for name in recipe.data.get("vocoders") or ()]
    draws = [f"splices{seed}" for seed in range(1, recipe.data.get("splice_draws", 1))]
    for name, corpus in recipe.corpora.items():
        source = REPO_ROOT / corpus["source"]
        for kind in (*SOURCE_KINDS, *draws, *(["paired"] if vocoders else [])):
            folder = data_dir / f"{kind}-{name}"
            if (folder / BUILD_INFO_FILE).is_file():
                pass
            elif kind == "clips":
                build_demo_dataset(source, folder)
            elif kind == "splices":
                build_dataset("splices", source, folder, progress=False)
            elif kind in draws:
                build_dataset(SplicesBuilder(options=SpliceOptions(seed=extra_draw(folder.name))), source, folder,
                              progress=False)
            else:
                vocoded = data_dir / f"vocoded-{name}"
                if not (vocoded / METADATA_FILE).is_file():
                    with open(source / METADATA_FILE, encoding="utf-8", newline="") as table:
                        splits = sorted({row["split"] for row in csv.DictReader(table)} & set(TRAINING_SPLITS))
                    write_vocoded_corpus(source, vocoded, vocoders, splits=splits, cache_dir=default_cache_dir(),
                                         progress=False)
                build_dataset("splices", vocoded, folder, progress=False)
            built[folder.name] = folder
    return built


def initial_frame_model(recipe: FrameRecipe) -> Nes2NetForAudioFrameClassification:
    """The recipe's base model with a new frame classifier (seeded by the training seed); `freeze_utterance_model`
    applied when the recipe asks."""
    torch.manual_seed(recipe.backend.training.seed)
    model = Nes2NetForAudioFrameClassification.from_pretrained(REPO_ROOT / recipe.base, allow_new_weights=True)
    if recipe.freeze_utterance_model:
        model.freeze_utterance_model()
    return model.eval()


def read_state_files(paths: Sequence[Path]) -> FrontendCache | None:
    """The cache files `paths` read back as one cache, in order; None when there are none."""
    return load_states({path: path for path in paths}, paths) if paths else None


def frame_state_files(model: Nes2NetForAudioFrameClassification, recipe: FrameRecipe, sources: Mapping[str, Path],
                      cache_dir: Path) -> dict[str, list[Path]]:
    """The cache files of the encoder states of every source, by split (`train`, `dev`): each split and view encoded
    once into `cache_dir / f"{source}-{split}-{view}.safetensors"` (at most `data.max_clips` clips of each, a seeded
    random subset, named `...-max{N}`) and reused on later runs. The states depend on the frozen encoder alone, so a
    new back-end of the default reuses them; a new encoder needs a new `cache_dir`."""
    data, files = recipe.data, {"train": [], "dev": []}
    subset = f"-max{data['max_clips']}" if data.get("max_clips") else ""
    for name, folder in sources.items():
        splits = json.loads((folder / BUILD_INFO_FILE).read_text(encoding="utf-8"))["splits"]
        for split in TRAINING_SPLITS:
            if split not in splits or (split != "train" and extra_draw(name)):
                continue
            for view in range(data.get("views", 1) if split == "train" else 1):
                path = cache_dir / f"{name}-{split}-{view}{subset}.safetensors"
                if not path.is_file():
                    items = split_items(folder, name, split, "channel" if view else "clean", data["seed"],
                                        data.get("augmentation"), data.get("preprocess"), data.get("max_clips"))
                    cache_frontend_states(model, items, [view], desc=f"{name} {split} view {view}").save(path)
                files[split].append(path)
    return files


def cell_labels(cache: FrontendCache, index: int, frames: int, cells_per_frame: float) -> np.ndarray:
    """The 10 ms labels of trial `index` of `cache`: its `segment_labels_10ms`, or, for a whole clip (which has
    none), its utterance label over every cell its `frames` frames reach."""
    labels = cache.metadata.get(LABEL_COLUMN, [""] * len(cache))[index]
    if len(labels):
        return np.asarray(labels, np.int64)
    return np.full(int(np.ceil(frames * cells_per_frame)) + 1, int(cache.labels[index]), np.int64)


def trial_frame_targets(model: Nes2NetForAudioFrameClassification, cache: FrontendCache, index: int) -> np.ndarray:
    """`(frames,)` int64 labels of the frames of trial `index` of `cache`: the 10 ms cell each frame centre falls in
    (`cell_labels`, `localisation.frame_targets`), -100 past the labelled cells."""
    frames = cache.states[index].shape[1]
    cells_per_frame = frame_seconds(model) / CELL_SECONDS
    return frame_targets(cell_labels(cache, index, frames, cells_per_frame), model.frame_times(frames).numpy())


def frame_seconds(model: Nes2NetForAudioFrameClassification) -> float:
    """The front-end's frame stride in seconds (20 ms for Whisper and SSL encoders)."""
    return model.nes2net.frontend.frame_geometry().stride / model.config.sampling_rate


def frame_statistics(model: Nes2NetForAudioFrameClassification, trials: FrontendCache | Sequence[Path], window: int,
                     frame_step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Every `frame_step`-th labelled frame of every trial of `trials` (a cache, or cache files read one at a time, so
    that only the statistics are held): `(frames, statistics_size)` float32 local statistics of its cached states over
    `window` frames (`local_layer_statistics`, as the model computes them) and `(frames,)` labels
    (`trial_frame_targets`)."""
    parts, labels = [], []
    caches = (FrontendCache.load(path) for path in trials) if isinstance(trials, Sequence) else [trials]
    for cache in caches:
        pieces = []
        for index, state in enumerate(cache.states):
            kept = np.arange(frame_step // 2, state.shape[1], frame_step)
            targets = trial_frame_targets(model, cache, index)[kept]
            kept, targets = kept[targets != -100], targets[targets != -100]
            statistics = local_statistics(state, window)
            pieces.append(statistics[torch.from_numpy(kept)].numpy())
            labels.append(targets)
        parts.append(np.concatenate(pieces))  # one block per file: the small pieces' heap memory is reused, not kept
    if len(parts) == 1:  # one cache: its block is the matrix
        return parts[0], np.concatenate(labels)
    # the blocks copied into one matrix and each released once copied: it is held once, not twice as by np.concatenate
    features = np.empty((sum(len(part) for part in parts), parts[0].shape[1]), np.float32)
    start, parts = 0, parts[::-1]
    while parts:
        part = parts.pop()
        features[start:start + len(part)] = part
        start += len(part)
    return features, np.concatenate(labels)


def add_frame_statistics_head(model: Nes2NetForAudioFrameClassification, train: FrontendCache | Sequence[Path],
                              dev: FrontendCache | None, window: int, inverse_strength: float | Sequence[float] = 0.01,
                              frame_step: int = 10, genuine_flagged: float | None = None,
                              ) -> Nes2NetForAudioFrameClassification:
    """A copy of `model` whose frame classifier reads the local statistics of the encoder states alone
    (`Nes2NetConfig.frame_statistics_window = window`; the trunk's columns zero): a logistic regression
    (`fit_logistic`, balanced classes, L2 with `C = inverse_strength`; given several, the one whose regression has
    the lowest frame EER on the spliced recordings of `dev`, `select_inverse_strength`: on whole clips a frame EER
    measures the utterance, not where) on `frame_statistics` of `train`'s trials (or cache files), its frame
    log-odds calibrated on `dev`'s (`fit_llr_fusion`; without `dev`, the regression's own). With `genuine_flagged`,
    `config.stretch_margin` is set to the least margin (`stretch_margin`) at which at most that share of `dev`'s bona
    fide recordings shows a spoofed stretch: a stretch is flagged only around a confident core, and the frame log-odds
    stay calibrated; and `config.stretch_edge`, where stretches end, to the one that finds the most of `dev`'s splices
    (`stretch_edge`; 0 without any). The utterance model is untouched, so every utterance score stays the base's."""
    if dev is not None and not len(dev):
        raise ValueError("the dev states hold no trials: give None to fit without calibration")
    strengths = [inverse_strength] if isinstance(inverse_strength, (int, float)) else list(inverse_strength)
    features, labels = frame_statistics(model, train, window, frame_step)
    scaler = standardise(features)  # in place: the train matrix is the largest thing held
    spliced, dev_parts = None, []  # dev_parts: (features, labels) of dev's spliced recordings, then of its whole clips
    if dev is not None:
        has_cells = np.array([len(cells) > 0 for cells in dev.metadata.get(LABEL_COLUMN, [""] * len(dev))], bool)
        spliced = dev.select(has_cells)
        dev_parts = [frame_statistics(model, part, window, frame_step) for part in (spliced, dev.select(~has_cells))
                     if len(part)]
    if len(strengths) == 1:
        weights, bias = fit_logistic(features, labels, strengths[0], scaler)
    elif spliced is None or not len(spliced):
        raise ValueError("several frame_statistics.inverse_strength values are chosen between on the dev split's "
                         "spliced recordings, and there are none")
    else:
        weights, bias = select_inverse_strength(features, labels, *dev_parts[0], strengths, scaler)
    del features
    scale, offset = 1.0, 0.0
    if dev_parts:
        dev_features, dev_labels = (np.concatenate(columns) for columns in zip(*dev_parts))
        (scale,), offset = fit_llr_fusion((dev_features @ weights + bias)[:, None], dev_labels)
    fitted = copy.deepcopy(model)
    fitted.config.frame_statistics_window = window
    config = fitted.config
    fitted.frame_classifier = torch.nn.Linear(config.frame_feature_size, config.num_labels)
    with torch.no_grad():
        fitted.frame_classifier.weight.zero_()
        fitted.frame_classifier.bias.zero_()
        fitted.frame_classifier.weight[-1, config.feature_size:] = torch.from_numpy(scale * weights).float()
        fitted.frame_classifier.bias[-1] = scale * bias + offset
    fitted.eval()
    if genuine_flagged is not None:
        if dev is None:
            raise ValueError("frame_statistics.genuine_flagged is measured on the dev states, and none were given")
        margin = stretch_margin(fitted, dev.select(dev.labels == 1), genuine_flagged)
        logger.info("stretch margin %.2f: at most %.0f %% of the dev split's bona fide recordings show a spoofed "
                    "stretch", margin, 100 * genuine_flagged)
        fitted.config.stretch_margin = margin
        spliced = spliced.select(spliced.labels == 0)
        if len(spliced):
            fitted.config.stretch_edge = stretch_edge(fitted, spliced)
            logger.info("stretch edge %.2f chosen on %d dev splices", fitted.config.stretch_edge, len(spliced))
        else:
            logger.info("no spliced dev recordings: stretches end at the threshold (stretch edge 0)")
    return fitted


def select_inverse_strength(features: np.ndarray, labels: np.ndarray, dev_features: np.ndarray,
                            dev_labels: np.ndarray, strengths: Sequence[float], scaler: StandardScaler | None = None,
                            ) -> tuple[np.ndarray, float]:
    """`fit_logistic` of `(n, F)` `features` (standardised by `scaler` when given) with `(n,)` `labels` at each L2
    inverse strength of `strengths`; returns the `(weights, bias)` on unstandardised features whose frame EER on
    `dev_features` / `dev_labels` is the lowest (the first of equals), each fit's EER logged."""
    best = None
    for strength in strengths:
        weights, bias = fit_logistic(features, labels, strength, scaler)
        scores = dev_features @ weights + bias
        eer = compute_eer(scores[dev_labels == 1], scores[dev_labels == 0]).eer
        logger.info("frame probe, C = %g: dev frame EER %.2f %%", strength, 100 * eer)
        if best is None or eer < best[0]:
            best = (eer, strength, weights, bias)
    logger.info("frame probe: C = %g chosen", best[1])
    return best[2], best[3]


def stretch_margin(model: Nes2NetForAudioFrameClassification, bonafide: FrontendCache, share: float) -> float:
    """The least `Nes2NetConfig.stretch_margin` (>= 0) at which at most `share` of the `bonafide` trials (whole
    recordings) show a stretch the detector flags at threshold 0: a core of `detection.MIN_STRETCH_SECONDS` whose
    frame log-odds are all below `-margin`."""
    thresholds = [flagging_threshold(cell_log_odds(model, state, round(state.shape[1] * frame_seconds(model)
                                                                     / CELL_SECONDS)), MIN_STRETCH_SECONDS)
                  for state in bonafide.states]
    # a recording is flagged at margin m when its flagging threshold is below -m: at most k = floor(share * n) are when
    # -m is at most the k-th lowest threshold (0-based)
    allowed = int(np.floor(share * len(thresholds)))
    if allowed >= len(thresholds):
        return 0.0
    return max(0.0, -float(np.sort(thresholds)[allowed]))


def stretch_edge(model: Nes2NetForAudioFrameClassification, spliced: FrontendCache, steps: int = 10) -> float:
    """The `Nes2NetConfig.stretch_edge`, among `steps + 1` evenly spaced from 0 to the model's `stretch_margin`, at
    which the stretches the detector flags at threshold 0 find the spoofed spans (`stretch_iou` >= `IOU_HIT`) of the
    most `spliced` trials (recordings with `segment_labels_10ms`), ties going to the higher mean IoU, then the smaller
    edge. The edge moves where stretches end, never whether a recording shows one."""
    margin = model.config.stretch_margin
    timelines = [(cell_log_odds(model, state, len(labels)), np.asarray(labels))
                 for state, labels in zip(spliced.states, spliced.metadata[LABEL_COLUMN])]
    best = None
    for edge in np.linspace(0.0, margin, steps + 1):
        ious = np.array([stretch_iou(spoofed_stretches(cells, 0.0, MIN_STRETCH_SECONDS, margin, edge), labels)
                         for cells, labels in timelines])
        found = float(np.mean(ious >= IOU_HIT))
        logger.info("stretch edge %.2f: %.1f %% of the dev splices found, mean IoU %.3f", edge, 100 * found,
                    ious.mean())
        if best is None or (found, ious.mean()) > best[0]:
            best = ((found, ious.mean()), float(edge))
    return best[1]


def cell_log_odds(model: Nes2NetForAudioFrameClassification, state: torch.Tensor, cells: int) -> np.ndarray:
    """The frame head's log-odds of one trial's cached states `(layers, frames, features)`, whole, on `cells` 10 ms
    cells (`frame_cell_scores`): `(cells,)`."""
    with torch.inference_mode():
        states = tuple(state.float()[:, None])
        _, trunk, _ = forward_states(model, states, None)
        scores = frame_log_odds(model.frame_logits_of(states, trunk), [state.shape[1]])[0]
    return frame_cell_scores(scores, model.frame_times(len(scores)).numpy(), cells)


def frame_loss(model: Nes2NetForAudioFrameClassification, batch: dict, cache: FrontendCache,
               train_utterance_model: bool = True) -> torch.Tensor:
    """A `frozen_frontend.StatesLoss`: the frame loss of a `collate_states` batch of windows of `cache`'s states,
    each frame labelled by the 10 ms cell its centre falls in (`localisation.frame_targets`), plus the utterance loss
    of each window (spoof when any of its frames is) when `train_utterance_model`. Without it the trunk runs in eval
    mode, so its batch statistics stay the base model's."""
    if not train_utterance_model:
        model.nes2net.eval()
    targets = [torch.from_numpy(trial_frame_targets(model, cache, index)[window])
               for index, window in zip(batch["index"].tolist(), batch["windows"])]
    frame_labels = torch.nn.utils.rnn.pad_sequence(targets, batch_first=True, padding_value=-100).to(model.device)
    states = tuple(state.to(model.device) for state in batch["hidden_states"])
    frame_mask = None if batch["frame_mask"] is None else batch["frame_mask"].to(model.device)
    with torch.set_grad_enabled(train_utterance_model and torch.is_grad_enabled()):
        _, trunk, pooled = forward_states(model, states, frame_mask)
    loss = model.compute_frame_loss(model.frame_logits_of(states, trunk, frame_mask), frame_labels)
    if train_utterance_model:
        window_labels = torch.tensor([int(not (target == 0).any()) for target in targets], device=model.device)
        loss = loss + model.compute_loss(model.calibration(model.classifier(pooled)), window_labels)
    return loss


def export_frame_model(model: Nes2NetForAudioFrameClassification, output_dir: Path) -> Path:
    """The frame model folder as package data (weights, config, feature extractor; no code files), atomically."""
    save_model_folder(model, output_dir)
    for name in remote_code_files():
        (output_dir / name).unlink()
    return output_dir


def run(work_dir: Path, output_dir: Path, recipe: FrameRecipe, num_threads: int = NUM_THREADS) -> Path:
    """The whole pipeline (see the module docstring) on `num_threads` threads; returns the exported folder."""
    make_deterministic(num_threads)
    started = time.perf_counter()
    sources = build_sources(recipe, work_dir / "data")
    model = initial_frame_model(recipe)
    base_training_data = model.config.training_data
    files = frame_state_files(model, recipe, sources, work_dir / "cache")
    dev = read_state_files(files["dev"])
    encoded = time.perf_counter()
    trials = sum(FrontendCache.stored_trials(path) for path in files["train"])
    logger.info("%d train states (%d dev) in %.1f minutes", trials, len(dev or ()), (encoded - started) / 60)
    if recipe.frame_statistics is not None:  # a linear probe: the train states are read one file at a time
        model = add_frame_statistics_head(model, files["train"], dev, **recipe.frame_statistics)
        head = (f"a linear probe of the local statistics of the encoder's layers ({model.config.frame_statistics_window}"
                " frames)")
    else:
        train = read_state_files(files["train"])
        run_dir = work_dir / "run"
        shutil.rmtree(run_dir, ignore_errors=True)  # minutes of training: a rerun starts over
        frozen = recipe.freeze_utterance_model
        loss = functools.partial(frame_loss, cache=train, train_utterance_model=not frozen)
        # a frozen utterance model keeps the base's calibration: no dev split, so nothing is fitted again
        final = train_on_states(recipe.backend, run_dir, (train, None if frozen else dev), model, loss)
        model = Nes2NetForAudioFrameClassification.from_pretrained(final)
        head = "a frame classifier on the back-end's output"
    recipe_file = repository_path(recipe.path) or Path(recipe.path).name  # no folder of the machine it was built on
    frame_head = (f"Frame head ({head}) fitted by python -m training.frame_model ({recipe_file}) on {trials} cached "
                  f"encodings of spliced and whole clips of {', '.join(recipe.corpora)} (train splits).")
    # the utterance model stays the base's unless the trainer trained it: then the base's account no longer holds
    kept = base_training_data if recipe.frame_statistics is not None or recipe.freeze_utterance_model else None
    model.config.training_data = f"Utterance model: {kept} {frame_head}" if kept else frame_head
    logger.info("back-end trained in %.1f minutes", (time.perf_counter() - encoded) / 60)
    return export_frame_model(model, output_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.frame_model", description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE, help="a frame-model recipe YAML")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR,
                        help="built sources, cached states and the training history (reused)")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_FRAME_MODEL_DIR,
                        help="the frame model folder")
    parser.add_argument("--max-clips", type=int, help="encode at most this many clips of each source split")
    parser.add_argument("--freeze-utterance-model", action="store_true", default=None,
                        help="train the frame classifier alone (overrides the recipe)")
    parser.add_argument("--threads", type=int, default=NUM_THREADS, help="torch intra-op threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    recipe = FrameRecipe.load(args.recipe)
    if args.max_clips is not None:
        recipe.data = {**recipe.data, "max_clips": args.max_clips}
    if args.freeze_utterance_model:
        recipe.freeze_utterance_model = True
    try:
        run(args.work_dir, args.output_dir, recipe, args.threads)
    except TrainingDivergedError as error:
        logger.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
