"""Checks a model or dataset folder before it is published: each returns every problem found, empty when fine."""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Callable
from pathlib import Path

from huggingface_hub import DatasetCard, ModelCard

from .dataset_card import read_build_info
from .generalisation import load_generalisation_record
from .published_files import (
    CARD_FILE,
    CONFIG_FILE,
    FEATURE_EXTRACTOR_FILE,
    FORBIDDEN_SUFFIXES,
    link_problems,
    list_files,
    read_config,
    read_json_object,
    remote_code_files,
)
from .metadata import configured_data_files, dataset_card_problems, model_card_problems


def _is_hidden(path: str) -> bool:
    return any(part.startswith(".") for part in path.split("/"))


def _common_problems(files: list[str]) -> list[str]:
    problems = []
    for path in files:
        if path.lower().endswith(FORBIDDEN_SUFFIXES):
            problems.append(f"{path}: pickle-based files are never published (weights must be safetensors)")
        elif _is_hidden(path):
            problems.append(f"{path}: hidden file would be uploaded; remove it")
    return problems


def _unexplained(files: list[str], card_text: str, explained: set[str]) -> list[str]:
    """Files neither covered by the layout rules (`explained`) nor named in the card text as `path`."""
    return [
        f"{path}: the card does not explain this file (list it in the card or remove it)"
        for path in files
        if path not in explained
        and f"`{path}`" not in card_text
        and not (path.lower().endswith(FORBIDDEN_SUFFIXES) or _is_hidden(path))  # reported already
    ]


def _read(read: Callable[[], dict], problems: list[str]) -> dict | None:
    """What `read()` returns, or None with the message of the `ValueError` it raised added to `problems`."""
    try:
        return read()
    except ValueError as error:
        problems.append(str(error))
        return None


def _load_card(folder: Path, card_class: type) -> tuple[object | None, list[str]]:
    if not (folder / CARD_FILE).is_file():
        return None, [f"{CARD_FILE} (the card) is missing"]
    try:
        return card_class.load(folder / CARD_FILE), []
    except (ValueError, TypeError, AttributeError) as error:
        return None, [f"{CARD_FILE}: metadata cannot be read ({error})"]
    except Exception as error:  # yaml errors have no common base class worth importing here
        return None, [f"{CARD_FILE}: metadata is not valid YAML ({type(error).__name__}: {error})"]


def _weights_problems(folder: Path, files: list[str]) -> list[str]:
    """Weights are `model.safetensors`, or shards listed by `model.safetensors.index.json`; they must read back
    whole, every value finite."""
    from safetensors import safe_open

    from modeling_nes2net.weight_checks import non_finite_problem

    index_path = folder / "model.safetensors.index.json"
    if index_path.is_file():
        try:
            shards = sorted(set(json.loads(index_path.read_text(encoding="utf-8"))["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, AttributeError) as error:
            return [f"model.safetensors.index.json cannot be read ({type(error).__name__}: {error})"]
    elif "model.safetensors" in files:
        shards = ["model.safetensors"]
    else:
        return ["no weights: model.safetensors (or a sharded model.safetensors.index.json) is missing"]
    problems = []
    for shard in shards:
        if shard not in files:
            problems.append(f"{shard} is listed in the weight index but missing")
            continue
        try:
            with safe_open(str(folder / shard), framework="pt") as handle:  # one tensor in memory at a time
                broken = non_finite_problem((name, handle.get_tensor(name)) for name in handle.keys())
        except Exception as error:  # safetensors raises its own SafetensorError and OSError
            problems.append(f"{shard} is not a readable safetensors file ({error})")
            continue
        if broken:
            problems.append(f"{shard}: {broken}")
    return problems


def _folder_problems(folder: str | os.PathLike, check: Callable[[Path, list[str]], list[str]]) -> list[str]:
    """`folder` is not a folder, or holds symbolic links (nothing in it is read then); else its pickle-based and
    hidden files, then what `check(folder, files)` finds."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    links = link_problems(folder)
    if links:
        return links
    files = list_files(folder)
    return _common_problems(files) + check(folder, files)


def model_folder_problems(folder: str | os.PathLike) -> list[str]:
    """Everything that stops `folder` from being a complete, self-explaining Hub model repository."""
    return _folder_problems(folder, _model_problems)


def dataset_folder_problems(folder: str | os.PathLike) -> list[str]:
    """Everything that stops `folder` from being a complete Hub dataset repository of Parquet shards."""
    return _folder_problems(folder, _dataset_problems)


def _model_problems(folder: Path, files: list[str]) -> list[str]:
    problems = _weights_problems(folder, files)
    config = _read(lambda: read_config(folder), problems)
    if config is not None:
        if not config.get("auto_map"):
            problems.append(f"{CONFIG_FILE} has no auto_map: trust_remote_code could not find the model code")
        _, code_problems = remote_code_files(folder, config)
        problems += code_problems
    extractor = _read(lambda: read_json_object(
        folder / FEATURE_EXTRACTOR_FILE, missing=f"{FEATURE_EXTRACTOR_FILE} (the feature extractor) is missing"
    ), problems)
    if extractor is not None:
        if not extractor.get("feature_extractor_type"):
            problems.append(f"{FEATURE_EXTRACTOR_FILE} does not name its feature_extractor_type")
        if config is not None and extractor.get("sampling_rate") != config.get("sampling_rate", 16000):
            problems.append(
                f"{FEATURE_EXTRACTOR_FILE} samples at {extractor.get('sampling_rate')} Hz but the model expects "
                f"{config.get('sampling_rate', 16000)} Hz"
            )
    _read(lambda: load_generalisation_record(folder) or {}, problems)
    card, card_problems = _load_card(folder, ModelCard)
    problems += card_problems
    if card is not None:
        # A converted release names the pre-trained front-end it was fine-tuned from; a model trained here may have
        # trained its front-end from scratch (the mini recipe) or have none (the spectrogram).
        problems += model_card_problems(card, require_base_model="converted" in (card.data.tags or []))
        problems += _unexplained(files, card.text, {CARD_FILE})
    return problems


def _dataset_problems(folder: Path, files: list[str]) -> list[str]:
    import pyarrow.parquet as parquet

    problems = []
    info = _read(lambda: read_build_info(folder), problems)
    card, card_problems = _load_card(folder, DatasetCard)
    problems += card_problems
    if card is None:
        return problems
    metadata_problems = dataset_card_problems(card)
    problems += metadata_problems
    data_files = [path for path in files if path.endswith(".parquet")]
    matched: set[str] = set()
    rows_per_split: dict[str, int] = {}
    if not metadata_problems:
        for (config_name, split), patterns in configured_data_files(card).items():
            shards = sorted(p for p in data_files if any(fnmatch.fnmatch(p, pattern) for pattern in patterns))
            if not shards:
                problems.append(f"config '{config_name}' split '{split}': no file matches {patterns}")
            matched.update(shards)
            for shard in shards:
                try:
                    rows = parquet.read_metadata(folder / shard).num_rows
                except Exception as error:  # pyarrow raises ArrowInvalid / OSError
                    problems.append(f"{shard} is not a readable Parquet file ({error})")
                    continue
                rows_per_split[split] = rows_per_split.get(split, 0) + rows
    unlisted = [path for path in data_files if path not in matched]
    problems += [f"{path}: Parquet file not listed in any config of the card" for path in unlisted]
    if info is not None and not metadata_problems:
        for split, split_info in info["splits"].items():
            if rows_per_split.get(split, 0) != split_info["num_rows"]:
                problems.append(
                    f"split '{split}': the shards hold {rows_per_split.get(split, 0)} rows, "
                    f"build_info.json says {split_info['num_rows']}"
                )
    explained = {CARD_FILE, "build_info.json"} | matched
    problems += _unexplained([path for path in files if path not in data_files], card.text, explained)
    return problems
