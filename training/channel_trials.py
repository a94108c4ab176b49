"""The trials of a split through a channel condition, each decoded once for every condition (the decode cache of
`nes2net evaluate --perturb`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from modeling_nes2net.audio import AudioSource, load_audio
from modeling_nes2net.protocols import SAMPLING_RATE
from training.batching import Trials
from training.channel import Channel


class ChannelTrials:
    """`trials` passed through `channel` (None: clean) with the generator `default_rng((seed, index))`. Each trial is
    decoded once for every condition: its whole waveform at `SAMPLING_RATE` is cached in `cache_dir` (one `.npy`,
    written by whichever process decodes it first), and the protocol cuts the perturbed recording."""

    def __init__(self, trials: Trials, cache_dir: str | os.PathLike, channel: Channel | None = None, seed: int = 0):
        self.trials, self.cache_dir, self.channel, self.seed = trials, Path(cache_dir), channel, seed
        self.cache_dir.mkdir(parents=True, exist_ok=True)

    def __len__(self) -> int:
        return len(self.trials)

    def column(self, name: str) -> list:
        return self.trials.column(name)

    def name(self, index: int) -> str:
        return self.trials.name(index)

    def _clean(self, index: int) -> np.ndarray:
        path = self.cache_dir / f"{index}.npy"
        if path.is_file():
            return np.load(path)
        waveform = load_audio(self.trials.source(index), target_rate=SAMPLING_RATE)
        temporary = path.with_name(f".{path.stem}.{os.getpid()}.npy")
        np.save(temporary, waveform)
        os.replace(temporary, path)
        return waveform

    def source(self, index: int) -> AudioSource:
        index = int(index)
        waveform = self._clean(index)
        if self.channel is not None:
            waveform = self.channel(waveform, SAMPLING_RATE, np.random.default_rng((self.seed, index)))
        return AudioSource(waveform, SAMPLING_RATE, self.trials.name(index))
