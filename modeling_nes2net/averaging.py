"""Checkpoint averaging as the paper uses it: the element-wise mean of N checkpoints of one architecture (e.g. the
epochs with the best development EER).

Floating-point tensors are averaged in float64 and stored in their own dtype. Integer tensors are BatchNorm's
`num_batches_tracked` step counters: they take the maximum over the checkpoints (a count of updates, not a weight;
the authors' script averaged them too, which only matters to a model trained further in BatchNorm's cumulative mode).

`average_checkpoints` takes either the authors' `.pth` / `.pt` files (written back as a plain `.pth` state dict, with
`module.` prefixes and `model_state_dict` wrappers removed, loadable with `weights_only=True` and by `nes2net convert`)
or converted model folders (written as a folder).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .atomic import atomic_output
from .convert import ConversionError, load_original_state_dict
from .feature_extraction_nes2net import Nes2NetFeatureExtractor
from .folder import save_model_folder
from .modeling_nes2net import Nes2NetForAudioClassification
from .weight_checks import ModelLoadError

logger = logging.getLogger(__name__)

# Config entries that legitimately differ between checkpoints of one architecture.
_VOLATILE_CONFIG_KEYS = ("_name_or_path", "transformers_version", "calibration_scale", "calibration_offset")


class AveragingError(ValueError):
    """The checkpoints cannot be averaged (different architectures, too few, unreadable); nothing was written."""


def average_state_dicts(
    state_dicts: Iterable[dict[str, torch.Tensor]], names: Sequence[str] | None = None
) -> dict[str, torch.Tensor]:
    """Element-wise mean of state dicts with the same names, shapes and dtypes (integer tensors: the maximum).

    `state_dicts` is consumed one at a time, so only the running sums and the current checkpoint are in memory;
    `names` label them in error messages.
    """
    totals: dict[str, torch.Tensor] = {}
    layout: dict[str, tuple[torch.Size, torch.dtype]] = {}
    count = 0
    for index, state in enumerate(state_dicts):
        name = names[index] if names is not None else f"checkpoint {index + 1}"
        if count == 0:
            layout = {key: (tensor.shape, tensor.dtype) for key, tensor in state.items()}
            totals = {
                key: tensor.to(torch.float64) if tensor.dtype.is_floating_point else tensor.clone()
                for key, tensor in state.items()
            }
        else:
            _check_same_layout(layout, state, name, names[0] if names is not None else "checkpoint 1")
            for key, tensor in state.items():
                if tensor.dtype.is_floating_point:
                    totals[key] += tensor.to(torch.float64)
                else:
                    totals[key] = torch.maximum(totals[key], tensor)
        count += 1
    if count < 2:
        raise AveragingError(f"averaging needs at least two checkpoints, got {count}")
    return {
        key: (total / count).to(layout[key][1]) if layout[key][1].is_floating_point else total
        for key, total in totals.items()
    }


def _check_same_layout(
    layout: dict[str, tuple[torch.Size, torch.dtype]], state: dict[str, torch.Tensor], name: str, first: str
) -> None:
    missing = sorted(set(layout) - set(state))
    extra = sorted(set(state) - set(layout))
    different = sorted(
        f"{key}: {tuple(layout[key][0])} {layout[key][1]} vs {tuple(tensor.shape)} {tensor.dtype}"
        for key, tensor in state.items()
        if key in layout and (tensor.shape, tensor.dtype) != layout[key]
    )
    if missing or extra or different:
        details = [
            f"lacks {', '.join(missing[:10])}" if missing else "",
            f"has extra {', '.join(extra[:10])}" if extra else "",
            f"differs in {'; '.join(different[:10])}" if different else "",
        ]
        raise AveragingError(
            f"{name} does not have the architecture of {first}: it " + ", ".join(d for d in details if d)
        )


def _save_state_dict_atomic(state_dict: dict[str, torch.Tensor], output: Path) -> Path:
    with atomic_output(output) as temporary:
        torch.save(state_dict, temporary)
    return output


def average_original_checkpoints(paths: Sequence[str | os.PathLike], output: str | os.PathLike) -> Path:
    """Average the authors' checkpoints into a plain `.pth` state dict at `output` (written atomically)."""
    paths = [Path(path) for path in paths]

    def states() -> Iterator[dict[str, torch.Tensor]]:
        for path in tqdm(paths, desc="averaging checkpoints", unit="checkpoint"):
            try:
                state, _ = load_original_state_dict(path)
            except ConversionError as error:
                raise AveragingError(str(error)) from error
            yield state

    averaged = average_state_dicts(states(), names=[str(path) for path in paths])
    return _save_state_dict_atomic(averaged, Path(output))


def _comparable_config(model: Nes2NetForAudioClassification) -> dict:
    config = model.config.to_dict()
    for key in _VOLATILE_CONFIG_KEYS:
        config.pop(key, None)
    return config


def _load_folder(folder: Path, model_class: type[Nes2NetForAudioClassification]) -> Nes2NetForAudioClassification:
    """The model of `folder`, or `AveragingError` naming it when it is damaged (`ModelLoadError`: NaN weights, ...)."""
    try:
        return model_class.from_pretrained(folder)
    except ModelLoadError as error:
        raise AveragingError(str(error)) from None


def average_model_folders(
    folders: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    model_card: str | None = None,
    model_class: type[Nes2NetForAudioClassification] = Nes2NetForAudioClassification,
) -> Path:
    """Average converted or trained model folders with the same config into a folder at `output` (atomic), with
    `model_card` as its README.md when given; `model_class` loads them (e.g. `Nes2NetForAudioFrameClassification`)."""
    folders = [Path(folder) for folder in folders]
    first = _load_folder(folders[0], model_class)
    reference = _comparable_config(first)
    calibrations = set()

    def states() -> Iterator[dict[str, torch.Tensor]]:
        for index, folder in enumerate(tqdm(folders, desc="averaging model folders", unit="folder")):
            model = first if index == 0 else _load_folder(folder, model_class)
            config = _comparable_config(model)
            if config != reference:
                differences = sorted(
                    key for key in reference.keys() | config.keys() if reference.get(key) != config.get(key)
                )
                raise AveragingError(f"{folder} has another config than {folders[0]}: {', '.join(differences)}")
            calibrations.add((model.config.calibration_scale, model.config.calibration_offset))
            yield model.state_dict()

    averaged = average_state_dicts(states(), names=[str(folder) for folder in folders])
    first.load_state_dict(averaged, strict=True)
    if len(calibrations) > 1:
        logger.warning("the folders have different score calibrations (scale, offset) %s: the average has the "
                       "identity; recalibrate it", sorted(calibrations))
        first.config.calibration_scale, first.config.calibration_offset = 1.0, 0.0
    feature_extractor = Nes2NetFeatureExtractor.from_pretrained(folders[0])
    return save_model_folder(first, output, feature_extractor, model_card=model_card)


def average_checkpoints(
    inputs: Sequence[str | os.PathLike], output: str | os.PathLike, *, overwrite: bool = False,
    model_card: str | None = None,
) -> Path:
    """Average `inputs`, all original checkpoint files or all model folders, into `output` (a `.pth` file or a
    folder, matching the inputs; a folder gets `model_card` as its README.md when given). Raises `AveragingError`
    (nothing written) or `FileExistsError` unless `overwrite`."""
    inputs, output = [Path(path) for path in inputs], Path(output)
    if len(inputs) < 2:
        raise AveragingError(f"averaging needs at least two checkpoints, got {len(inputs)}")
    absent = [str(path) for path in inputs if not path.exists()]
    if absent:
        raise AveragingError(f"not found: {', '.join(absent)}")
    folders = [path.is_dir() for path in inputs]
    if any(folders) and not all(folders):
        raise AveragingError("give either original checkpoint files or model folders, not both")
    if output.exists() and not overwrite and (output.is_file() or any(output.iterdir())):
        raise FileExistsError(f"{output} exists (pass overwrite=True / --overwrite to replace it)")
    if all(folders):
        return average_model_folders(inputs, output, model_card)
    return average_original_checkpoints(inputs, output)
