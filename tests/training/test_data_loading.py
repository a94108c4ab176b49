"""Loading built datasets for training: decoding the stored bytes, crops, batching."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, Dataset

from modeling_nes2net.audio import AudioInputError
from tests.hostile.make_corpus import speech_like, wav_bytes
from tests.training.train_helpers import write_unchecked_set
from training.data import (
    build_dataset,
    collate_waveforms,
    crop_waveform,
    decode_waveform,
    load_built_dataset,
    load_training_dataset,
)
from training.data.synthetic import make_synthetic_corpus, write_synthetic_audio


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A generic corpus of 6 files (0.5 s and 5 s) built once; returns (folder, cache_dir)."""
    root = tmp_path_factory.mktemp("corpus")
    make_synthetic_corpus(root / "train", num_files=4, seconds=0.5)
    make_synthetic_corpus(root / "test", num_files=2, seconds=5.0, seed=10)
    out = tmp_path_factory.mktemp("built") / "out"
    build_dataset("generic", root, out, progress=False)
    return out, str(tmp_path_factory.mktemp("cache"))


def test_crop_modes_cut_tile_and_keep():
    waveform = np.arange(10, dtype=np.float32)
    rng = np.random.default_rng(0)
    window = crop_waveform(waveform, 4, "random", rng)
    assert len(window) == 4 and np.array_equal(np.diff(window), np.ones(3)) and 0 <= window[0] <= 6
    assert np.array_equal(crop_waveform(waveform, 4, "start"), [0, 1, 2, 3])
    assert np.array_equal(crop_waveform(waveform[:3], 7, "random", rng), [0, 1, 2, 0, 1, 2, 0])
    assert np.array_equal(crop_waveform(waveform[:3], 7, "start"), [0, 1, 2, 0, 1, 2, 0])
    assert crop_waveform(waveform, 4, "full") is waveform
    starts = {crop_waveform(waveform, 4, "random", rng)[0] for _ in range(200)}
    assert starts == {0, 1, 2, 3, 4, 5, 6}
    with pytest.raises(ValueError, match="empty"):
        crop_waveform(waveform[:0], 4)


@pytest.mark.parametrize("suffix", [".flac", ".wav"])
def test_decoding_reads_the_same_window_as_a_full_decode(tmp_path, suffix):
    written = write_synthetic_audio(tmp_path / f"a{suffix}", 3.0, seed=3)
    data = (tmp_path / f"a{suffix}").read_bytes()
    window = decode_waveform(data, 16000, "random", np.random.default_rng(7))
    start = np.random.default_rng(7).integers(0, len(written) - 16000 + 1)
    assert window.dtype == np.float32 and window.shape == (16000,)
    assert np.array_equal(window, written[start : start + 16000])
    assert np.array_equal(decode_waveform(data, 16000, "start"), written[:16000])
    assert np.array_equal(decode_waveform(data, crop="full"), written)
    assert np.array_equal(decode_waveform(data, 64600, "start"), np.tile(written, 2)[:64600])


def test_other_rates_are_resampled_to_16k_as_datasets_does(tmp_path):
    write_synthetic_audio(tmp_path / "a.flac", 1.0, sampling_rate=44100, seed=1)
    data = (tmp_path / "a.flac").read_bytes()
    waveform = decode_waveform(data, crop="full")
    reference = Dataset.from_dict({"audio": [str(tmp_path / "a.flac")]}).cast_column(
        "audio", Audio(sampling_rate=16000)
    )
    expected = reference[0]["audio"].get_all_samples().data[0].numpy()
    assert waveform.shape == expected.shape and abs(len(waveform) - 16000) <= 16
    assert np.allclose(waveform, expected, atol=1e-6)
    assert decode_waveform(data, 8000, "random").shape == (8000,)


def test_stereo_is_averaged_to_mono(tmp_path):
    written = write_synthetic_audio(tmp_path / "a.wav", 0.5, channels=2)
    waveform = decode_waveform((tmp_path / "a.wav").read_bytes(), crop="full")
    assert np.allclose(waveform, written.mean(axis=1), atol=1e-7)


def test_unknown_crop_mode_is_refused():
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(100, dtype=np.float32), 16000, format="WAV")
    with pytest.raises(ValueError, match="crop must be one of"):
        decode_waveform(buffer.getvalue(), 10, "middle")


def test_random_crops_follow_torch_seeding():
    waveform = np.arange(100_000, dtype=np.float32)
    torch.manual_seed(0)
    first = [crop_waveform(waveform, 10)[0] for _ in range(5)]
    torch.manual_seed(0)
    again = [crop_waveform(waveform, 10)[0] for _ in range(5)]
    torch.manual_seed(1)
    other = [crop_waveform(waveform, 10)[0] for _ in range(5)]
    assert first == again and first != other


def test_training_dataset_gives_fixed_length_crops_for_a_dataloader(built):
    out, cache_dir = built
    dataset = load_training_dataset(out, "train", columns=("label", "utt_id"), cache_dir=cache_dir)
    assert len(dataset) == 4
    item = dataset[0]
    assert item["input_values"].shape == (64600,) and item["input_values"].dtype == np.float32
    loader = torch.utils.data.DataLoader(dataset, batch_size=2)
    batch = next(iter(loader))
    assert batch["input_values"].shape == (2, 64600) and batch["input_values"].dtype == torch.float32
    assert batch["label"].tolist() == [1, 1] and batch["utt_id"] == ["bonafide/00000", "bonafide/00002"]


def test_full_mode_batches_pad_with_an_attention_mask(built):
    out, cache_dir = built
    dataset = load_training_dataset(out, "train", crop="full", cache_dir=cache_dir)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, collate_fn=collate_waveforms)
    batch = next(iter(loader))
    assert batch["input_values"].shape == (4, 8000)
    assert batch["attention_mask"].sum(dim=1).tolist() == [8000] * 4
    assert batch["labels"].tolist() == [1, 1, 0, 0]
    ragged = collate_waveforms(
        [{"input_values": np.ones(3, np.float32), "label": 0}, {"input_values": np.ones(5, np.float32), "label": 1}]
    )
    assert ragged["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert ragged["input_values"][0, 3:].abs().sum() == 0


def test_long_files_are_cropped_from_the_stored_bytes(built):
    out, cache_dir = built
    stored = load_built_dataset(out, "test", cache_dir=cache_dir).cast_column("audio", Audio(decode=False))
    full = decode_waveform(stored[0]["audio"]["bytes"], crop="full")
    dataset = load_training_dataset(out, "test", crop="start", num_samples=32000, cache_dir=cache_dir)
    assert np.array_equal(dataset[0]["input_values"], full[:32000])
    assert len(full) == 80000


def test_streaming_training_dataset_yields_the_same_items(built):
    out, _ = built
    stream = load_training_dataset(out, "train", crop="start", columns=("label", "utt_id"), streaming=True)
    items = list(stream)
    assert [item["utt_id"] for item in items] == ["bonafide/00000", "bonafide/00002", "spoof/00001", "spoof/00003"]
    assert all(len(item["input_values"]) == 64600 for item in items)


def test_loading_errors_name_what_is_wrong(built, tmp_path):
    out, cache_dir = built
    with pytest.raises(ValueError, match="no split 'dev'; splits: train, test"):
        load_built_dataset(out, "dev", cache_dir=cache_dir)
    with pytest.raises(ValueError, match=r"columns \['speakerz'\] are not in the dataset"):
        load_training_dataset(out, "train", columns=("speakerz",), cache_dir=cache_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no data/<split>"):
        load_built_dataset(tmp_path / "empty")


def _nan_float_wav() -> bytes:
    waveform = speech_like(1.0)
    waveform[100:200] = np.nan
    return wav_bytes(waveform, subtype="FLOAT")


def _cut_flac() -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, speech_like(2.0), 16_000, format="FLAC")
    return buffer.getvalue()[: buffer.tell() * 2 // 5]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (lambda: wav_bytes(speech_like(1.0))[:8_044], "truncated: the header promises 1.00 s, the file holds 0.25 s"),
        (_nan_float_wav, "contains NaN or infinite samples"),
        (_cut_flac, "cannot decode audio ("),
    ],
    ids=["truncated-wav", "nan", "truncated-flac"],
)
def test_a_damaged_file_in_a_set_is_one_line_naming_it(tmp_path, content, problem):
    rows = [("train/good.wav", "bonafide", "train", wav_bytes(speech_like(1.0))), ("train/bad.wav", "spoof", "train",
                                                                                    content())]
    built = write_unchecked_set(tmp_path / "built", rows)
    dataset = load_training_dataset(built, "train", num_samples=8_000, crop="start", cache_dir=str(tmp_path / "cache"))
    assert np.shape(dataset[0]["input_values"]) == (8_000,)
    with pytest.raises(AudioInputError) as raised:
        dataset[1]
    assert str(raised.value).startswith(f"train/bad.wav: {problem}") and "\n" not in str(raised.value)
