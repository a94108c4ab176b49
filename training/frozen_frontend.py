"""Training the layer merge, back-end and classifier of a model whose pretrained front-end stays frozen, on its
hidden states computed once.

With a frozen front-end every epoch would recompute the same encoder on the same audio; here each training clip is
encoded a fixed number of times instead (view 0 clean, the others through the recipe's augmentation), and the epochs
run on those cached states, in seconds on a CPU. `nes2net train` (`training.train.Trainer`) trains on them for a
recipe with `data.corpora` (the embedded default's, `training.default_model`), with the same loop, averaging and
calibration as on audio:

    train_cache = cache_frontend_states(model, WaveformDataset(train, "full", ...), views=range(2))
    items = StatesDataset(train_cache, crop_frames=100, mask_channels=0, mask_frames=0, seed=0)  # random windows
    loss = states_loss(model, collate_states([items[0], items[1]]))
    scores = score_cache(model, dev_cache)                                         # (n,) calibrated log-odds

Data flow: waveform items -> `model.nes2net` hidden states `(layers, frames, D)` float16 -> `FrontendCache` ->
`StatesDataset` windows -> `Nes2NetModel.forward_frontend_states` -> classifier -> loss; after each epoch the dev
log-odds, their pooled EER and the EER per corpus and per system (`dev_report`) are logged.

`train_backend` is the older in-memory loop that the frame head (`training.frame_model`) and the front-end benchmark
(`benchmarks/frontends.py`) still train with.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from datasets import Dataset, interleave_datasets
from safetensors import safe_open
from safetensors.torch import save_file
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm

from modeling_nes2net import Nes2NetForAudioClassification
from modeling_nes2net.atomic import atomic_output
from modeling_nes2net.decision import log_odds
from modeling_nes2net.frontends_nes2net import length_mask
from training.batching import EpochPlan, WaveformDataset
from training.divergence import refuse_non_finite_loss, refuse_non_finite_weights
from training.metrics import breakdown, compute_eer
from training.schedules import build_schedule

logger = logging.getLogger(__name__)

CORPUS_COLUMN = "corpus"


def mix_corpora(corpora: Mapping[str, tuple[Dataset, float]], seed: int, columns: Iterable[str]) -> Dataset:
    """One training split from several corpora: `name -> (split, sampling weight)`, interleaved by
    `datasets.interleave_datasets` with probabilities proportional to the weights until every corpus is exhausted
    (smaller ones repeat), keeping `columns` and adding the corpus name as `corpus`."""
    columns = list(columns)
    names = list(corpora)
    splits = [corpora[name][0].select_columns(columns).add_column(CORPUS_COLUMN, [name] * len(corpora[name][0]))
              for name in names]
    weights = np.array([corpora[name][1] for name in names], dtype=np.float64)
    if len(names) == 1:
        return splits[0]
    if not (weights > 0).all():
        raise ValueError(f"corpus sampling weights must be positive, got {dict(zip(names, weights.tolist()))}")
    features = splits[0].features
    probabilities = (weights / weights.sum()).tolist()
    return interleave_datasets([split.cast(features) for split in splits], probabilities=probabilities, seed=seed,
                               stopping_strategy="all_exhausted")


@dataclass
class FrontendCache:
    """Front-end hidden states of trials: `states[i]` `(layers, frames, D)` float16, `labels` `(n,)` (1 bona fide),
    and metadata columns (`utt_id`, `corpus`, `attack`, ...) of equal length."""

    states: list[torch.Tensor]
    labels: np.ndarray
    metadata: dict[str, list] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.states)

    def __add__(self, other: FrontendCache) -> FrontendCache:
        return FrontendCache(self.states + other.states, np.concatenate([self.labels, other.labels]),
                             {name: values + other.metadata[name] for name, values in self.metadata.items()})

    def save(self, path: str | os.PathLike) -> None:
        """One safetensors file: `state.{i}` tensors, labels, and the metadata as JSON in its header; atomic."""
        tensors = {f"state.{index}": state.contiguous() for index, state in enumerate(self.states)}
        tensors["labels"] = torch.from_numpy(self.labels)
        with atomic_output(path) as staging:
            save_file(tensors, staging, metadata={"metadata": json.dumps(self.metadata)})

    @classmethod
    def load(cls, path: str | os.PathLike) -> FrontendCache:
        with safe_open(str(path), "pt") as file:
            metadata = json.loads(file.metadata()["metadata"])
            count = sum(1 for key in file.keys() if key.startswith("state."))
            states = [file.get_tensor(f"state.{index}") for index in range(count)]
            labels = file.get_tensor("labels").numpy()
        return cls(states, labels, metadata)


@torch.inference_mode()
def cache_states(encode: Callable[[np.ndarray], torch.Tensor], items: WaveformDataset, views: Iterable[int],
                 num_workers: int = 1, desc: str = "front-end") -> FrontendCache:
    """`encode` (waveform `(samples,)` float32 -> states `(layers, frames, D)`) of every item of `items`, once per
    view (`items.set_epoch(view)` draws its crop and augmentation), stored in float16 with labels and metadata."""
    states, labels, metadata = [], [], {name: [] for name in items.columns if name != "label"}
    for view in views:
        items.set_epoch(view)
        loader = torch.utils.data.DataLoader(items, batch_size=None, num_workers=num_workers)
        for item in tqdm(loader, desc=f"{desc} (view {view})", total=len(items), mininterval=10):
            states.append(encode(np.asarray(item["input_values"], dtype=np.float32)).half())
            labels.append(int(item["label"]))
            for name in metadata:
                metadata[name].append(item[name])
    return FrontendCache(states, np.asarray(labels, dtype=np.int64), metadata)


def cache_frontend_states(model: Nes2NetForAudioClassification, items: WaveformDataset, views: Iterable[int],
                          num_workers: int = 1, desc: str = "front-end") -> FrontendCache:
    """`cache_states` through the model's front-end: the hidden states `forward_frontend_states` reads (all of them
    with a layer merge, the last one otherwise)."""
    model.eval()
    layer_merge = model.nes2net.layer_merge is not None

    def encode(waveform: np.ndarray) -> torch.Tensor:
        outputs = model.nes2net(torch.from_numpy(waveform)[None], output_hidden_states=layer_merge)
        return torch.stack(outputs.hidden_states if layer_merge else (outputs.merged_features,))[:, 0]

    return cache_states(encode, items, views, num_workers, desc)


@dataclass
class BackendTraining:
    """Optimisation of `train_backend` (Adam, cosine schedule per step, the mean of the last epochs' weights)."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 1e-4
    average_last: int = 3
    seed: int = 0
    crop_frames: int | None = None
    """Train on a random window of this many frames of each cached state (shorter ones whole, zero-padded), drawn
    anew each epoch; None: whole states. The states were encoded from whole clips, so a window keeps the context
    (and, for Whisper, the positions) the model sees when it scores a whole file, at a fraction of the cost."""
    mask_channels: int = 0
    """SpecAugment-style masking of the cached states: each training window gets one band of up to this many
    feature channels zeroed, the same band in every layer (0: none)."""
    mask_frames: int = 0
    """...and one span of up to this many frames zeroed (0: none)."""


def batch_states(states: list[torch.Tensor]) -> tuple[tuple[torch.Tensor, ...], torch.Tensor | None]:
    """Cached states of one batch -> per-layer `(batch, frames, D)` float32 (zero-padded) and the frame mask (None
    when every trial has the same length)."""
    lengths = torch.tensor([state.shape[1] for state in states])
    padded = pad_sequence([state.float().transpose(0, 1) for state in states], batch_first=True)  # (B, T, layers, D)
    frame_mask = None if bool((lengths == lengths[0]).all()) else length_mask(lengths, padded.shape[1])
    return tuple(padded.unbind(2)), frame_mask


def window_bounds(length: int, frames: int | None, rng: np.random.Generator) -> slice:
    """A random `frames`-long window of `length` frames, as a slice (all of them when `frames` is None or >=
    `length`; no draw then)."""
    if frames is None or length <= frames:
        return slice(0, length)
    start = int(rng.integers(0, length - frames + 1))
    return slice(start, start + frames)


def _window(state: torch.Tensor, frames: int | None, rng: np.random.Generator) -> torch.Tensor:
    """A random `frames`-long window of `state` `(layers, T, D)` (all of it when `frames` is None or >= T)."""
    return state[:, window_bounds(state.shape[1], frames, rng)]


def masked_states(state: torch.Tensor, max_channels: int, max_frames: int, rng: np.random.Generator) -> torch.Tensor:
    """`state` `(layers, T, D)` with one random band of at most `max_channels` channels and one span of at most
    `max_frames` frames set to zero in every layer (a copy; the cache is untouched)."""
    if max_channels <= 0 and max_frames <= 0:
        return state
    state = state.clone()
    for axis, limit in ((2, max_channels), (1, max_frames)):
        if limit > 0:
            width = int(rng.integers(0, min(limit, state.shape[axis]) + 1))
            start = int(rng.integers(0, state.shape[axis] - width + 1))
            state.narrow(axis, start, width).zero_()
    return state


def forward_states(model: Nes2NetForAudioClassification, hidden_states: tuple[torch.Tensor, ...],
                   frame_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`Nes2NetModel.forward_frontend_states` of batched front-end states (`batch_states`) moved to the model's
    device: the merged features, the trunk's output `(batch, frames, D)` and the pooled embedding."""
    hidden_states = tuple(state.to(model.device) for state in hidden_states)
    frame_mask = None if frame_mask is None else frame_mask.to(model.device)
    return model.nes2net.forward_frontend_states(hidden_states, frame_mask)


def states_logits(model: Nes2NetForAudioClassification, hidden_states: tuple[torch.Tensor, ...],
                  frame_mask: torch.Tensor | None) -> torch.Tensor:
    """Calibrated logits `(batch, num_labels)` of batched front-end states (`batch_states`), on the model's device."""
    _, _, pooled = forward_states(model, hidden_states, frame_mask)
    return model.calibration(model.classifier(pooled))


def _logits(model: Nes2NetForAudioClassification, states: list[torch.Tensor]) -> torch.Tensor:
    return states_logits(model, *batch_states(states))


class StatesDataset(torch.utils.data.Dataset):
    """Training items `{"states": (layers, frames, D) float16, "label": int, "index": int}` of a `FrontendCache`:
    a random `crop_frames` window of each cached state (all of it when None or longer), with one band of up to
    `mask_channels` channels and one span of up to `mask_frames` frames zeroed (`masked_states`), drawn from a
    generator seeded by (`seed`, epoch, index), as `training.batching.WaveformDataset` draws its crops: the same on
    any number of processes and after a resume."""

    def __init__(self, cache: FrontendCache, crop_frames: int | None, mask_channels: int, mask_frames: int,
                 seed: int):
        self.cache, self.crop_frames, self.seed = cache, crop_frames, seed
        self.mask_channels, self.mask_frames = mask_channels, mask_frames
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        state = self.cache.states[index]
        window = window_bounds(state.shape[1], self.crop_frames, rng)
        return {"states": masked_states(state[:, window], self.mask_channels, self.mask_frames, rng),
                "label": int(self.cache.labels[index]), "index": index, "window": window}


def collate_states(items: list[dict]) -> dict:
    """`StatesDataset` items -> `{"hidden_states": per layer (batch, frames, D) float32, "frame_mask": (batch, frames)
    or None, "labels": (batch,), "index": (batch,), "windows": each item's frames of its cached state (slices)}`."""
    hidden_states, frame_mask = batch_states([item["states"] for item in items])
    return {"hidden_states": hidden_states, "frame_mask": frame_mask,
            "labels": torch.tensor([item["label"] for item in items]),
            "index": torch.tensor([item["index"] for item in items]), "windows": [item["window"] for item in items]}


def states_loss(model: Nes2NetForAudioClassification, batch: dict) -> torch.Tensor:
    """The model's utterance loss on a `collate_states` batch, on the model's device."""
    logits = states_logits(model, batch["hidden_states"], batch["frame_mask"])
    return model.compute_loss(logits, batch["labels"].to(model.device))


StatesLoss = Callable[[Nes2NetForAudioClassification, dict], torch.Tensor]
"""`(model, collate_states batch) -> loss`: what the Trainer minimises on cached states (`states_loss` unless told;
`training.frame_model.frame_loss` adds the frame loss)."""


@torch.inference_mode()
def score_cache(model: Nes2NetForAudioClassification, cache: FrontendCache) -> np.ndarray:
    """`(n,)` calibrated log-odds of every cached trial, each scored alone (as `full` scores a file)."""
    model.eval()
    return np.array([float(log_odds(_logits(model, [state]))[0]) for state in cache.states])


def dev_report(scores: np.ndarray, cache: FrontendCache) -> dict:
    """Pooled EER %, EER % per corpus (its own bona fide against its own spoofs) and per spoofing system (`attack`:
    its spoofs against every bona fide trial)."""
    report = {"eer": 100 * compute_eer(scores[cache.labels == 1], scores[cache.labels == 0]).eer}
    for name, pool_bonafide in ((CORPUS_COLUMN, False), ("attack", True)):
        if name in cache.metadata:
            values = [value if value else "bonafide" for value in cache.metadata[name]]
            report[name] = {group: 100 * result.eer for group, result in
                            breakdown(scores, cache.labels, values, pool_bonafide=pool_bonafide).items()}
    return report


def utterance_loss(model: Nes2NetForAudioClassification, cache: FrontendCache, batch: np.ndarray,
                   settings: BackendTraining, rng: np.random.Generator) -> torch.Tensor:
    """The utterance loss of one batch (`batch`: indices into `cache`) on windows of its states, masked as
    `settings` says; `rng` draws the windows and masks."""
    states = [masked_states(_window(cache.states[index], settings.crop_frames, rng), settings.mask_channels,
                            settings.mask_frames, rng) for index in batch]
    return model.compute_loss(_logits(model, states), torch.from_numpy(cache.labels[batch]))


BatchLoss = Callable[[Nes2NetForAudioClassification, FrontendCache, np.ndarray, BackendTraining, np.random.Generator],
                     torch.Tensor]
"""`(model, cache, batch indices, settings, rng) -> loss`: what `train_backend` minimises, batch by batch."""


def train_backend(model: Nes2NetForAudioClassification, train: FrontendCache, dev: FrontendCache | None,
                  settings: BackendTraining, batch_loss: BatchLoss = utterance_loss) -> list[dict]:
    """Train everything after the front-end on `train` (in place) by `batch_loss` (the utterance loss unless told;
    `training.frame_model` adds the frame loss); `model` ends with the mean of the last `settings.average_last`
    epochs' weights. Returns one dict per epoch: mean loss and, with `dev`, `dev_report` (of the utterance head).
    Raises `TrainingDivergedError` naming the step at the first NaN or infinite loss, before it is applied."""
    torch.manual_seed(settings.seed)
    parameters = [parameter for name, parameter in model.named_parameters()
                  if ".frontend." not in f".{name}" and parameter.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=settings.lr, weight_decay=settings.weight_decay)
    plan = EpochPlan(len(train), settings.batch_size, seed=settings.seed)
    schedule = build_schedule(optimizer, "cosine", settings.lr, settings.min_lr, plan.steps_per_epoch * settings.epochs,
                              settings.epochs)
    history, kept = [], []
    for epoch in range(settings.epochs):
        model.train()
        losses = []
        rng = np.random.default_rng((settings.seed, epoch, 1))
        for batch in plan.global_batches(epoch):
            loss = batch_loss(model, train, batch, settings, rng)
            refuse_non_finite_loss(float(loss.detach()), f"epoch {epoch + 1}, step {len(losses) + 1}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.optimizer_step_done()
            losses.append(float(loss.detach()))
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
        if dev is not None:
            record["dev"] = dev_report(score_cache(model, dev), dev)
            logger.info("epoch %d: loss %.4f, dev EER %.2f %% (per corpus: %s)", epoch + 1, record["loss"],
                        record["dev"]["eer"], ", ".join(f"{name} {eer:.1f}" for name, eer in
                                                        record["dev"].get("corpus", {}).items()))
            logger.info("  dev EER per system: %s", ", ".join(f"{name} {eer:.1f}" for name, eer in
                                                             record["dev"].get("attack", {}).items()))
        history.append(record)
        if epoch >= settings.epochs - settings.average_last:
            kept.append(copy.deepcopy({name: tensor for name, tensor in model.state_dict().items()
                                       if ".frontend." not in f".{name}"}))
    averaged = {name: torch.stack([state[name].float() for state in kept]).mean(0).to(kept[-1][name].dtype)
                if kept[-1][name].is_floating_point() else kept[-1][name] for name in kept[-1]}
    model.load_state_dict(averaged, strict=False)
    refuse_non_finite_weights(model, f"the last of {settings.epochs} epochs")
    model.eval()
    return history


@dataclass
class FrozenFrontendRecipe:
    """A `training/recipes/frozen_frontend/*.yaml` file: `model.config` (a `Nes2NetConfig`), `corpora` (name ->
    `{source, weight}`), `data` (mix and crop seeds, `crop_samples`, `views`, `preprocess`, `augmentation` as in
    `training.batching`) and `training` (`BackendTraining` fields)."""

    model_config: dict
    corpora: dict[str, dict]
    data: dict
    training: BackendTraining
    path: str

    @classmethod
    def load(cls, path: str | os.PathLike) -> FrozenFrontendRecipe:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        unknown = set(raw) - {"model", "corpora", "data", "training"}
        if unknown:
            raise ValueError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
        return cls(raw["model"]["config"], raw["corpora"], raw["data"], BackendTraining(**raw.get("training", {})),
                   str(path))
