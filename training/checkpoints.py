"""Resumable training checkpoints: tensors and JSON only, so resuming a run never unpickles (never runs) anything.

`CHECKPOINTS/step-NNNNNNNN/` holds

    model.safetensors        the weights of the (unwrapped) model
    optimizer.safetensors    the optimiser's per-parameter tensors; its param groups and other values as JSON metadata
    scheduler.json           the learning-rate scheduler's `state_dict`
    grad_scaler.json         the fp16 gradient scaler's `state_dict` (fp16 runs only)
    rng-NNNNN.json           each process's RNG states: Python, NumPy, torch CPU and accelerator
    trainer_state.json       where the run is (epoch, step, best epochs, ...), written last

A checkpoint is written as `CHECKPOINTS/.step-NNNNNNNN.partial/` by every process, completed with
`trainer_state.json` by the main process and only then renamed into place; `complete_checkpoints` ignores anything
else. The last `keep` (default 2) are kept: `resume_latest` loads the newest that reads back whole and, when a newer
one is damaged (truncated, empty, bad JSON, NaN or infinite tensors), warns naming the file, moves it aside as
`step-NNNNNNNN.damaged/` and continues from the older. With several nodes, the output folder must be on a file system they share.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from modeling_nes2net.weight_checks import non_finite_problem

logger = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
SCHEDULER_FILE = "scheduler.json"
GRAD_SCALER_FILE = "grad_scaler.json"
CHECKPOINT_NAME = re.compile(r"^step-(\d{8})$")
DAMAGED_SUFFIX = ".damaged"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read back or does not fit the run; the message names the file."""


def checkpoint_dir(root: Path, step: int) -> Path:
    return root / f"step-{step:08d}"


def rng_file(process_index: int) -> str:
    return f"rng-{process_index:05d}.json"


def complete_checkpoints(root: str | os.PathLike) -> list[Path]:
    """The committed checkpoints under `root` (those holding a trainer state), newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    complete = [
        path for path in root.iterdir() if CHECKPOINT_NAME.match(path.name) and (path / TRAINER_STATE).is_file()
    ]
    return sorted(complete, key=lambda path: path.name, reverse=True)


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    """The complete checkpoint of the highest step under `root`, or None."""
    return next(iter(complete_checkpoints(root)), None)


# ----------------------------------------------------------------------------------------------- saving


def save_checkpoint(
    accelerator: Accelerator,
    root: str | os.PathLike,
    step: int,
    trainer_state: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    keep: int = 2,
    before_commit: Callable[[], None] | None = None,
) -> Path:
    """Save a resumable checkpoint of `step` under `root` (every process must call this); keep the last `keep`.

    `before_commit` runs on the main process once everything is written, just before the rename that makes the
    checkpoint visible (tests use it to simulate a crash at the worst moment).
    """
    root = Path(root)
    final = checkpoint_dir(root, step)
    staging = root / f".{final.name}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    _write_json_durably(staging / rng_file(accelerator.process_index), _rng_states(accelerator.device))
    if accelerator.is_main_process:
        _save_tensors(staging / MODEL_FILE, accelerator.unwrap_model(model).state_dict(), {})
        _save_optimizer(staging / OPTIMIZER_FILE, optimizer.state_dict())
        _write_json_durably(staging / SCHEDULER_FILE, scheduler.state_dict())
        if accelerator.scaler is not None:
            _write_json_durably(staging / GRAD_SCALER_FILE, accelerator.scaler.state_dict())
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write_json_durably(staging / TRAINER_STATE, trainer_state)
        if before_commit is not None:
            before_commit()
        if final.exists():  # the same step saved again after a resume: replace it
            shutil.rmtree(final)
        os.replace(staging, final)
        _fsync(root)
        for old in complete_checkpoints(root)[keep:]:
            shutil.rmtree(old)
        logger.info("saved checkpoint %s", final)
    accelerator.wait_for_everyone()
    return final


def remove_partial_checkpoints(root: str | os.PathLike) -> None:
    """Delete what an interrupted `save_checkpoint` left behind (main process only)."""
    for partial in Path(root).glob(".step-*.partial") if Path(root).is_dir() else ():
        shutil.rmtree(partial, ignore_errors=True)


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    contiguous = {name: tensor.detach().contiguous() for name, tensor in tensors.items()}
    save_file(contiguous, path, metadata={key: json.dumps(value) for key, value in metadata.items()})
    _fsync(path)


def _save_optimizer(path: Path, state_dict: dict[str, Any]) -> None:
    """`{"state": {param: {name: tensor or value}}, "param_groups": [...]}`: tensors as `PARAM.NAME`, the rest JSON."""
    tensors, values = {}, {}
    for param, state in state_dict["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{param}.{name}"] = value
            else:
                values.setdefault(str(param), {})[name] = value
    metadata = {"param_groups": state_dict["param_groups"], "values": values,
                "tensors": {str(param): sorted(state) for param, state in state_dict["state"].items()}}
    _save_tensors(path, tensors, metadata)


def _rng_states(device: torch.device) -> dict[str, Any]:
    version, mt_state, gauss = random.getstate()
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    states = {
        "python": [version, list(mt_state), gauss],
        "numpy": [name, keys.tolist(), position, has_gauss, cached_gaussian],
        "torch": torch.get_rng_state().tolist(),
    }
    if device.type != "cpu":
        states[device.type] = [state.tolist() for state in torch.get_device_module(device.type).get_rng_state_all()]
    return states


# ----------------------------------------------------------------------------------------------- resuming


def resume_latest(
    accelerator: Accelerator,
    root: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    read_state: Callable[[dict[str, Any]], Any] = dict,
) -> tuple[Path, Any] | None:
    """Load the newest checkpoint under `root` that reads back whole into the run's objects (every process must
    call this); returns it and its trainer state (as `read_state` makes it of the saved dict: it raises `ValueError`
    or `TypeError` for a state the run cannot continue from), or None when there is none. Damaged newer
    checkpoints are moved aside with a warning; raises CheckpointError when none can be loaded."""
    failures = []
    for checkpoint in complete_checkpoints(root):
        try:
            trainer_state = load_checkpoint(accelerator, checkpoint, model, optimizer, scheduler, read_state)
            error = None
        except CheckpointError as caught:
            error = caught
        # every process must continue from the same checkpoint, even if only one of them could not read its files
        failed = accelerator.gather(torch.tensor([int(error is not None)], device=accelerator.device)).any().item()
        if not failed:
            if failures and accelerator.is_main_process:
                _set_aside(failures, checkpoint)
            accelerator.wait_for_everyone()
            return checkpoint, trainer_state
        failures.append((checkpoint, error or CheckpointError(f"{checkpoint}: unreadable on another process")))
    if failures:
        listing = "; ".join(str(error) for _, error in failures)
        raise CheckpointError(f"no checkpoint under {root} can be resumed: {listing}")
    return None


def _set_aside(failures: list[tuple[Path, CheckpointError]], resumed: Path) -> None:
    for checkpoint, error in failures:
        damaged = checkpoint.with_name(checkpoint.name + DAMAGED_SUFFIX)
        shutil.rmtree(damaged, ignore_errors=True)
        os.replace(checkpoint, damaged)
        logger.warning("checkpoint %s is damaged (%s): resuming from the older %s; the damaged one is kept as %s",
                       checkpoint.name, error, resumed.name, damaged)


def load_checkpoint(
    accelerator: Accelerator,
    checkpoint: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    read_state: Callable[[dict[str, Any]], Any] = dict,
) -> Any:
    """Restore the model, optimiser, scheduler, gradient scaler and this process's RNG states from `checkpoint`;
    returns its trainer state, `read_state(saved dict)`. Every file is read (tensors and JSON, nothing unpickled)
    and the state checked before anything is changed; raises CheckpointError naming the file that is damaged or
    does not fit."""
    saved_state = _read_json(checkpoint / TRAINER_STATE)
    if not isinstance(saved_state, dict) or not isinstance(saved_state.get("global_step"), int):
        raise CheckpointError(f"{checkpoint / TRAINER_STATE}: not a trainer state (no integer global_step)")
    try:
        trainer_state = read_state(saved_state)
    except (TypeError, ValueError) as error:
        reason = " ".join(str(error).split())[:300]
        raise CheckpointError(f"{checkpoint / TRAINER_STATE}: not a state this run can continue from ({reason})"
                              ) from None
    weights, _ = _read_tensors(checkpoint / MODEL_FILE)
    optimizer_state = _read_optimizer(checkpoint / OPTIMIZER_FILE)
    scheduler_state = _read_json(checkpoint / SCHEDULER_FILE)
    scaler_state = _read_json(checkpoint / GRAD_SCALER_FILE) if accelerator.scaler is not None else None
    rng_path = checkpoint / rng_file(accelerator.process_index)
    rng_states = _read_json(rng_path) if rng_path.is_file() else None

    _apply(checkpoint / MODEL_FILE, accelerator.unwrap_model(model).load_state_dict, weights)
    _apply(checkpoint / OPTIMIZER_FILE, optimizer.load_state_dict, optimizer_state)
    _apply(checkpoint / SCHEDULER_FILE, scheduler.load_state_dict, scheduler_state)
    if scaler_state is not None:
        _apply(checkpoint / GRAD_SCALER_FILE, accelerator.scaler.load_state_dict, scaler_state)
    if rng_states is None:  # resumed with more processes than saved it
        logger.warning("%s not found: process %d keeps its seeded random state", rng_path, accelerator.process_index)
    else:
        _apply(rng_path, _set_rng_states, rng_states)
    return trainer_state


def _apply(path: Path, load: Callable[[Any], Any], state: Any) -> None:
    try:
        load(state)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as error:
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        raise CheckpointError(f"{path}: does not fit this run ({reason})") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error})") from None


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors of a safetensors file and its metadata, each value parsed as JSON; refused when a tensor holds
    NaN or an infinity (a run that diverged: resuming would train on from it)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        with safe_open(path, framework="pt") as handle:
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
            metadata = {key: json.loads(value) for key, value in (handle.metadata() or {}).items()}
    except (SafetensorError, OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: damaged or truncated safetensors file ({error})") from None
    broken = non_finite_problem(tensors.items())
    if broken:
        raise CheckpointError(f"{path}: {broken}")
    return tensors, metadata


def _read_optimizer(path: Path) -> dict[str, Any]:
    tensors, metadata = _read_tensors(path)
    try:
        values = metadata["values"]
        state = {
            int(param): {**{name: tensors[f"{param}.{name}"] for name in names}, **values.get(param, {})}
            for param, names in metadata["tensors"].items()
        }
        groups = [  # JSON turned tuples (Adam's betas) into lists
            {key: _untuple(key, value) for key, value in group.items()} for group in metadata["param_groups"]
        ]
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"{path}: not an optimiser state (missing {error})") from None
    return {"state": state, "param_groups": groups}


def _untuple(key: str, value: Any) -> Any:
    return tuple(value) if isinstance(value, list) and key != "params" else value


def _set_rng_states(states: dict[str, Any]) -> None:
    version, mt_state, gauss = states["python"]
    random.setstate((version, tuple(mt_state), gauss))
    name, keys, position, has_gauss, cached_gaussian = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(torch.tensor(states["torch"], dtype=torch.uint8))
    for device_type, device_states in states.items():
        if device_type not in ("python", "numpy", "torch"):
            module = torch.get_device_module(device_type)
            module.set_rng_state_all([torch.tensor(state, dtype=torch.uint8) for state in device_states])


# ----------------------------------------------------------------------------------------------- durable writes


def _write_json_durably(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(path: Path) -> None:
    """Flush a written file, or a folder's entries (after a rename), to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

