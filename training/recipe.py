"""Training recipes: one YAML file per experiment, read into typed sections, overridable from the command line.

A recipe has four sections (every field and its default is listed in the dataclasses below):

```yaml
model:      {preset: nes2net-x-xlsr, frontend_weights: facebook/wav2vec2-xls-r-300m, config: {dilation: 2}}
data:       {dataset: data/asvspoof2019-la, train_split: train, dev_split: dev, crop_samples: 64600, ...}
training:   {epochs: 100, batch_size: 12, lr: 2.5e-7, schedule: constant, ...}
evaluation: [{dataset: data/asvspoof2021-la, split: eval, protocol: 4sec, where: {subset: eval}}, {split: eval}]
```

The data come from one of two sources: `data.dataset`, audio cropped and augmented anew every epoch (end-to-end
training), or `data.corpora`, several corpora whose frozen front-end states are computed once and cached
(`training.state_cache`), the back-end then trained on random windows of them (`training.frozen_frontend`; the
embedded default's recipe, `training/recipes/frozen_frontend/default.yaml`).

An evaluation entry without `dataset` scores the training dataset (`data.dataset`, wherever `--dataset` points).

`load_recipe("asvspoof2019-la", ["training.lr=1e-6", "data.num_workers=8"])` reads `training/recipes/<name>.yaml` (or
any YAML path) and applies `section.field=value` overrides, each value parsed as YAML (`1e-6`, `null`, `[0.5, 0.5]`);
a path may go into a dict field (`model.config.dilation=1`). Unknown fields are errors, not silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modeling_nes2net.configuration_nes2net import check_frame_window
from modeling_nes2net.protocols import PROTOCOLS, WINDOW_SAMPLES
from training.data.vocoders import VOCODERS

RECIPES_DIR = Path(__file__).with_name("recipes")
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "cosine", "cosine_epochs")
AUGMENTATIONS = {"rawboost", "musan_rir", "channel", "chain"}
PREPROCESSING = {"remove_shortcuts"}
CORPUS_SOURCES = ("dataset", "source")
VOCODED = "vocoded"
"""The `data.corpora` key of a vocoded corpus (`training.corpus_sources`)."""
EPOCH_AVERAGES = ("best", "last")
VIEWS = ("clean", "channel")
"""The encodings of a cached corpus's clips: `clean`, the audio as stored; `channel`, through `data.preprocess` and
`data.augmentation` (train and dev splits only)."""
STATE_WINDOWS = ("crop_frames", "mask_channels", "mask_frames")
"""The `data` fields that shape the training windows of cached states."""


@dataclass
class ModelSpec:
    """What to train. Exactly one of `preset` (a name of `modeling_nes2net.PRESETS`) and `pretrained` (a model folder
    or Hub id to fine-tune) may be set; with neither, `config` alone is the `Nes2NetConfig`."""

    preset: str | None = None
    pretrained: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    """`Nes2NetConfig` fields overriding the preset's / the pretrained model's."""
    frontend_weights: str | None = None
    """A transformers model (folder or Hub id, e.g. `facebook/wav2vec2-xls-r-300m`) whose weights initialise the
    front-end (`load_pretrained_weights`: a speech foundation model for an SSL front-end, a Whisper model for the
    Whisper encoder); the paper fine-tunes from the public XLS-R / WavLM Large checkpoints."""

    def __post_init__(self) -> None:
        if self.preset is not None and self.pretrained is not None:
            raise ValueError("model: set either preset or pretrained, not both")


def _check_vocoded_corpus(name: str, corpus: dict[str, Any], corpora: dict[str, Any]) -> None:
    """A one-line `ValueError` unless `corpus` is `{vocoded: NAME, vocoders: [...]}` with NAME a `source` corpus of
    `corpora` and known, distinct vocoders."""
    vocoders = corpus.get("vocoders")
    if (set(corpus) != {VOCODED, "vocoders"} or not isinstance(vocoders, list) or not vocoders
            or len(set(map(str, vocoders))) != len(vocoders) or set(map(str, vocoders)) - set(VOCODERS)):
        raise ValueError(f"data.corpora.{name} must be {{vocoded: CORPUS, vocoders: [distinct of "
                         f"{', '.join(VOCODERS)}]}}, got {corpus!r}"[:300])
    source = corpora.get(corpus[VOCODED])
    if not isinstance(source, dict) or set(source) != {"source"}:
        raise ValueError(f"data.corpora.{name}.vocoded must name a corpus of data.corpora given by "
                         f"{{source: FOLDER}}, got {corpus[VOCODED]!r}")


@dataclass
class DataSpec:
    """Where the audio comes from and how it is cut: `dataset` (audio, every epoch) or `corpora` (cached front-end
    states), never both."""

    dataset: str | None = None
    """A folder written by `nes2net data build` (or the generic builder), or a Hub dataset id."""
    corpora: dict[str, dict[str, Any]] | None = None
    """Train on cached front-end states of several corpora instead: name -> `{dataset: FOLDER_OR_HUB_ID}` (built,
    with the train and dev splits), `{source: FOLDER}` (a folder with a generic `metadata.csv`, built once into
    `cache_dir/data/<name>` with a dev split carved out of train) or `{vocoded: NAME, vocoders: [hifigan, world,
    griffin-lim]}` (the copy-synthesis of the train-split bona fide clips of the `source` corpus NAME: spoofed clips,
    train split only); see `training.corpus_sources`. Needs a frozen front-end (`training.frontend_lr: 0`)."""
    cache_dir: str | None = None
    """With `corpora`: where they are built (`data/`), the front-end weights fetched (`weights/`) and the states
    cached (`states/<corpus>-<split>-<view>.safetensors`); null: `<training.output_dir>/cache`. Relative paths are
    read from the working directory."""
    channel_seed: int = 1
    """With `corpora`: seeds the channel view (each train and dev clip encoded a second time through `preprocess` and
    `augmentation`)."""
    crop_frames: int | None = None
    """With `corpora`: train on a random window of this many frames of each cached whole-clip state (shorter ones
    whole, zero-padded), drawn anew each epoch; null: whole states."""
    mask_channels: int = 0
    """With `corpora`: each training window gets one band of up to this many feature channels zeroed, the same band in
    every layer (SpecAugment-style; 0: none)."""
    mask_frames: int = 0
    """...and one span of up to this many frames zeroed (0: none)."""
    views: list[str] = field(default_factory=lambda: list(VIEWS))
    """With `corpora`: the encodings of the train splits trained on (`VIEWS`: `clean`, `channel` or both)."""
    train_split: str = "train"
    dev_split: str | None = "dev"
    """Scored after every epoch (dev EER picks the best checkpoints); null: no dev evaluation."""
    crop_samples: int = WINDOW_SAMPLES
    """Training crop: a random window of this many samples, shorter files tiled."""
    dev_protocol: str = "4sec"
    """How dev trials are scored, as `nes2net detect --protocol` scores a file (`modeling_nes2net.protocols`): `4sec`,
    the first 64,600 samples, tiled if shorter; `full`, whole utterances; `windows`, 4.04 s windows, averaged.
    Cached states are whole clips: their dev trials are scored `full`."""
    augmentation: dict[str, Any] | None = None
    """After the crop: `{rawboost: {algorithm: 4, <RawBoostConfig fields>}}`, `{musan_rir: {musan: DIR, rir: DIR,
    p: 0.5}}`, `{channel: {conditions: [SPEC, ...], p: 0.5}}` or `{chain: [...those...]}` (see
    `training.batching.build_augmentation`). With `corpora`: the channel view's, applied to whole clips once."""
    preprocess: dict[str, Any] | None = None
    """Before the crop, on the whole training utterance: `{remove_shortcuts: {<ShortcutRemoval fields>}}` trims
    silence, randomises the level and band-limits both classes at random (`training.shortcut_audit`). With `corpora`:
    the channel view's."""
    num_workers: int = 2
    """DataLoader processes decoding audio, per training process."""

    def __post_init__(self) -> None:
        if self.dev_protocol not in PROTOCOLS:
            raise ValueError(f"data.dev_protocol must be one of {PROTOCOLS}, got {self.dev_protocol!r}")
        if self.crop_samples <= 0:
            raise ValueError(f"data.crop_samples must be positive, got {self.crop_samples}")
        for name, value, known in (("augmentation", self.augmentation, AUGMENTATIONS),
                                   ("preprocess", self.preprocess, PREPROCESSING)):
            if value is not None and (not isinstance(value, dict) or len(value) != 1 or set(value) - known):
                raise ValueError(f"data.{name} must be one of {{{', '.join(sorted(known))}}}: ...: {value}")
        if self.corpora is None:
            defaults = DataSpec.__dataclass_fields__
            for name in ("cache_dir", "channel_seed", *STATE_WINDOWS, "views"):
                default = list(VIEWS) if name == "views" else defaults[name].default
                if getattr(self, name) != default:
                    raise ValueError(f"data.{name} applies to cached front-end states: set data.corpora, or drop it")
            return
        if self.dataset is not None:
            raise ValueError("data: set either dataset (audio) or corpora (cached front-end states), not both")
        if not isinstance(self.corpora, dict) or not self.corpora:
            raise ValueError(f"data.corpora must map corpus names to {{dataset: ...}} or {{source: ...}}, got "
                             f"{self.corpora!r}"[:200])
        for name, corpus in self.corpora.items():
            if isinstance(corpus, dict) and VOCODED in corpus:
                _check_vocoded_corpus(name, corpus, self.corpora)
                continue
            if not isinstance(corpus, dict) or len(corpus) != 1 or set(corpus) - set(CORPUS_SOURCES):
                raise ValueError(f"data.corpora.{name} must be {{dataset: FOLDER_OR_HUB_ID}} or {{source: FOLDER}}, "
                                 f"got {corpus!r}"[:200])
            if not isinstance(next(iter(corpus.values())), str):
                raise ValueError(f"data.corpora.{name}.{next(iter(corpus))} must be a path, got "
                                 f"{next(iter(corpus.values()))!r}")
        if self.crop_frames is not None and self.crop_frames < 1:
            raise ValueError(f"data.crop_frames must be at least 1 or null, got {self.crop_frames}")
        for name in ("mask_channels", "mask_frames"):
            if getattr(self, name) < 0:
                raise ValueError(f"data.{name} must be at least 0, got {getattr(self, name)}")
        if not self.views or len(set(self.views)) != len(self.views) or set(self.views) - set(VIEWS):
            raise ValueError(f"data.views must list distinct views of {VIEWS}, got {self.views!r}")


@dataclass
class TrainingSpec:
    """How to optimise. `batch_size` is global: the trials behind one optimiser step, summed over processes and
    accumulation steps, so a recipe trains the same way on one CPU or eight GPUs."""

    output_dir: str = "runs/nes2net"
    seed: int = 1234
    epochs: int = 100
    max_steps: int | None = None
    """Stop after this many optimiser steps in total (smoke tests); null: train every epoch."""
    batch_size: int = 12
    gradient_accumulation_steps: int = 1
    optimizer: str = "adam"
    lr: float = 1e-6
    """Learning rate of the layer merge and back-end (and of the front-end unless `frontend_lr` is set)."""
    frontend_lr: float | None = None
    """Learning rate of the SSL front-end; 0 freezes it."""
    weight_decay: float = 1e-4
    schedule: str = "constant"
    """`constant`; `cosine`: per step from `lr` to `min_lr` over the whole run; `cosine_epochs`: PyTorch's
    CosineAnnealingLR stepped once per epoch with T_max = `cosine_period_epochs` (periodic, as the CtrSVDD recipe)."""
    min_lr: float = 0.0
    cosine_period_epochs: int = 5
    max_grad_norm: float | None = None
    mixed_precision: str | None = None
    """`no`, `fp16` or `bf16`; null leaves it to `accelerate launch` / `accelerate config`."""
    freeze_feature_encoder: bool = False
    gradient_checkpointing: bool = False
    sync_batch_norm: bool = True
    """With several processes, compute BatchNorm statistics over the global batch (as one process would)."""
    early_stopping_patience: int | None = None
    """Stop after this many epochs without a better dev EER; null: never."""
    average_best: int = 1
    """The final model is the element-wise mean of the weights of this many epochs: the best by dev EER, or, with
    `average_epochs: last` (or no dev split), the last ones."""
    average_epochs: str = "best"
    """`best`: the `average_best` epochs of lowest dev EER; `last`: the last `average_best` epochs (dev EER still
    measured and logged)."""
    checkpoint_every_steps: int = 0
    """Also save a resumable checkpoint every this many optimiser steps (0: only at the end of each epoch)."""
    keep_checkpoints: int = 2
    """The newest complete checkpoints kept; resuming falls back to an older one when the newest is damaged."""
    eval_batch_size: int = 16
    log_every_steps: int = 10
    statistics_head: dict[str, Any] | None = None
    """With `data.corpora` and a dev split: after calibration, fuse a linear probe of the front-end's layers into the
    final model (`training.statistics_head`), `{inverse_strength: C, views: [clean], corpora: [...], window: 25}`: the
    inverse L2 strength of its logistic regression (default 1), the training views and corpora it is fitted on
    (default: all trained on), and the frames of the windows it is fitted on (odd; default: whole clips); null: none."""

    def __post_init__(self) -> None:
        if self.statistics_head is not None:
            head = self.statistics_head
            if not isinstance(head, dict) or set(head) - {"inverse_strength", "views", "corpora", "window"}:
                raise ValueError(f"training.statistics_head must be {{inverse_strength: C, views: [...], corpora: "
                                 f"[...], window: frames}} or null, got "
                                 f"{head!r}"[:200])
            check_frame_window("training.statistics_head.window", head.get("window"))
            if not isinstance(head.get("inverse_strength", 1.0), (int, float)) or head.get("inverse_strength", 1) <= 0:
                raise ValueError(f"training.statistics_head.inverse_strength must be positive, got "
                                 f"{head['inverse_strength']!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"training.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"training.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.average_epochs not in EPOCH_AVERAGES:
            raise ValueError(f"training.average_epochs must be one of {EPOCH_AVERAGES}, got {self.average_epochs!r}")
        positive = ("epochs", "batch_size", "gradient_accumulation_steps", "average_best", "keep_checkpoints",
                    "eval_batch_size", "log_every_steps", "cosine_period_epochs")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"training.{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or (self.frontend_lr is not None and self.frontend_lr < 0) or not 0 <= self.min_lr <= self.lr:
            raise ValueError("training: need lr > 0, frontend_lr >= 0 and 0 <= min_lr <= lr")


@dataclass
class EvaluationSpec:
    """One test set scored with the final model at the end of training (see `training.evaluate`)."""

    dataset: str | None = None
    """A built folder or Hub id; null: the training dataset (`data.dataset`, so `--dataset` moves both)."""
    split: str = "eval"
    protocol: str = "4sec"
    name: str | None = None
    """Shown in results and cards; default: the dataset's title from its build info."""
    where: dict[str, str] = field(default_factory=dict)
    """Keep only trials whose metadata columns have these values, e.g. `{subset: eval}` for ASVspoof 2021."""
    group_by: list[str] = field(default_factory=lambda: ["attack"])

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"evaluation.protocol must be one of {PROTOCOLS}, got {self.protocol!r}")


@dataclass
class Recipe:
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    evaluation: list[EvaluationSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        for index, spec in enumerate(self.evaluation):
            if spec.dataset is None and self.data.dataset is None:
                raise ValueError(f"evaluation entry {index + 1} names no dataset (data.dataset is not set to stand in)")
            if spec.dataset is None:
                spec.dataset = self.data.dataset
        if self.data.corpora is not None and self.training.frontend_lr != 0:
            raise ValueError("data.corpora trains on cached front-end states: the front-end must stay frozen "
                             "(training.frontend_lr: 0)")
        head = self.training.statistics_head
        if head is not None and (self.data.corpora is None or self.data.dev_split is None):
            raise ValueError("training.statistics_head is fitted on cached states and fused on the dev split: set "
                             "data.corpora and data.dev_split")
        if head is not None and not set(head.get("views", self.data.views)) <= set(self.data.views):
            raise ValueError(f"training.statistics_head.views must be among data.views {self.data.views}, got "
                             f"{head['views']!r}")
        if head is not None and not set(head.get("corpora", self.data.corpora)) <= set(self.data.corpora):
            raise ValueError(f"training.statistics_head.corpora must be among data.corpora, got {head['corpora']!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {"model": ModelSpec, "data": DataSpec, "training": TrainingSpec}


def recipe_path(name_or_path: str | os.PathLike) -> Path:
    """A recipe name (`mini`, `asvspoof2019-la`, ...) or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise FileNotFoundError(f"recipe file {path} not found")
        return path
    path = RECIPES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        choices = ", ".join(available_recipes())
        raise ValueError(f"unknown recipe {str(name_or_path)!r}; choose one of {choices} or a YAML path")
    return path


def available_recipes() -> list[str]:
    return sorted(path.stem for path in RECIPES_DIR.glob("*.yaml"))


def parse_override(text: str) -> tuple[list[str], Any]:
    """`training.lr=1e-6` -> (["training", "lr"], 1e-6); the value is parsed as YAML."""
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise ValueError(f"override {text!r} must look like section.field=value")
    return key.strip().split("."), _safe_yaml(value, f"override {text!r}") if value.strip() else None


def _safe_yaml(text: str, where: str) -> Any:
    """`yaml.safe_load(text)`; a `ValueError` naming `where` (one line) for text it refuses, such as a
    `!!python/object/apply` tag (which `safe_load` never runs) or broken syntax."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or type(error).__name__
        mark = getattr(error, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise ValueError(f"{where}: not a plain YAML recipe{line}: {' '.join(str(problem).split())}") from None


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> None:
    """Set `data[path[0]][path[1]]... = value`, creating dicts below the section level."""
    if path[0] == "evaluation" and len(path) > 1:
        raise ValueError("evaluation entries cannot be overridden one field at a time; set evaluation=[...] instead")
    if len(path) == 1:
        data[path[0]] = value
        return
    node = data.setdefault(path[0], {})
    for key in path[1:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ValueError(f"cannot set {'.'.join(path)}: {key} is not a mapping")
    node[path[-1]] = value


def _section(name: str, cls: type, values: Any):
    values = values or {}
    if not isinstance(values, dict):
        raise ValueError(f"recipe section {name!r} must be a mapping, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        fields = ", ".join(f"{name}.{key}" for key in unknown)
        raise ValueError(f"unknown field(s) {fields}; {name} has: {', '.join(sorted(known))}")
    hints = typing.get_type_hints(cls)
    return cls(**{key: _coerce(f"{name}.{key}", value, hints[key]) for key, value in values.items()})


def _coerce(where: str, value: Any, hint: Any) -> Any:
    """YAML reads `1e-6` (no dot) as a string: turn strings into floats where a field holds a float."""
    if isinstance(value, str) and (hint is float or float in typing.get_args(hint)):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{where} must be a number, got {value!r}") from None
    return value


def recipe_from_dict(data: dict[str, Any]) -> Recipe:
    unknown = sorted(set(data) - {*_SECTIONS, "evaluation"})
    if unknown:
        raise ValueError(f"unknown recipe section(s) {', '.join(unknown)}; sections: model, data, training, evaluation")
    sections = {name: _section(name, cls, data.get(name)) for name, cls in _SECTIONS.items()}
    evaluation = [_section("evaluation", EvaluationSpec, entry) for entry in data.get("evaluation") or []]
    return Recipe(**sections, evaluation=evaluation)


def states_recipe(corpora: dict[str, dict[str, Any]], data: dict[str, Any], training: dict[str, Any] | None) -> Recipe:
    """The recipe that trains on states a script caches its own way (the frame head, the front-end benchmark):
    `corpora` (name -> `{source, ...}`, only `source` kept), the window fields of the script's `data` section
    (`STATE_WINDOWS`; the rest is the script's) and `training` (`TrainingSpec` fields)."""
    windows = {name: data[name] for name in STATE_WINDOWS if name in data}
    sources = {name: {"source": corpus["source"]} for name, corpus in corpora.items()}
    return recipe_from_dict({"data": {"corpora": sources, **windows}, "training": training})


def load_recipe(
    name_or_path: str | os.PathLike, overrides: Sequence[str] = (), values: dict[str, Any] | None = None
) -> Recipe:
    """Read a recipe and apply `section.field=value` overrides (see the module docstring), then `values`
    (`{"section.field": value}`, already typed)."""
    path = recipe_path(name_or_path)
    data = _safe_yaml(path.read_text(encoding="utf-8"), str(path)) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a recipe is a mapping of sections, got {type(data).__name__}")
    for override in overrides:
        apply_override(data, *parse_override(override))
    for key, value in (values or {}).items():
        apply_override(data, key.split("."), value)
    return recipe_from_dict(data)
