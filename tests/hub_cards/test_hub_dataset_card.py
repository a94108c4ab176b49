"""Dataset cards rendered from a built folder's build_info.json, then read back as the Hub and datasets read them."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard, metadata_load

from hub_cards.checks import dataset_folder_problems
from hub_cards.dataset_card import DatasetCardSpec, render_dataset_card, size_category, write_dataset_card
from hub_cards.metadata import dataset_card_problems
from tests.hub_cards.hub_helpers import build_dataset_folder

SPEC = DatasetCardSpec(repo_id="nes2net-test/tiny-corpus", source_url="https://example.org/corpus",
                       citation="@misc{tiny, title = {Tiny}}")


def test_dataset_card_renders_reads_back_and_loads(tmp_path: Path):
    from datasets import load_dataset

    folder = build_dataset_folder(tmp_path / "dataset")
    readme = write_dataset_card(folder, SPEC)
    card = DatasetCard.load(readme)
    metadata = metadata_load(readme)

    assert dataset_card_problems(card) == []
    assert card.data.license == "cc-by-4.0"
    assert card.data.task_categories == ["audio-classification"]
    assert card.data.size_categories == ["n<1K"]
    assert metadata["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"},
                                                  {"split": "test", "path": "data/test-*.parquet"}]}
    ]
    label = next(f for f in metadata["dataset_info"]["features"] if f["name"] == "label")
    assert label["dtype"]["class_label"]["names"] == {"0": "spoof", "1": "bonafide"}
    assert {s["name"]: s["num_examples"] for s in metadata["dataset_info"]["splits"]} == {"train": 6, "test": 4}
    assert "| train | 6 | 3 | 3 |" in card.text and "| test | 4 | 2 | 2 |" in card.text
    assert "| A01 | 3 | 2 |" in card.text
    assert "| `codec` | string | corpus metadata" in card.text
    assert "@misc{tiny, title = {Tiny}}" in card.text and "https://example.org/corpus" in card.text
    assert dataset_folder_problems(folder) == []

    # The card's `configs` are what `datasets` follows: the splits load with their rows and decoded audio.
    dataset = load_dataset(str(folder))
    assert {split: len(rows) for split, rows in dataset.items()} == {"train": 6, "test": 4}
    assert dataset["train"].features["label"].names == ["spoof", "bonafide"]
    assert dataset["test"][1]["label"] == 1
    audio = dataset["test"][0]["audio"]
    assert audio["sampling_rate"] == 16_000
    assert len(audio["array"]) == 8_000


def test_wrong_label_names_and_missing_build_info_are_refused(tmp_path: Path):
    folder = build_dataset_folder(tmp_path / "dataset")
    info = json.loads((folder / "build_info.json").read_text())
    info["label_names"] = ["bonafide", "spoof"]
    (folder / "build_info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"label_names must be \['spoof', 'bonafide'\]"):
        render_dataset_card(folder, SPEC)
    (folder / "build_info.json").unlink()
    with pytest.raises(ValueError, match="build_info.json is missing"):
        render_dataset_card(folder, SPEC)


@pytest.mark.parametrize(("rows", "category"), [(0, "n<1K"), (999, "n<1K"), (1_000, "1K<n<10K"),
                                                (611_829, "100K<n<1M"), (10**9, "n>100M")])
def test_size_categories(rows: int, category: str):
    assert size_category(rows) == category


def test_card_of_a_dataset_built_by_nes2net_data_build(tmp_path: Path):
    from training.data.build import build_dataset
    from training.data.synthetic import write_synthetic_audio

    root = tmp_path / "corpus"
    for split, count in (("train", 4), ("test", 2)):
        for label in ("bonafide", "spoof"):
            for index in range(count):
                name = f"{split}/{label}/{label}{index}.flac"  # one clip per file: a copy would be refused
                write_synthetic_audio(root / name, 0.3, seed=zlib.crc32(name.encode()))
    folder = tmp_path / "built"
    build_dataset("generic", root, folder, progress=False)

    card = render_dataset_card(folder, DatasetCardSpec(repo_id="nes2net-test/generic", license="cc-by-4.0"))
    assert dataset_card_problems(card) == []
    assert "| train | 8 | 4 | 4 |" in card.text and "| test | 4 | 2 | 2 |" in card.text
    write_dataset_card(folder, DatasetCardSpec(repo_id="nes2net-test/generic", license="cc-by-4.0"))
    assert dataset_folder_problems(folder) == []
