"""Weights that cannot be what was trained, found before anything scores, trains on or publishes them.

`Nes2NetPreTrainedModel.from_pretrained` refuses, with a `ModelLoadError` naming the folder, NaN or infinite weights,
weights missing from the checkpoint (transformers would initialise them at random, differently at each load), weights
foreign to the model, and floating-point weights stored as integers (transformers would cast them silently).
Conversion, averaging, publishing and training refuse non-finite tensors with `non_finite_problem`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping

import torch

# Heads a Nes2Net checkpoint may carry that the class loading it lacks: the utterance classifier (dropped by the
# headless `Nes2NetModel`) and the frame classifier (dropped by `Nes2NetForAudioClassification`).
HEADS = ("classifier", "frame_classifier")
_FRONTEND_LAYER_KEY = re.compile(r"^(?:nes2net\.)?frontend\.encoder\.layers\.(\d+)\.")


class ModelLoadError(Exception):
    """A model folder or Hub id that cannot be loaded as trained: `str(error)` is one line naming it and the problem.

    Not a `ValueError` (nor `OSError`, `TypeError`, `RuntimeError`): transformers' `pipeline` catches those while
    trying model classes and re-raises them as one multi-line `ValueError` of tracebacks."""

    @classmethod
    def refusing(cls, location: object, problems: list[str]) -> ModelLoadError:
        """The refusal of the checkpoint at `location` for `problems` (each a phrase of `loading_problems`)."""
        return cls(f"{location}: refusing an incomplete, foreign or damaged checkpoint: {'; '.join(problems)}")


def listing(names: Collection[str], limit: int = 3) -> str:
    """`"(a, b, c, ...)"`: the first `limit` of `names`, sorted."""
    names = sorted(names)
    return f"({', '.join(names[:limit])}{', ...' if len(names) > limit else ''})"


def non_finite_tensors(tensors: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """The names of the floating-point tensors among `(name, tensor)` pairs (a state dict's `items()`, or a
    generator reading a file one tensor at a time) that hold NaN or an infinity."""
    return [name for name, tensor in tensors if tensor.is_floating_point() and not torch.isfinite(tensor).all()]


def non_finite_problem(tensors: Iterable[tuple[str, torch.Tensor]]) -> str | None:
    """`"N weight tensor(s) hold NaN or infinite values (a, b, c, ...)"` for `(name, tensor)` pairs, or None when
    every tensor is finite."""
    broken = non_finite_tensors(tensors)
    return f"{len(broken)} weight tensor(s) hold NaN or infinite values {listing(broken)}" if broken else None


def integer_stored_problems(stored: Mapping[str, torch.Tensor], model: torch.nn.Module) -> list[str]:
    """`["N floating-point weight(s) stored as integers (name: dtype, ...)"]` for the checkpoint tensors `stored`
    (meta tensors will do) with an integer dtype whose weight `model` holds in floating point, else `[]`; checkpoint
    names may carry or lack the base model's prefix."""
    prefix = f"{model.base_model_prefix}."
    floating = {name for name, tensor in model.state_dict().items() if tensor.is_floating_point()}
    integers = [f"{name}: {str(tensor.dtype).removeprefix('torch.')}" for name, tensor in stored.items()
                if not (tensor.is_floating_point() or tensor.is_complex())
                and {name, name.removeprefix(prefix), prefix + name} & floating]
    return [f"{len(integers)} floating-point weight(s) stored as integers {listing(integers)}"] if integers else []


def dropped_on_purpose(key: str, model: torch.nn.Module) -> bool:
    """Whether the checkpoint weight `key`, which `model` does not take, is left out on purpose: a head its class
    lacks (`HEADS`), or a front-end transformer layer a truncated model (`frontend_num_layers`) skips."""
    head = key.split(".", 1)[0]
    if head in HEADS:
        return not hasattr(model, head)
    match, kept_layers = _FRONTEND_LAYER_KEY.match(key), model.config.frontend_num_layers
    return bool(match) and kept_layers is not None and int(match[1]) >= kept_layers


def loading_problems(model: torch.nn.Module, loading_info: Mapping[str, Collection], allow_new_weights: bool
                     ) -> list[str]:
    """What makes a freshly loaded `model` differ from its checkpoint, given transformers' `loading_info`: missing
    weights (unless `allow_new_weights`), unexpected ones not `dropped_on_purpose`, and non-finite values."""
    unexpected = [key for key in loading_info["unexpected_keys"] if not dropped_on_purpose(key, model)]
    missing = [] if allow_new_weights else loading_info["missing_keys"]
    problems = [f"{len(keys)} {kind} weight(s) {listing(keys)}"
                for kind, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
    broken = non_finite_problem(model.state_dict().items())
    return problems + ([broken] if broken else [])
