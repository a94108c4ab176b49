"""Conversion of the authors' released Nes2Net checkpoints into model folders that load with `from_pretrained`.

The releases are PyTorch state dicts of the authors' research models (NES2NET.md section 7): the back-end under
`Nested_Res2Net_TDNN.`, a layer merge under `ssl_model.` and the SSL front-end under `ssl_model.model.` with fairseq
wav2vec 2.0 (XLS-R) or unilm WavLM names, or under `ssl_model.model.model.` when s3prl wrapped WavLM.

`convert_checkpoint` reads one safely (weights only), splits it by that layout, infers the front-end's size from its
tensors, renames every tensor (`original_layout`), checks the result against the model the preset builds (every
tensor consumed, none missing, every shape equal) and writes a complete folder, with the README.md its caller renders
(`nes2net convert` passes `hub_cards.folder_cards.render_conversion_card`). It refuses, writing nothing, when any
of this fails. Only the known pre-training heads of fairseq's wav2vec 2.0 are left out, and they are listed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from .configuration_nes2net import Nes2NetConfig
from .folder import save_model_folder
from .modeling_nes2net import Nes2NetForAudioClassification
from .original_layout import (
    BACKEND_PREFIX,
    FRONTEND,
    FRONTEND_PREFIX,
    MERGE_PREFIX,
    S3PRL_FRONTEND_PREFIX,
    TRAINING_ONLY_FRONTEND_KEYS,
    rename_key,
    reshape_tensor,
)
from .presets import PRESETS
from .weight_checks import non_finite_problem

logger = logging.getLogger(__name__)

HUB_SCHEME = "hf://"
WRAPPER_KEYS = ("model_state_dict", "state_dict")
DATA_PARALLEL_PREFIX = "module."
# Stride of each kernel width in the convolutional feature encoder of every released wav2vec 2.0 / WavLM model
# (kernels 10, 3, 3, 3, 3, 2, 2 with strides 5, 2, 2, 2, 2, 2, 2); strides are stored in no tensor.
STRIDE_OF_KERNEL = {10: 5, 3: 2, 2: 2}
# Attention heads of the released wav2vec 2.0 sizes (Base, Large / XLS-R 300M, XLS-R 1B, XLS-R 2B); WavLM checkpoints
# store theirs in the shape of the relative position embedding.
HEADS_OF_HIDDEN_SIZE = {768: 12, 1024: 16, 1280: 16, 1920: 16}
# Hub ids of the pre-trained front-ends, by (model type, hidden size, layers), for the card's `base_model`.
BASE_MODELS = {
    ("wav2vec2", 1024, 24): "facebook/wav2vec2-xls-r-300m",
    ("wav2vec2", 1280, 48): "facebook/wav2vec2-xls-r-1b",
    ("wav2vec2", 1920, 48): "facebook/wav2vec2-xls-r-2b",
    ("wavlm", 1024, 24): "microsoft/wavlm-large",
    ("wavlm", 768, 12): "microsoft/wavlm-base-plus",
}
_WAVLM_ONLY = re.compile(r"\.self_attn\.(grep_a|grep_linear\.|relative_attention_bias\.)")
_LISTED = 20


class ConversionError(ValueError):
    """The checkpoint cannot be converted exactly; the message says why. Nothing has been written."""


@dataclass(frozen=True)
class OriginalCheckpoint:
    """An original state dict split by the authors' layout; keys are relative to each part's prefix."""

    frontend: dict[str, torch.Tensor]
    layer_merge: dict[str, torch.Tensor]
    backend: dict[str, torch.Tensor]
    frontend_prefix: str
    unknown: list[str] = field(default_factory=list)

    @property
    def frontend_model_type(self) -> str:
        """`"wavlm"` (unilm / s3prl names) or `"wav2vec2"` (fairseq names)."""
        return "wavlm" if any(_WAVLM_ONLY.search(key) for key in self.frontend) else "wav2vec2"

    @property
    def through_s3prl(self) -> bool:
        """Whether s3prl wrapped the front-end (it normalises waveforms and returns post-norm last hidden states)."""
        return self.frontend_prefix == S3PRL_FRONTEND_PREFIX


@dataclass(frozen=True)
class ConversionResult:
    """What `convert_checkpoint` wrote and what it left out."""

    output_dir: Path
    config: Nes2NetConfig
    converted: int
    ignored: list[str]
    sha256: str
    preset: str
    checkpoint: str
    """The file name of the authors' checkpoint."""

    @property
    def base_model(self) -> str | None:
        """The Hub id of the pre-trained front-end (`BASE_MODELS`); None when it is not a released one."""
        frontend = self.config.frontend_config
        return BASE_MODELS.get((frontend.model_type, self.config.feature_size, frontend.num_hidden_layers))


def _listing(title: str, items: list[str]) -> str:
    shown = items[:_LISTED]
    more = f"\n    ... and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
    return f"  {title} ({len(items)}):\n" + "\n".join(f"    {item}" for item in shown) + more


def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_original_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Read an original checkpoint with `torch.load(weights_only=True)` (no code runs).

    Accepts a plain state dict, one nested under `model_state_dict` / `state_dict` (next to optimiser state), and
    DataParallel's `module.` prefix; refuses one holding NaN or infinite values. Returns the state dict and the names of the top-level entries that are not model
    weights (such as `optimizer_state_dict`), which the caller may report.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path} does not exist or is not a file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConversionError(f"{path} is not a weights-only PyTorch checkpoint ({reason})") from error
    skipped = []
    if isinstance(loaded, dict):
        wrapper = next((key for key in WRAPPER_KEYS if isinstance(loaded.get(key), dict)), None)
        if wrapper is not None:
            skipped = sorted(str(key) for key in loaded if key != wrapper)
            loaded = loaded[wrapper]
    if torch.is_tensor(loaded):
        shape = "x".join(map(str, loaded.shape)) or "scalar"
        raise ConversionError(f"{path} holds a single tensor ({shape}), not a state dict of named weights")
    if not isinstance(loaded, dict) or not loaded:
        raise ConversionError(f"{path} holds {type(loaded).__name__ if loaded is not None else 'nothing'}"
                              f"{' (empty)' if isinstance(loaded, dict) else ''}, not a state dict")
    not_tensors = [f"{key} ({type(value).__name__})" for key, value in loaded.items() if not torch.is_tensor(value)]
    if not_tensors:
        listed = ", ".join(not_tensors[:5])
        raise ConversionError(f"{path} is not a state dict: entries that are not tensors: {listed}")
    broken = non_finite_problem(loaded.items())
    if broken:
        raise ConversionError(f"{path}: {broken}")
    if all(key.startswith(DATA_PARALLEL_PREFIX) for key in loaded):
        loaded = {key[len(DATA_PARALLEL_PREFIX):]: value for key, value in loaded.items()}
    return dict(loaded), skipped


def split_layout(state_dict: dict[str, torch.Tensor]) -> OriginalCheckpoint:
    """Split an original state dict into front-end, layer-merge and back-end tensors (section 7 of NES2NET.md)."""
    frontend_prefix = (
        S3PRL_FRONTEND_PREFIX if any(key.startswith(S3PRL_FRONTEND_PREFIX) for key in state_dict) else FRONTEND_PREFIX
    )
    frontend, layer_merge, backend, unknown = {}, {}, {}, []
    for key, tensor in state_dict.items():
        if key.startswith(BACKEND_PREFIX):
            backend[key[len(BACKEND_PREFIX):]] = tensor
        elif key.startswith(frontend_prefix):
            frontend[key[len(frontend_prefix):]] = tensor
        elif key.startswith(MERGE_PREFIX):
            layer_merge[key[len(MERGE_PREFIX):]] = tensor
        else:
            unknown.append(key)
    if not backend:
        raise ConversionError(f"no back-end tensors ({BACKEND_PREFIX}*): this is not an original Nes2Net checkpoint")
    if not frontend:
        raise ConversionError(
            f"no front-end tensors ({FRONTEND_PREFIX}* or {S3PRL_FRONTEND_PREFIX}*): only checkpoints of the whole "
            "model (SSL front-end + Nes2Net) can be converted"
        )
    return OriginalCheckpoint(frontend, layer_merge, backend, frontend_prefix, sorted(unknown))


def _indices(keys: Iterable[str], pattern: str) -> list[int]:
    return sorted({int(match.group(1)) for key in keys if (match := re.match(pattern, key))})


def _tensor(part: dict[str, torch.Tensor], key: str, prefix: str) -> torch.Tensor:
    if key not in part:
        raise ConversionError(f"the checkpoint has no {prefix}{key}, which its layout requires")
    return part[key]


def infer_frontend_config(original: OriginalCheckpoint) -> dict[str, Any]:
    """The front-end config fields its tensors determine: type, sizes, feature encoder, positional convolution.

    Strides and (for wav2vec 2.0) attention heads are stored in no tensor: they come from the released sizes and are
    left out when the sizes are not those of a release (the caller then needs them as overrides).
    """
    tensors, prefix = original.frontend, original.frontend_prefix
    conv_layers = _indices(tensors, r"feature_extractor\.conv_layers\.(\d+)\.0\.weight$")
    if not conv_layers:
        raise ConversionError(f"the checkpoint has no convolutional feature encoder ({prefix}feature_extractor.*)")
    conv_weights = [tensors[f"feature_extractor.conv_layers.{index}.0.weight"] for index in conv_layers]
    layers = _indices(tensors, r"encoder\.layers\.(\d+)\.")
    if not layers:
        raise ConversionError(f"the checkpoint has no transformer layers ({prefix}encoder.layers.*)")
    positional = tensors.get("encoder.pos_conv.0.weight_v")
    if positional is None:
        positional = _tensor(tensors, "encoder.pos_conv.0.parametrizations.weight.original1", prefix)
    hidden_size = _tensor(tensors, "encoder.layer_norm.weight", prefix).shape[0]
    layer_norms = "feature_extractor.conv_layers.0.2.1.weight" in tensors
    config = {
        "model_type": original.frontend_model_type,
        "hidden_size": hidden_size,
        "num_hidden_layers": layers[-1] + 1,
        "intermediate_size": _tensor(tensors, "encoder.layers.0.fc1.weight", prefix).shape[0],
        "conv_dim": [weight.shape[0] for weight in conv_weights],
        "conv_kernel": [weight.shape[2] for weight in conv_weights],
        "conv_bias": "feature_extractor.conv_layers.0.0.bias" in tensors,
        "feat_extract_norm": "layer" if layer_norms else "group",
        # Every release pairs layer norms in the feature encoder with pre-norm transformer layers (XLS-R, WavLM Large)
        # and a group norm with post-norm layers (Base models).
        "do_stable_layer_norm": layer_norms,
        "num_conv_pos_embeddings": positional.shape[2],
        "num_conv_pos_embedding_groups": hidden_size // positional.shape[1],
    }
    kernels = config["conv_kernel"]
    if all(kernel in STRIDE_OF_KERNEL for kernel in kernels):
        config["conv_stride"] = [STRIDE_OF_KERNEL[kernel] for kernel in kernels]
    if original.frontend_model_type == "wavlm":
        buckets, heads = _tensor(tensors, "encoder.layers.0.self_attn.relative_attention_bias.weight", prefix).shape
        config.update(num_buckets=buckets, num_attention_heads=heads)
    elif hidden_size in HEADS_OF_HIDDEN_SIZE:
        config["num_attention_heads"] = HEADS_OF_HIDDEN_SIZE[hidden_size]
    return config


def infer_architecture(original: OriginalCheckpoint) -> dict[str, Any]:
    """The layer merge and back-end fields the tensors determine (checked against the preset)."""
    backend, prefix = original.backend, BACKEND_PREFIX
    blocks = _indices(backend, r"Build_in_Res2Nets\.(\d+)\.")
    inner = _indices(backend, r"Build_in_Res2Nets\.0\.convs\.(\d+)\.weight$")
    if not blocks or not inner:
        raise ConversionError(f"the checkpoint has no nested blocks ({prefix}Build_in_Res2Nets.<i>.convs.<j>.weight)")
    merge_keys = set(original.layer_merge)
    if any(key.startswith("fc_att_merge.") for key in merge_keys):
        layer_merge = "sea"
    elif "weight_hidd" in merge_keys:
        layer_merge = "weighted_sum"
    elif merge_keys & {"W", "W1", "W2"}:
        layer_merge = "attm"
    else:
        layer_merge = "last"
    return {
        "layer_merge": layer_merge,
        "backend_variant": "nes2net-x" if any(".weighted_sum." in key for key in backend) else "nes2net",
        "outer_ratio": blocks[-1] + 2,
        "inner_ratio": inner[-1] + 2,
        "kernel_size": backend["Build_in_Res2Nets.0.convs.0.weight"].shape[2],
        "pooling": "astp" if "pooling.linear1.weight" in backend else "mean",
        "num_labels": _tensor(backend, "fc.weight", prefix).shape[0],
    }


def pick_preset(original: OriginalCheckpoint) -> str:
    """The preset whose front-end type, layer merge and back-end variant the tensors show; refuses none or a tie."""
    architecture, defaults = infer_architecture(original), Nes2NetConfig()
    shown = {"model_type": original.frontend_model_type, "layer_merge": architecture["layer_merge"],
             "backend_variant": architecture["backend_variant"]}
    matching = [
        name for name, fields in PRESETS.items()
        if fields["frontend_config"]["model_type"] == shown["model_type"]
        and all(fields.get(key, getattr(defaults, key)) == shown[key] for key in ("layer_merge", "backend_variant"))
    ]
    described = ", ".join(f"{key} {value}" for key, value in shown.items())
    if not matching:
        raise ConversionError(f"no preset describes this checkpoint ({described}): pass --preset and overrides")
    if len(matching) > 1:
        raise ConversionError(
            f"the tensors ({described}) fit presets {', '.join(matching)}, which differ only in what no tensor "
            "stores (activation, SE floor): choose one with --preset"
        )
    return matching[0]


def build_config(original: OriginalCheckpoint, preset: str, **overrides: Any) -> Nes2NetConfig:
    """The config of the converted model: the preset, the sizes read from the tensors, then `overrides`.

    The head (1 or 2 logits) is read from the classifier's tensors unless `num_labels` is overridden: the In-the-Wild
    release of the XLS-R model has one logit where the ASVspoof 2019 one has two.

    `overrides` are `Nes2NetConfig` fields; `frontend_config` may be a dict of front-end fields (for sizes that are
    stored in no tensor, such as `num_attention_heads` or `conv_stride` of non-standard front-ends). Raises
    `ConversionError` when the tensors contradict the preset's architecture or a needed size is unknown.
    """
    if preset not in PRESETS:
        raise ConversionError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    fields = {key: value for key, value in PRESETS[preset].items() if key != "frontend_config"}
    preset_frontend = dict(PRESETS[preset]["frontend_config"])
    frontend_overrides = dict(overrides.pop("frontend_config", None) or {})
    inferred_frontend = infer_frontend_config(original)
    model_type = inferred_frontend["model_type"]
    if preset_frontend["model_type"] != model_type:
        matching = [name for name, value in PRESETS.items() if value["frontend_config"]["model_type"] == model_type]
        raise ConversionError(
            f"the checkpoint's front-end is {model_type} but preset {preset!r} describes "
            f"{preset_frontend['model_type']}; use one of: {', '.join(matching)}"
        )
    frontend = {**preset_frontend, **inferred_frontend, **frontend_overrides}
    for name in ("conv_stride", "num_attention_heads"):
        if name not in inferred_frontend and name not in frontend_overrides:
            raise ConversionError(
                f"{name} of this {model_type} front-end (hidden size {frontend['hidden_size']}, kernels "
                f"{frontend['conv_kernel']}) is stored in no tensor and it is not a released size: pass it as a "
                f"front-end override (--frontend-set {name}=...)"
            )
    if original.through_s3prl:
        # s3prl's last hidden state is the encoder output after its final layer norm.
        frontend.setdefault("tie_last_hidden_states", True)
    architecture = infer_architecture(original)
    if "num_labels" not in overrides:
        head = architecture.pop("num_labels")
        if fields.get("num_labels", 2) != head:
            logger.info("the checkpoint's classifier has %d logit(s) (preset %s: %d): converting %d", head, preset,
                        fields.get("num_labels", 2), head)
        fields["num_labels"] = head
    requested = {**fields, **overrides}
    defaults = Nes2NetConfig()
    disagreements = [
        f"{name} (checkpoint {value!r}, {'requested' if name in overrides else 'preset'} "
        f"{requested.get(name, getattr(defaults, name))!r})"
        for name, value in architecture.items()
        if requested.get(name, getattr(defaults, name)) != value
    ]
    if disagreements:
        raise ConversionError(
            f"the checkpoint does not have the architecture of preset {preset!r}: {'; '.join(disagreements)}. "
            "Choose the preset of this release, or override these fields (they are read from the tensors only to "
            "check them: a preset also carries what no tensor stores, such as the dilation)"
        )
    # s3prl normalises every waveform when the WavLM config says so, which it does for WavLM Large (the layer-norm
    # feature encoder); the authors called fairseq and unilm models on the raw waveform.
    normalize = original.through_s3prl and frontend["feat_extract_norm"] == "layer"
    if "normalize_waveform" not in overrides and fields.get("normalize_waveform", False) != normalize:
        logger.info("normalize_waveform=%s: the original front-end %s normalise waveforms", normalize,
                    "did" if normalize else "did not")
    fields.update(normalize_waveform=normalize)
    fields.update(overrides, frontend_config=frontend)
    try:
        return Nes2NetConfig(**fields)
    except (TypeError, ValueError) as error:
        raise ConversionError(f"the converted configuration is invalid: {error}") from error


def convert_state_dict(
    original: OriginalCheckpoint, expected: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename every original tensor to this package's names and check the result against `expected` (a model's
    state dict). Returns the converted state dict and the ignored training-only tensors (original names).

    Raises `ConversionError` listing unknown names, model tensors the checkpoint lacks and shape mismatches.
    """
    converted, sources, ignored = {}, {}, []
    unknown = list(original.unknown)
    parts = {
        "frontend": (original.frontend_prefix, original.frontend),
        "layer_merge": (MERGE_PREFIX, original.layer_merge),
        "backend": (BACKEND_PREFIX, original.backend),
    }
    for part, (prefix, tensors) in parts.items():
        for key, tensor in tensors.items():
            new_key = rename_key(part, key)
            if part == "frontend" and TRAINING_ONLY_FRONTEND_KEYS.match(key):
                ignored.append(prefix + key)
            elif new_key is None:
                unknown.append(prefix + key)
            else:
                converted[new_key], sources[new_key] = reshape_tensor(new_key, tensor), prefix + key
    converted, sources = _match_weight_norm_names(converted, sources, expected)
    # fairseq and unilm keep the mask embedding of pre-training; the model has a slot for it only when its config
    # enables time masking.
    mask_key = FRONTEND + "masked_spec_embed"
    if mask_key in converted and mask_key not in expected:
        ignored.append(sources.pop(mask_key))
        del converted[mask_key]
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(f"{sources[key]} -> {key}" for key in set(converted) - set(expected))
    mismatched = sorted(
        f"{sources[key]} -> {key}: checkpoint {tuple(tensor.shape)}, model {tuple(expected[key].shape)}"
        for key, tensor in converted.items()
        if key in expected and tensor.shape != expected[key].shape
    )
    problems = [
        _listing("tensors with no known name", sorted(unknown)) if unknown else "",
        _listing("model tensors the checkpoint lacks", missing) if missing else "",
        _listing("tensors the model has no place for", unexpected) if unexpected else "",
        _listing("shape mismatches", mismatched) if mismatched else "",
    ]
    problems = [problem for problem in problems if problem]
    if problems:
        raise ConversionError("the checkpoint does not match the model exactly:\n" + "\n".join(problems))
    return converted, sorted(ignored)


def _match_weight_norm_names(
    converted: dict[str, torch.Tensor], sources: dict[str, str], expected: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Use `weight_g` / `weight_v` instead of `parametrizations.weight.original0/1` where the model (an older
    torch without parametrised weight norm) expects them."""
    legacy = {".parametrizations.weight.original0": ".weight_g", ".parametrizations.weight.original1": ".weight_v"}
    renamed, renamed_sources = {}, {}
    for key, tensor in converted.items():
        new_key = key
        for modern, old in legacy.items():
            if key.endswith(modern) and key not in expected and key[: -len(modern)] + old in expected:
                new_key = key[: -len(modern)] + old
        renamed[new_key], renamed_sources[new_key] = tensor, sources[key]
    return renamed, renamed_sources


def resolve_checkpoint(reference: str | os.PathLike, revision: str | None = None) -> Path:
    """A local checkpoint path, or a file on the Hub downloaded with `hf_hub_download` (into the Hub cache):
    `hf://OWNER/REPO/PATH/IN/REPO`, or `OWNER/REPO/PATH/IN/REPO` when no such local file exists (the authors'
    `nielsr/nes2net-checkpoints` keeps its `.pt` files in sub-folders)."""
    text = os.fspath(reference)
    local = Path(text)
    bare_hub_form = not local.exists() and not local.is_absolute() and not text.startswith(".") and len(local.parts) > 2
    if not text.startswith(HUB_SCHEME) and not bare_hub_form:
        return local
    owner, name, *rest = text.removeprefix(HUB_SCHEME).split("/")
    if not (owner and name and rest):
        raise ConversionError(f"{text}: a Hub file is {HUB_SCHEME}OWNER/REPO/PATH/IN/REPO")
    try:
        return Path(hf_hub_download(f"{owner}/{name}", "/".join(rest), revision=revision))
    except (HfHubHTTPError, OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        local_note = "" if text.startswith(HUB_SCHEME) else "no such local file, and "
        raise ConversionError(f"{text}: {local_note}cannot download it from the Hub ({reason})") from error


def convert_checkpoint(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    preset: str | None = None,
    *,
    overwrite: bool = False,
    revision: str | None = None,
    model_card: Callable[[ConversionResult], str] | None = None,
    **overrides: Any,
) -> ConversionResult:
    """Convert the authors' checkpoint at `path` (a local file or a Hub file, see `resolve_checkpoint`) into a model
    folder at `out_dir` (weights, config with `auto_map`, code, feature extractor, and `model_card(result)` as
    README.md when given).

    `preset` names the release (`PRESETS`): it carries what no tensor stores, such as the dilation and activation;
    None picks it from the tensors (`pick_preset`) when only one fits. The head (1 or 2 logits) is read from them.
    `overrides` are `Nes2NetConfig` fields (`dilation=1`, `frontend_config={"num_attention_heads": 16}`, ...).
    Raises `ConversionError` (nothing written) when the checkpoint cannot be converted exactly, and
    `FileExistsError` when `out_dir` exists and is not empty, unless `overwrite`.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty (pass overwrite=True / --overwrite to replace it)")
    path = resolve_checkpoint(path, revision)
    state_dict, skipped = load_original_state_dict(path)
    if skipped:
        logger.info("Reading the model weights of %s; not model weights, left out: %s", path.name, ", ".join(skipped))
    original = split_layout(state_dict)
    if preset is None:
        preset = pick_preset(original)
        logger.info("preset %s: the only one the checkpoint's tensors fit", preset)
    config = build_config(original, preset, **overrides)
    logger.info("Building %s from %s (%s front-end names)", preset, path.name,
                "s3prl" if original.through_s3prl
                else ("unilm" if original.frontend_model_type == "wavlm" else "fairseq"))
    model = Nes2NetForAudioClassification(config)
    converted, ignored = convert_state_dict(original, model.state_dict())
    model.load_state_dict(converted, strict=True)
    model.eval()
    if ignored:
        logger.info("Ignored %d training-only tensors: %s", len(ignored), ", ".join(ignored))
    result = ConversionResult(out_dir, config, len(converted), ignored, sha256_of(path), preset, path.name)
    save_model_folder(model, out_dir, model_card=None if model_card is None else model_card(result))
    logger.info("Wrote %s (%d tensors)", out_dir, len(converted))
    return result
