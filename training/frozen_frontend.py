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
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from datasets import Dataset, interleave_datasets
from safetensors import safe_open
from safetensors.torch import save_file
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm

from modeling_nes2net import Nes2NetForAudioClassification
from modeling_nes2net.atomic import atomic_output
from modeling_nes2net.decision import log_odds
from modeling_nes2net.frontends_nes2net import length_mask
from training.batching import WaveformDataset
from training.metrics import breakdown, compute_eer

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

    def select(self, mask: np.ndarray) -> FrontendCache:
        """The trials where `mask` `(n,)` is true."""
        indices = np.flatnonzero(mask)
        return FrontendCache([self.states[index] for index in indices], self.labels[indices],
                             {name: [values[index] for index in indices] for name, values in self.metadata.items()})

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
            states = [file.get_tensor(f"state.{index}") for index in range(_state_count(file))]
            labels = file.get_tensor("labels").numpy()
        return cls(states, labels, metadata)

    @staticmethod
    def stored_trials(path: str | os.PathLike) -> int:
        """How many trials the file `save` wrote at `path` holds, read from its header alone."""
        with safe_open(str(path), "pt") as file:
            return _state_count(file)


def _state_count(file) -> int:
    """The number of `state.{i}` tensors in an open safetensors `file` written by `FrontendCache.save`."""
    return sum(1 for key in file.keys() if key.startswith("state."))


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
    """`cache_states` through the model's front-end, on the model's device: the hidden states
    `forward_frontend_states` reads (all of them with a layer merge, the last one otherwise), kept on the CPU."""
    model.eval()
    layer_merge = model.nes2net.layer_merge is not None

    def encode(waveform: np.ndarray) -> torch.Tensor:
        outputs = model.nes2net(torch.from_numpy(waveform)[None].to(model.device), output_hidden_states=layer_merge)
        return torch.stack(outputs.hidden_states if layer_merge else (outputs.merged_features,))[:, 0].cpu()

    return cache_states(encode, items, views, num_workers, desc)


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
