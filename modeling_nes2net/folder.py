"""Writing a complete, loadable model folder: weights, config with `auto_map`, code and feature extractor.

The package holds the only copy of the model code. Every folder written here carries the code files that
`trust_remote_code` needs: `save_pretrained` copies them (transformers' `custom_object_save`, switched on by
`register_for_auto_class` in `modeling_nes2net/__init__.py`), and `export_model_folder` re-saves a folder that has
none, such as the embedded default model, which is package data loaded by the package's own classes.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from transformers.dynamic_module_utils import get_relative_import_files

from .atomic import atomic_folder
from .configuration_nes2net import Nes2NetConfig
from .feature_extraction_nes2net import Nes2NetFeatureExtractor
from .modeling_nes2net import Nes2NetForAudioClassification
from .weight_checks import non_finite_problem

REMOTE_CODE_CLASSES = (Nes2NetConfig, Nes2NetForAudioClassification, Nes2NetFeatureExtractor)


def feature_extractor_for(model: Nes2NetForAudioClassification) -> Nes2NetFeatureExtractor:
    """The feature extractor of a Nes2Net model: the raw waveform at the model's rate, unnormalised, with masks,
    validated."""
    return Nes2NetFeatureExtractor(sampling_rate=model.config.sampling_rate)


def remote_code_files() -> list[str]:
    """Names of the code files a folder carries for `trust_remote_code`: the modules of the auto classes and their
    relative imports, as `custom_object_save` copies them."""
    modules = [sys.modules[cls.__module__].__file__ for cls in REMOTE_CODE_CLASSES]
    files = modules + [file for module in modules for file in get_relative_import_files(module)]
    return sorted({Path(file).name for file in files})


def save_model_folder(
    model: Nes2NetForAudioClassification,
    output_dir: str | os.PathLike,
    feature_extractor: Nes2NetFeatureExtractor | None = None,
    model_card: str | None = None,
) -> Path:
    """Save `model` (safetensors + config + remote code), its feature extractor and, if given, the `model_card` text
    (as README.md) to `output_dir`, atomically: the folder appears complete or not at all, and an existing folder is
    replaced only once the new one is written. Refuses (`ValueError`, nothing written) weights holding NaN or
    infinite values."""
    output_dir = Path(output_dir)
    broken = non_finite_problem(model.state_dict().items())
    if broken:
        raise ValueError(f"refusing to write {output_dir}: {broken}")
    with atomic_folder(output_dir) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        (feature_extractor or feature_extractor_for(model)).save_pretrained(staging)
        if model_card is not None:
            (staging / "README.md").write_text(model_card, encoding="utf-8")
    return output_dir


def export_model_folder(source: str | os.PathLike, output_dir: str | os.PathLike) -> Path:
    """Copy the model folder `source` to `output_dir` as `save_pretrained` writes it (weights, config and feature
    extractor with their `auto_map`, the package's code next to them), keeping its other files (card, evaluation
    outputs), so that it loads with `trust_remote_code=True` where this package is not installed; atomically."""
    source, output_dir = Path(source), Path(output_dir)
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source} is not a model folder (no config.json)")
    model = Nes2NetForAudioClassification.from_pretrained(source)
    feature_extractor = Nes2NetFeatureExtractor.from_pretrained(source)
    with atomic_folder(output_dir) as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        model.save_pretrained(staging, safe_serialization=True)
        feature_extractor.save_pretrained(staging)
    return output_dir
