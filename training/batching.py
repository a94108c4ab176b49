"""The torch side of the data: deterministic items, the batch plan of an epoch, and its split across processes.

`Trials` are the rows of one split (metadata, and each trial's stored audio as the `AudioSource` `nes2net detect`
would read); evaluation scores them (`training.evaluate`), and `WaveformDataset` decodes and crops them for training.

Reproducibility is built in rather than seeded from global state:
- `WaveformDataset` draws the crop and the augmentation of item `i` in epoch `e` from `numpy.random.default_rng((seed,
  e, i))`, so an item is the same whichever process, DataLoader worker or resumed run reads it.
- `EpochPlan` fixes the order of an epoch from `(seed, epoch)` alone: a permutation cut into global batches of
  `batch_size` trials (the incomplete last one dropped). Each global batch is split into `accumulation_steps x
  num_processes` micro-batches; process `r` takes micro-batch `k * num_processes + r` at accumulation step `k`. So
  one process with batch B and N processes with B / N each see the same global batches, in the same order, and a run
  resumed at step `s` continues with global batch `s`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from datasets import Audio, Dataset

from modeling_nes2net.audio import AudioInputError, AudioSource
from modeling_nes2net.protocols import SAMPLING_RATE, WINDOW_SAMPLES
from training.augmentation.composition import Compose, OneOf, RandomApply
from training.augmentation.noise_and_reverb import musan_rir_augmentation
from training.augmentation.rawboost import RawBoost, RawBoostConfig
from training.augmentation.waveform import Augmentation
from training.channel import parse_channel
from training.data import collate_waveforms, crop_waveform, decode_waveform, stored_bytes
from training.recipe import AUGMENTATIONS
from training.shortcut_audit import ShortcutRemoval

Preprocessing = Augmentation
"""Like an augmentation, but applied to the whole decoded utterance before the crop, and free to change its length."""


def build_augmentation(spec: dict[str, Any] | None) -> Augmentation | None:
    """One augmentation from a recipe's `data.augmentation`, a mapping of one name to its options:

    - `{rawboost: {algorithm: 4, ...RawBoostConfig fields}}`;
    - `{musan_rir: {musan: DIR, rir: DIR, p: 0.5}}`;
    - `{channel: {conditions: [SPEC, ...], p: 0.5}}`: with probability `p`, one of the `training.channel` conditions
      (codecs, telephone paths, band limits, packet loss, noise, reverberation, level), drawn uniformly;
    - `{chain: [{NAME: OPTIONS}, ...]}`: those applied one after the other.
    """
    if not spec:
        return None
    (name, options), = spec.items()
    if name == "chain":
        return Compose([build_augmentation(step) for step in options])
    options = dict(options or {})
    if name == "rawboost":
        algorithm = options.pop("algorithm", 4)
        return RawBoost(RawBoostConfig(**options), algorithm=algorithm)
    if name == "musan_rir":
        missing = {"musan", "rir"} - set(options)
        if missing:
            raise ValueError(f"data.augmentation.musan_rir needs {', '.join(sorted(missing))} (folders)")
        return musan_rir_augmentation(options["musan"], options["rir"], p=options.get("p", 0.5))
    if name == "channel":
        if not options.get("conditions"):
            raise ValueError("data.augmentation.channel needs conditions: a list of training.channel SPECs")
        return RandomApply(OneOf([parse_channel(condition) for condition in options["conditions"]]), options.get("p", 0.5))
    raise ValueError(f"unknown augmentation {name!r}: expected one of {', '.join(sorted(AUGMENTATIONS))}")


def build_preprocessing(spec: dict[str, Any] | None) -> Preprocessing | None:
    """`data.preprocess` of a recipe: `{remove_shortcuts: {ShortcutRemoval fields}}` or nothing."""
    if not spec:
        return None
    (name, options), = spec.items()
    if name != "remove_shortcuts":
        raise ValueError(f"unknown preprocessing {name!r}: expected remove_shortcuts")
    return ShortcutRemoval(**{key: tuple(value) if isinstance(value, list) else value for key, value in (options or {}).items()})


class Trials:
    """The trials of one split of a built dataset: its metadata columns, and each trial's stored audio as the
    `AudioSource` `nes2net detect` would read from that file (the encoded bytes, named by `utt_id`)."""

    def __init__(self, split: Dataset, columns: Sequence[str] = ("label", "utt_id")):
        missing = [name for name in ("audio", *columns) if name not in split.column_names]
        if missing:
            raise ValueError(f"the dataset has no column(s) {missing}; it has {split.column_names}")
        self.rows = split.select_columns(["audio", *columns]).cast_column("audio", Audio(decode=False))
        self.columns = tuple(columns)

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list:
        """One metadata column for every trial, without reading audio."""
        return self.rows[name]

    def name(self, index: int) -> str:
        """How errors name trial `index`: its `utt_id`, else its stored path."""
        return _trial_name(self.rows[int(index)], index)

    def source(self, index: int) -> AudioSource:
        row = self.rows[int(index)]
        return AudioSource(stored_bytes(row["audio"]), name=_trial_name(row, index))


def _trial_name(row: dict[str, Any], index: int) -> str:
    return str(row.get("utt_id") or row["audio"].get("path") or f"trial {index}")


class WaveformDataset(Trials, torch.utils.data.Dataset):
    """Items `{"input_values": float32 (samples,), "index": int, **columns}` of one split of a built dataset, decoded,
    cropped and augmented for training.

    Args:
        split: a split with the shared schema (`audio`, `label`, `utt_id`, ...).
        crop: `random` (training), `start` or `full` (see `training.data.crop_waveform`).
        num_samples: crop length (ignored by `full`).
        augmentation: applied after cropping, with the item's generator.
        preprocessing: applied to the whole utterance before cropping (e.g. `ShortcutRemoval`), same generator.
        seed: with the epoch and the index, seeds each item's generator.
        columns: metadata columns passed through.
        report_errors: an item that cannot be decoded is `{"index": int, "error": one line naming it}` instead of
            raising (`collate_trials` carries it out of a DataLoader worker as one line).
    """

    def __init__(
        self,
        split: Dataset,
        crop: str,
        num_samples: int = WINDOW_SAMPLES,
        augmentation: Augmentation | None = None,
        seed: int = 0,
        columns: Sequence[str] = ("label", "utt_id"),
        preprocessing: Preprocessing | None = None,
        report_errors: bool = False,
    ):
        super().__init__(split, columns)
        self.crop, self.num_samples, self.augmentation, self.seed = crop, num_samples, augmentation, seed
        self.preprocessing = preprocessing
        self.report_errors = report_errors
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        row = self.rows[index]
        audio_bytes, name = stored_bytes(row["audio"]), _trial_name(row, index)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        try:
            if self.preprocessing is None:
                waveform = decode_waveform(audio_bytes, self.num_samples, self.crop, rng, name=name)
            else:
                whole = decode_waveform(audio_bytes, self.num_samples, "full", name=name)
                waveform = self.preprocessing(whole, SAMPLING_RATE, rng)
                if self.crop != "full":
                    waveform = crop_waveform(waveform, self.num_samples, self.crop, rng)
        except AudioInputError as error:
            if not self.report_errors:
                raise
            return {"index": index, "error": str(error)}
        if self.augmentation is not None:
            waveform = self.augmentation(waveform, SAMPLING_RATE, rng)
        return {"input_values": waveform, "index": index, **{name: row[name] for name in self.columns}}


class UndecodableTrialError(ValueError):
    """A training trial whose audio cannot be decoded: one line naming it."""


def collate_trials(items: list[dict[str, Any]]) -> dict[str, Any]:
    """`collate_waveforms` of `WaveformDataset(report_errors=True)` items, or `{"errors": [one line each]}` when some
    could not be decoded: `raise_undecodable` then raises them in the training process, since torch re-raises an
    exception of a DataLoader worker with the worker's traceback in its message."""
    errors = [item["error"] for item in items if "error" in item]
    return {"errors": errors} if errors else collate_waveforms(items)


def raise_undecodable(batch: dict[str, Any]) -> None:
    """Raise `UndecodableTrialError` for a batch of `collate_trials` that holds undecodable trials."""
    if "errors" in batch:
        raise UndecodableTrialError(f"{batch['errors'][0]}; a training set must hold only decodable audio (`nes2net "
                                    "data build` refuses such files)")


@dataclass(frozen=True)
class EpochPlan:
    """The global batches of one epoch and each process's share (see the module docstring)."""

    num_examples: int
    batch_size: int
    num_processes: int = 1
    accumulation_steps: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        shares = self.num_processes * self.accumulation_steps
        if self.batch_size % shares:
            raise ValueError(
                f"the global batch size {self.batch_size} must be divisible by processes x accumulation steps "
                f"({self.num_processes} x {self.accumulation_steps})"
            )
        if self.steps_per_epoch == 0:
            raise ValueError(f"{self.num_examples} training examples do not fill one batch of {self.batch_size}")

    @property
    def micro_batch_size(self) -> int:
        return self.batch_size // (self.num_processes * self.accumulation_steps)

    @property
    def steps_per_epoch(self) -> int:
        return self.num_examples // self.batch_size

    def global_batches(self, epoch: int) -> np.ndarray:
        """`(steps_per_epoch, batch_size)` example indices of `epoch`."""
        order = np.random.default_rng((self.seed, epoch)).permutation(self.num_examples)
        return order[: self.steps_per_epoch * self.batch_size].reshape(self.steps_per_epoch, self.batch_size)

    def micro_batches(self, epoch: int, rank: int, start_step: int = 0) -> list[list[int]]:
        """Process `rank`'s micro-batches of `epoch` from optimiser step `start_step` on, in order."""
        batches = self.global_batches(epoch)[start_step:]
        shares = batches.reshape(-1, self.accumulation_steps, self.num_processes, self.micro_batch_size)
        return shares[:, :, rank].reshape(-1, self.micro_batch_size).tolist()
