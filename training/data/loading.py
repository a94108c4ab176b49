"""Loading built datasets for training: fast decode and fixed-length crops.

`load_training_dataset` returns a dataset whose items are `{"input_values": float32 (num_samples,), "label": int}`
ready for a `torch.utils.data.DataLoader` (pass `collate_fn=collate_waveforms` for `crop="full"`).

Decoding reads the stored bytes with soundfile when the file is already at 16 kHz, and then only the
samples the crop needs (a seek into FLAC/WAV); any other rate or format goes through torchcodec with
resampling to 16 kHz, as `datasets.Audio(sampling_rate=16000)` does. Crops follow the authors' recipes:
- `random`: a uniformly drawn window of `num_samples`; a shorter file is tiled to `num_samples` (training).
- `start`: the first `num_samples`, tiled if shorter (the paper's `4sec` evaluation protocol,
  `modeling_nes2net.protocols.tile`).
- `full`: the whole utterance (the paper's `full` protocol, used for In-the-Wild).
Random windows are drawn from torch's global generator unless a numpy generator is passed, so
`torch.manual_seed` makes them reproducible and every DataLoader worker draws its own.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile
import torch
from datasets import Audio, Dataset, DatasetDict, IterableDataset, load_dataset

from modeling_nes2net.audio import AudioInputError, check_header
from modeling_nes2net.protocols import SAMPLING_RATE, WINDOW_SAMPLES, tile
from modeling_nes2net.scorer import pad_waveforms

from .build import BUILD_INFO_FILE, DATA_DIR
from .external import conform_to_shared_schema

CropMode = Literal["random", "start", "full"]
CROP_MODES = ("random", "start", "full")
SHARD_NAME = re.compile(r"^(?P<split>\w+?)-\d{5}(-of-\d{5})?\.parquet$")


def load_built_dataset(
    path_or_hub_id: str | os.PathLike,
    split: str | None = None,
    *,
    streaming: bool = False,
    cache_dir: str | None = None,
) -> Dataset | DatasetDict | IterableDataset:
    """A dataset built by `build_dataset`, from its local folder or its Hub repository.

    Returns one split (a Dataset, or an IterableDataset when `streaming`) or, with `split=None`, all of them.
    The `audio` column decodes at 16 kHz; cast it to `Audio(decode=False)` to get the stored bytes. A set built
    elsewhere (the Speech Anti-Spoofing Arena's, any set whose label is a `ClassLabel`) has its labels mapped to ours
    by name (`external.conform_to_shared_schema`); a label set that cannot be mapped is a `ValueError`.
    """
    return conform_to_shared_schema(_load_parquet_set(path_or_hub_id, split, streaming, cache_dir), str(path_or_hub_id))


def _load_parquet_set(
    path_or_hub_id: str | os.PathLike, split: str | None, streaming: bool, cache_dir: str | None
) -> Dataset | DatasetDict | IterableDataset:
    folder = Path(path_or_hub_id)
    if not folder.is_dir():
        return load_dataset(str(path_or_hub_id), split=split, streaming=streaming, cache_dir=cache_dir)
    data_files: dict[str, list[str]] = {}
    for shard in sorted((folder / DATA_DIR).glob("*.parquet")):
        if match := SHARD_NAME.match(shard.name):
            data_files.setdefault(match["split"], []).append(str(shard))
    if not data_files:
        raise FileNotFoundError(f"{folder} holds no {DATA_DIR}/<split>-NNNNN[-of-NNNNN].parquet shards")
    if (folder / BUILD_INFO_FILE).is_file():  # keep the corpus' split order (train, dev, eval, ...)
        order = list(read_build_info(folder)["splits"])
        data_files = dict(
            sorted(data_files.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order))
        )
    if split is not None and split not in data_files:
        raise ValueError(f"{folder} has no split {split!r}; splits: {', '.join(data_files)}")
    wanted = data_files if split is None else {split: data_files[split]}
    return load_dataset("parquet", data_files=wanted, split=split, streaming=streaming, cache_dir=cache_dir)


def read_build_info(folder: str | os.PathLike) -> dict[str, Any]:
    """The build_info.json of a locally built dataset."""
    return json.loads((Path(folder) / BUILD_INFO_FILE).read_text(encoding="utf-8"))


def crop_waveform(
    waveform: np.ndarray, num_samples: int, crop: CropMode = "random", rng: np.random.Generator | None = None
) -> np.ndarray:
    """Cut `waveform` (samples,) to `num_samples`: a random or the first window, tiling shorter input;
    `full` returns it unchanged."""
    if crop == "full":
        return waveform
    if len(waveform) == 0:
        raise ValueError("cannot crop an empty waveform")
    if len(waveform) <= num_samples or crop == "start":
        return tile(waveform, num_samples)
    start = _window_start(len(waveform), num_samples, crop, rng)
    return waveform[start : start + num_samples]


def decode_waveform(
    audio_bytes: bytes,
    num_samples: int = WINDOW_SAMPLES,
    crop: CropMode = "random",
    rng: np.random.Generator | None = None,
    name: str = "<bytes>",
) -> np.ndarray:
    """Decode an encoded audio file to a mono 16 kHz float32 waveform and crop it (see `crop_waveform`).

    Returns (num_samples,) or, for `crop="full"`, (samples,). Raises `AudioInputError`, one line naming `name`, for
    a file that cannot be decoded, holds no samples or NaN / infinite ones (in the crop), or whose header is implausible
    or promises more than the file holds (`modeling_nes2net.audio.check_header`, as detection).
    """
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {CROP_MODES}, not {crop!r}")
    try:
        waveform = _decode(audio_bytes, num_samples, crop, rng, name)
    except AudioInputError:
        raise
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as error:  # mid-stream, or torchcodec's own errors
        raise AudioInputError(name, f"cannot decode audio ({error})") from None
    if not np.isfinite(waveform).all():
        raise AudioInputError(name, "contains NaN or infinite samples")
    return waveform


def _decode(audio_bytes: bytes, num_samples: int, crop: CropMode, rng: np.random.Generator | None, name: str):
    try:
        file = soundfile.SoundFile(io.BytesIO(audio_bytes))
    except soundfile.LibsndfileError:
        file = None  # a format libsndfile cannot read: torchcodec below
    if file is not None:
        with file:
            check_header(file, audio_bytes, name)
            if file.frames == 0:
                raise AudioInputError(name, "no audio samples (zero duration)")
            if file.samplerate == SAMPLING_RATE:
                return _read_window(file, num_samples, crop, rng)
    waveform = _decode_resampled(audio_bytes)
    if len(waveform) == 0:
        raise AudioInputError(name, "no audio samples (zero duration)")
    return crop_waveform(waveform, num_samples, crop, rng)


def _read_window(file: soundfile.SoundFile, num_samples: int, crop: CropMode, rng: np.random.Generator | None):
    """Read only the window a crop needs when the file is long enough, else the whole file."""
    if crop != "full" and file.frames > num_samples:
        file.seek(_window_start(file.frames, num_samples, crop, rng))
        window = _to_mono(file.read(num_samples, dtype="float32"))
        if len(window) == num_samples:
            return window
        file.seek(0)  # the header overstated the length: fall back to the samples really there
    return crop_waveform(_to_mono(file.read(dtype="float32")), num_samples, crop, rng)


def _window_start(length: int, num_samples: int, crop: CropMode, rng: np.random.Generator | None) -> int:
    if crop == "start":
        return 0
    if rng is None:
        return int(torch.randint(0, length - num_samples + 1, ()))
    return int(rng.integers(0, length - num_samples + 1))


def _to_mono(frames: np.ndarray) -> np.ndarray:
    """(samples,) or (samples, channels) -> (samples,), averaging channels."""
    return frames if frames.ndim == 1 else frames.mean(axis=1, dtype=np.float32)


def _decode_resampled(audio_bytes: bytes) -> np.ndarray:
    from torchcodec.decoders import AudioDecoder

    samples = AudioDecoder(audio_bytes, sample_rate=SAMPLING_RATE, num_channels=1).get_all_samples()
    return samples.data[0].numpy().astype(np.float32, copy=False)


class WaveformTransform:
    """A batched `datasets` transform: stored audio bytes -> `input_values` crops, other columns kept.

    Use with `Dataset.with_transform` or `IterableDataset.map(batched=True)` on a dataset whose `audio`
    column is `Audio(decode=False)`.
    """

    def __init__(
        self, num_samples: int = WINDOW_SAMPLES, crop: CropMode = "random", columns: tuple[str, ...] = ("label",)
    ):
        if crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {CROP_MODES}, not {crop!r}")
        if num_samples <= 0:
            raise ValueError(f"num_samples must be positive, not {num_samples}")
        self.num_samples, self.crop, self.columns = num_samples, crop, tuple(columns)

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        waveforms = [
            decode_waveform(stored_bytes(audio), self.num_samples, self.crop, name=audio.get("path") or "<bytes>")
            for audio in batch["audio"]
        ]
        return {"input_values": waveforms, **{name: batch[name] for name in self.columns}}


def stored_bytes(audio: dict[str, Any]) -> bytes:
    """The encoded file of an `Audio(decode=False)` cell: its bytes, or those of the file it names."""
    if audio.get("bytes") is not None:
        return audio["bytes"]
    return Path(audio["path"]).read_bytes()


def load_training_dataset(
    path_or_hub_id: str | os.PathLike,
    split: str,
    *,
    num_samples: int = WINDOW_SAMPLES,
    crop: CropMode = "random",
    columns: tuple[str, ...] = ("label",),
    streaming: bool = False,
    cache_dir: str | None = None,
) -> Dataset | IterableDataset:
    """One split of a built dataset whose items are `{"input_values": float32 (num_samples,), **columns}`.

    `columns` are passed through unchanged (e.g. `("label", "utt_id", "attack")` for scoring). Map-style
    datasets decode lazily on access; streaming ones decode as they are iterated.
    """
    transform = WaveformTransform(num_samples, crop, columns)
    dataset = load_built_dataset(path_or_hub_id, split, streaming=streaming, cache_dir=cache_dir)
    missing = [name for name in columns if name not in dataset.column_names]
    if missing:
        raise ValueError(f"columns {missing} are not in the dataset; it has {dataset.column_names}")
    dataset = dataset.select_columns(["audio", *columns]).cast_column("audio", Audio(decode=False))
    if streaming:
        return dataset.map(transform, batched=True, remove_columns=["audio"])
    return dataset.with_transform(transform)


def collate_waveforms(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack items of `load_training_dataset` into a batch for the model: zero-padded `input_values`
    (batch, max_samples), `attention_mask` (batch, max_samples) with 1 on real samples, `labels` (batch,)
    when items have a label, and any other column as a list."""
    input_values, attention_mask = pad_waveforms([item["input_values"] for item in items], always_mask=True)
    batch: dict[str, Any] = {"input_values": torch.from_numpy(input_values),
                             "attention_mask": torch.from_numpy(attention_mask)}
    for name in items[0]:
        if name == "label":
            batch["labels"] = torch.tensor([item["label"] for item in items], dtype=torch.long)
        elif name != "input_values":
            batch[name] = [item[name] for item in items]
    return batch
