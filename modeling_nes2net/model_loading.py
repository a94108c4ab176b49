"""Loading a model to score with, refusing in one line what would score with random or broken weights.

`load_model` is the one loader of detection, evaluation, calibration and the Space: a model folder or Hub id (None:
the embedded default model, `DEFAULT_MODEL_DIR`, or its frame model `DEFAULT_FRAME_MODEL_DIR` when built), as a
`Nes2NetForAudioFrameClassification` when the folder's architecture has the frame head. `load_onnx_export` opens a
folder written by `nes2net export onnx` instead.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .modeling_nes2net import Nes2NetForAudioClassification, Nes2NetForAudioFrameClassification
from .weight_checks import ModelLoadError

if TYPE_CHECKING:
    from .onnx_runtime import Nes2NetOnnxModel

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"
DEFAULT_FRAME_MODEL_DIR = DEFAULT_MODEL_DIR.with_name("default_frame_model")
"""The embedded default's frame model, written by `python -m training.frame_model` (the default, plus a frame head):
when it is there, `load_model(None)` loads it instead. Rebuilding the default removes it (`training.default_model`),
so it never pairs a frame head with another model's verdicts."""


class ModelNotFoundError(FileNotFoundError):
    """No model folder where one was expected (for instance the embedded default model is not installed)."""


def resolve_model_path(model_name_or_path: str | None) -> str:
    """`model_name_or_path`, or the embedded default model's folder; a clear error when that is not installed, or
    when a local path (one that cannot be a Hub id `owner/name`) names no folder."""
    if model_name_or_path is None:
        if not (DEFAULT_MODEL_DIR / "config.json").is_file():
            raise ModelNotFoundError(
                f"no default model is installed at {DEFAULT_MODEL_DIR}; convert a released Nes2Net checkpoint with "
                "`nes2net convert CHECKPOINT OUTPUT_DIR` and pass `--model OUTPUT_DIR` (or a Hub model id)"
            )
        return str(DEFAULT_MODEL_DIR)
    name = str(model_name_or_path)
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name
    if looks_local and not Path(name).expanduser().is_dir():
        raise ModelNotFoundError(f"{name}: no such model folder (and not a Hub id, which reads owner/name)")
    return name


def load_model(
    model_name_or_path: str | os.PathLike | None = None, model_class: type[Nes2NetForAudioClassification] | None = None
) -> Nes2NetForAudioClassification:
    """The model of a folder or Hub id (None: the embedded default model, or its frame model `DEFAULT_FRAME_MODEL_DIR` when
    built), ready to score (eval mode): a `Nes2NetForAudioFrameClassification` when the folder's architecture has the
    frame head, unless `model_class` says which class to load it as.

    Raises a one-line `ModelLoadError` naming the folder for what would otherwise score with random or broken
    weights (refused by `Nes2NetPreTrainedModel.from_pretrained`: missing, foreign, non-finite or integer-stored
    weights), weights that do not fit the config, and a name that is neither a folder nor a reachable Hub model.
    """
    location = resolve_model_path(None if model_name_or_path is None else str(model_name_or_path))
    if model_name_or_path is None and (DEFAULT_FRAME_MODEL_DIR / "config.json").is_file():
        location = str(DEFAULT_FRAME_MODEL_DIR)
    loader_log = logging.getLogger("transformers")  # its load report: what it says is refused below in one line
    level = loader_log.level
    loader_log.setLevel(logging.ERROR)
    try:
        architectures = Nes2NetForAudioClassification.config_class.from_pretrained(location).architectures or []
        framed = Nes2NetForAudioFrameClassification.__name__ in architectures
        model_class = model_class or (Nes2NetForAudioFrameClassification if framed else Nes2NetForAudioClassification)
        return model_class.from_pretrained(location).eval()
    except ModelLoadError:
        raise
    except Exception as error:  # any other failure to build the model from the folder is one line naming it
        reason = " ".join(str(error).split())
        if "size mismatch" in reason or "ignore_mismatched_sizes" in reason:
            reason = "its weights do not fit its config (another architecture or preset?)"
        elif not Path(location).is_dir():
            reason = f"not a model folder, and not found on the Hub ({type(error).__name__})"
        raise ModelLoadError(f"{location}: cannot load the model: {reason[:300]}") from None
    finally:
        loader_log.setLevel(level)


def load_onnx_export(
    path: str | os.PathLike, variant: str = "fp32"
) -> tuple[Nes2NetForAudioClassification, Nes2NetOnnxModel]:
    """The `variant` file (`"fp32"`, `"int8"` or `"fp16"`) of a folder (or one `.onnx` file) written by `nes2net
    export onnx`, in an ONNX Runtime session, with a weightless model of its config (on the meta device) for the
    frame arithmetic. Raises a one-line `ModelLoadError` naming the file when it cannot be loaded."""
    from .onnx_runtime import Nes2NetOnnxModel

    try:
        graph = Nes2NetOnnxModel(path, variant)
    except (OSError, ValueError) as error:
        raise ModelLoadError(" ".join(str(error).split())) from None
    with torch.device("meta"):
        model = Nes2NetForAudioClassification(graph.config)
    return model, graph
