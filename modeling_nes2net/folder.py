"""Writing a complete, loadable model folder: weights, config with `auto_map`, code and feature extractor."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .feature_extraction_nes2net import Nes2NetFeatureExtractor
from .modeling_nes2net import Nes2NetForAudioClassification


def feature_extractor_for(model: Nes2NetForAudioClassification) -> Nes2NetFeatureExtractor:
    """The feature extractor of a Nes2Net model: the raw waveform at the model's rate, unnormalised, with masks,
    validated."""
    return Nes2NetFeatureExtractor(sampling_rate=model.config.sampling_rate)


def save_model_folder(
    model: Nes2NetForAudioClassification,
    output_dir: str | os.PathLike,
    feature_extractor: Nes2NetFeatureExtractor | None = None,
    model_card: str | None = None,
) -> Path:
    """Save `model` (safetensors + config + remote code), its feature extractor and, if given, the `model_card` text
    (as README.md) to `output_dir`, atomically: the folder appears complete or not at all, and an existing folder is
    replaced only once the new one is written."""
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        (feature_extractor or feature_extractor_for(model)).save_pretrained(staging)
        if model_card is not None:
            (staging / "README.md").write_text(model_card, encoding="utf-8")
        if output_dir.exists():
            backup = output_dir.with_name(f".{output_dir.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            os.replace(output_dir, backup)
            os.replace(staging, output_dir)
            shutil.rmtree(backup)
        else:
            os.replace(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output_dir
