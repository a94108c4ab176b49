"""`nes2net train` on cached front-end states (`data.corpora`): the loop, averaging and calibration of any recipe,
on a tiny spectrogram model and a tiny synthetic corpus; a bad data section is refused in one line naming it."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from modeling_nes2net import Nes2NetForAudioClassification
from nes2net.cli import main
from tests.hostile.make_corpus import speech_like, wav_bytes
from training.corpus_sources import PAIR_SOURCE_COLUMN, build_corpora, build_vocoded_corpus
from training.data import load_built_dataset
from training.frozen_frontend import FrontendCache, StatesDataset
from training.recipe import recipe_from_dict
from training.state_cache import cache_conditions, cache_corpora
from training.train import build_model, train_on_states

RATE = 16000


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A source folder in the generic layout: 1 s clips, bona fide speech-like audio and two 'systems' of spoofs
    (the same audio with a loud 3 kHz tone, or clipped), 24 train and 8 dev clips."""
    folder = tmp_path_factory.mktemp("source")
    rows = []
    for index in range(32):
        split = "train" if index < 24 else "dev"
        speech = speech_like(1.0, seed=index)[:, 0]
        if index % 2:
            label, system = "bonafide", "real"
            audio = speech
        elif index % 4:
            label, system = "spoof", "tone"
            audio = 0.5 * speech + 0.3 * np.sin(2 * np.pi * 3000 * np.arange(RATE) / RATE)
        else:
            label, system = "spoof", "clipped"
            audio = np.clip(4 * speech, -0.3, 0.3)
        (folder / f"clip{index}.wav").write_bytes(wav_bytes(audio.astype(np.float32)))
        rows.append({"file_name": f"clip{index}.wav", "label": label, "split": split, "system": system})
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as table:
        writer = csv.DictWriter(table, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def states_recipe(source, cache_dir, **data) -> dict:
    return {
        "model": {"config": {"frontend_type": "spectrogram", "spectrogram_n_fft": 126, "spectrogram_hop_length": 32,
                             "outer_ratio": 4, "inner_ratio": 4}},
        "data": {"corpora": {"tiny": {"source": str(source)}}, "cache_dir": str(cache_dir), "crop_frames": 100,
                 "mask_channels": 8, "mask_frames": 4,
                 "augmentation": {"channel": {"conditions": ["noise:snr=10"], "p": 1.0}}, **data},
        "training": {"epochs": 8, "batch_size": 4, "lr": 3e-3, "min_lr": 1e-5, "schedule": "cosine",
                     "frontend_lr": 0, "average_best": 2, "average_epochs": "last", "mixed_precision": "no"},
    }


def test_nes2net_train_on_cached_states_writes_a_calibrated_model_folder_deterministically(source, tmp_path):
    torch.set_num_threads(1)
    recipe = tmp_path / "states.yaml"
    recipe.write_text(yaml.safe_dump(states_recipe(source, tmp_path / "cache")))
    assert main(["train", str(recipe), "--output-dir", str(tmp_path / "first")]) == 0
    final = tmp_path / "first" / "final"
    model = Nes2NetForAudioClassification.from_pretrained(final)
    assert (model.config.calibration_scale, model.config.calibration_offset) != (1.0, 0.0)  # fitted on the dev states
    assert model.config.state_windows  # trained on windows of in-context states: `detect` scores those by default
    assert sorted(path.name for path in (tmp_path / "first" / "epochs").iterdir()) == ["epoch-007", "epoch-008"]
    assert len(list((tmp_path / "first" / "dev").glob("epoch-*.csv"))) == 8  # dev EER of every epoch
    states = sorted(path.name for path in (tmp_path / "cache" / "states").iterdir())
    assert states == ["tiny-dev-channel.safetensors", "tiny-dev-clean.safetensors", "tiny-train-channel.safetensors",
                      "tiny-train-clean.safetensors"]
    with torch.inference_mode():
        scores = model(torch.from_numpy(speech_like(1.0, seed=99)[:, 0])[None]).logits
    assert torch.isfinite(scores).all()

    # the same recipe again, on the states cached by the first run: the same weights to the bit
    assert main(["train", str(recipe), "--output-dir", str(tmp_path / "second")]) == 0
    again = Nes2NetForAudioClassification.from_pretrained(tmp_path / "second" / "final")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name


def test_a_vocoded_corpus_adds_copies_of_the_train_genuine_clips_as_fakes(source, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # where the copies are cached between builds
    torch.set_num_threads(1)
    recipe = states_recipe(source, tmp_path / "cache")
    recipe["data"]["corpora"]["tiny-world"] = {"vocoded": "tiny", "vocoders": ["world"]}
    recipe["training"]["epochs"] = 2
    path = tmp_path / "vocoded.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", str(path), "--output-dir", str(tmp_path / "run")]) == 0
    copies = load_built_dataset(tmp_path / "cache" / "data" / "tiny-world")
    assert list(copies) == ["train"]  # no dev or test split: nothing to calibrate or report on
    with open(source / "metadata.csv", encoding="utf-8") as table:
        genuine_train = {row["file_name"] for row in csv.DictReader(table)
                         if row["label"] == "bonafide" and row["split"] == "train"}
    train = copies["train"]
    assert sorted(train["source_file"]) == sorted(genuine_train)  # every train genuine clip once, no dev clip
    assert set(train["label"]) == {0} and set(train["system"]) == {"world"}  # 0: spoof
    assert set(train[PAIR_SOURCE_COLUMN]) == {"tiny/real"}
    states = sorted(path.name for path in (tmp_path / "cache" / "states").glob("tiny-world-*"))
    assert states == ["tiny-world-train-channel.safetensors", "tiny-world-train-clean.safetensors"]
    trained = FrontendCache.load(tmp_path / "cache" / "states" / "tiny-world-train-clean.safetensors")
    assert set(trained.metadata[PAIR_SOURCE_COLUMN]) == {"tiny/real"}  # kept for cross-validation's folds
    assert Nes2NetForAudioClassification.from_pretrained(tmp_path / "run" / "final").config.calibration_scale != 1.0


def test_a_vocoded_corpus_never_writes_a_genuine_clip_and_names_each_copys_genuine_source(source, tmp_path,
                                                                                           monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    two_sources = tmp_path / "two-sources"  # the source with its train genuine clips from `real` and `studio`
    two_sources.mkdir()
    with open(source / "metadata.csv", encoding="utf-8", newline="") as table:
        rows = list(csv.DictReader(table))
    for index, row in enumerate(rows):
        (two_sources / row["file_name"]).symlink_to(source / row["file_name"])
        row["system"] = "studio" if row["label"] == "bonafide" and index % 4 == 3 else row["system"]
    with open(two_sources / "metadata.csv", "w", newline="", encoding="utf-8") as table:
        writer = csv.DictWriter(table, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    written, write_bytes = [], Path.write_bytes
    monkeypatch.setattr(Path, "write_bytes", lambda path, data: written.append(path) or write_bytes(path, data))
    build_vocoded_corpus(two_sources, "two", ["world"], tmp_path / "built")
    genuine_train = {row["file_name"]: row["system"] for row in rows
                     if row["label"] == "bonafide" and row["split"] == "train"}
    assert sorted(path.name for path in written if "audio" in path.parts) == sorted(
        f"{Path(name).stem}__world.flac" for name in genuine_train)  # the copies, never a genuine clip
    copies = load_built_dataset(tmp_path / "built", "train")
    assert list(copies[PAIR_SOURCE_COLUMN]) == [f"two/{genuine_train[name]}" for name in copies["source_file"]]
    assert set(copies[PAIR_SOURCE_COLUMN]) == {"two/real", "two/studio"}


def test_a_recipe_trained_on_the_clean_view_alone_encodes_no_channel_view(source, tmp_path):
    torch.set_num_threads(1)
    recipe = states_recipe(source, tmp_path / "cache", views=["clean"])
    recipe["training"]["epochs"] = 2
    path = tmp_path / "clean.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", str(path), "--output-dir", str(tmp_path / "run")]) == 0
    states = sorted(path.name for path in (tmp_path / "cache" / "states").iterdir())
    assert states == ["tiny-dev-clean.safetensors", "tiny-train-clean.safetensors"]
    assert yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())["data"]["views"] == ["clean"]


def test_windows_and_masks_of_cached_states_are_drawn_per_epoch_and_trial():
    cache = FrontendCache([torch.randn(3, 50, 16).half() + 5 for _ in range(4)], np.array([0, 1, 0, 1]))
    items = StatesDataset(cache, crop_frames=20, mask_channels=4, mask_frames=5, seed=7)
    first = items[2]["states"]
    assert first.shape == (3, 20, 16) and (first == 0).any()
    assert torch.equal(StatesDataset(cache, 20, 4, 5, seed=7)[2]["states"], first)  # any process, any resume
    items.set_epoch(1)
    assert not torch.equal(items[2]["states"], first)
    assert torch.equal(StatesDataset(cache, None, 0, 0, seed=7)[2]["states"], cache.states[2])  # whole and unmasked


def refusal(source, tmp_path, caplog, sections: dict) -> str:
    """The one error line `nes2net train` logs (exit code 2) for `states_recipe` with `sections` updated."""
    recipe = states_recipe(source, tmp_path / "cache")
    for section, fields in sections.items():
        recipe[section].update(fields)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with caplog.at_level(logging.ERROR):
        assert main(["train", str(path), "--output-dir", str(tmp_path / "run")]) == 2
    (error,) = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    return error


@pytest.mark.parametrize(("data", "message"), [
    ({"corpora": {"tiny": {"path": "x"}}}, "data.corpora.tiny must be {dataset: FOLDER_OR_HUB_ID} or {source: FOLDER}"),
    ({"corpora": {"tiny": {"source": 3}}}, "data.corpora.tiny.source must be a path, got 3"),
    ({"corpora": []}, "data.corpora must map corpus names to"),
    ({"dataset": "data/mini"}, "data: set either dataset (audio) or corpora (cached front-end states), not both"),
    ({"corpora": None, "dataset": "data/mini"}, "data.cache_dir applies to cached front-end states"),
    ({"crop_frames": 0}, "data.crop_frames must be at least 1 or null, got 0"),
    ({"preprocess": {"trim": {}}}, "data.preprocess must be one of {remove_shortcuts}"),
    ({"views": ["clean", "noisy"]}, "data.views must list distinct views of ('clean', 'channel'), got ['clean', "),
    ({"views": []}, "data.views must list distinct views of ('clean', 'channel'), got []"),
    ({"corpora": {"copies": {"vocoded": "nowhere", "vocoders": ["world"]}}},
     "data.corpora.copies.vocoded must name a corpus of data.corpora given by {source: FOLDER}, got 'nowhere'"),
    ({"corpora": {"tiny": {"source": "x"}, "copies": {"vocoded": "tiny", "vocoders": ["world", "world"]}}},
     "data.corpora.copies must be {vocoded: CORPUS, vocoders: [distinct of griffin-lim, world, hifigan]}"),
])
def test_a_bad_data_section_is_refused_in_one_line_naming_the_key(source, tmp_path, caplog, data, message):
    error = refusal(source, tmp_path, caplog, {"data": data})
    assert message in error and "\n" not in error
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()  # refused before any work


@pytest.mark.parametrize(("sections", "message"), [
    ({"training": {"statistics_head": {"strength": 1}}},
     "training.statistics_head must be {inverse_strength: C, views: [...], corpora: [...], window: frames} or null"),
    ({"training": {"statistics_head": {"window": 24}}},
     "training.statistics_head.window must be an odd number of frames >= 1 (or None), not 24"),
    ({"training": {"statistics_head": {"corpora": ["elsewhere"]}}},
     "training.statistics_head.corpora must be among data.corpora, got ['elsewhere']"),
    ({"training": {"statistics_head": {"inverse_strength": 0}}},
     "training.statistics_head.inverse_strength must be positive, got 0"),
    ({"training": {"statistics_head": {"views": ["channel"]}}, "data": {"views": ["clean"]}},
     "training.statistics_head.views must be among data.views ['clean'], got ['channel']"),
    ({"training": {"statistics_head": {}}, "data": {"dev_split": None}},
     "training.statistics_head is fitted on cached states and fused on the dev split"),
])
def test_a_bad_statistics_head_is_refused_in_one_line(source, tmp_path, caplog, sections, message):
    error = refusal(source, tmp_path, caplog, sections)
    assert message in error and "\n" not in error
    assert not (tmp_path / "cache").exists()  # refused before any work


def test_a_statistics_head_on_a_model_that_reads_layer_statistics_is_refused_before_any_work(source, tmp_path):
    recipe = states_recipe(source, tmp_path / "cache")
    recipe["model"]["config"]["layer_statistics"] = True  # as a model fine-tuned from one with the head does
    recipe["training"]["statistics_head"] = {}
    with pytest.raises(ValueError, match="training.statistics_head adds layer statistics to the trained model, and "
                                         "this one already reads them"):
        train_on_states(recipe_from_dict(recipe), tmp_path / "run", None)
    assert not (tmp_path / "cache").exists()


def test_cached_states_need_a_frozen_front_end(source, tmp_path, caplog):
    recipe = states_recipe(source, tmp_path / "cache")
    recipe["training"]["frontend_lr"] = 1e-4
    path = tmp_path / "unfrozen.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with caplog.at_level(logging.ERROR):
        assert main(["train", str(path)]) == 2
    assert "the front-end must stay frozen (training.frontend_lr: 0)" in caplog.text


@pytest.mark.parametrize(("corpus", "message"), [
    ({"source": "no-such-folder"}, "data.corpora.tiny.source 'no-such-folder' cannot be built: "),
    ({"dataset": "no-such-folder"}, "data.corpora.tiny 'no-such-folder', split 'train', cannot be loaded"),
])
def test_a_corpus_that_cannot_be_read_is_named_in_one_line(source, tmp_path, caplog, corpus, message):
    recipe = states_recipe(source, tmp_path / "cache")
    recipe["data"]["corpora"] = {"tiny": corpus}
    path = tmp_path / "missing.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with caplog.at_level(logging.ERROR):
        assert main(["train", str(path), "--output-dir", str(tmp_path / "run")]) == 1
    (error,) = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert error.startswith(message) and "\n" not in error
    assert not (tmp_path / "cache" / "states").exists()  # refused before any encoding


def test_a_split_is_cached_once_more_through_each_named_channel(source, tmp_path):
    """`cache_conditions` encodes the same trials through a codec (states that differ from the clean ones), into a
    file of its own that a second call reads instead of encoding again."""
    torch.set_num_threads(1)
    recipe = recipe_from_dict(states_recipe(source, tmp_path / "cache"))
    corpora = build_corpora(recipe.data.corpora, tmp_path / "data")
    model = build_model(recipe.model, tmp_path / "weights")
    clean = FrontendCache.load(cache_corpora(model, corpora, tmp_path, recipe.data, splits=["dev"])[("tiny", "dev",
                                                                                                    "clean")])
    paths = cache_conditions(model, corpora, tmp_path, {"g711": "mulaw:rate=8000"}, split="dev")
    assert list(paths) == [("tiny", "dev", "g711")] and paths["tiny", "dev", "g711"].name == "tiny-dev-g711.safetensors"
    coded = FrontendCache.load(paths["tiny", "dev", "g711"])
    assert coded.metadata["utt_id"] == clean.metadata["utt_id"] and (coded.labels == clean.labels).all()
    assert all(a.shape == b.shape for a, b in zip(coded.states, clean.states))
    assert min(float((a.float() - b.float()).abs().max()) for a, b in zip(coded.states, clean.states)) > 1e-3
    written = paths["tiny", "dev", "g711"].stat().st_mtime_ns
    assert cache_conditions(model, corpora, tmp_path, {"g711": "mulaw:rate=8000"}, split="dev") == paths
    assert paths["tiny", "dev", "g711"].stat().st_mtime_ns == written
