"""The evaluation-output format that model cards are rendered from.

`nes2net evaluate` writes one JSON file per (model, dataset split, protocol); the cards read them back, so
every number on a card comes from a file, never from a hand-typed value. One file looks like this:

```json
{
  "schema_version": 1,
  "model": "runs/nes2net-x-xlsr/checkpoint-best",
  "dataset": {"name": "ASVspoof 2021 DF", "id": "nes2net/asvspoof2021-df", "config": "default",
              "split": "eval", "revision": null},
  "protocol": "full",
  "score": "bonafide_logit",
  "metrics": {"eer": 0.0165, "threshold": 1.234, "min_dcf": 0.051, "act_dcf": 0.062, "cllr": 0.71},
  "n_trials": 611829, "n_bonafide": 22617, "n_spoof": 589212,
  "per_group": {"attack": {"A07": {"eer": 0.004, "n_trials": 23000}}}
}
```

- `eer` is a fraction in [0, 1] (cards print it in percent); `threshold` is the EER operating point on the
  scale named by `score` (`bonafide_logit`: the paper's score, `logits[:, 1]`; `log_odds`:
  `log p(bonafide) / p(spoof)`; `bonafide_probability`: its sigmoid). Higher always means more bona fide.
- `protocol`: `full` (whole utterance), `4sec` (first 64,600 samples, tiled if shorter) or `windows`
  (scores of fixed windows averaged over the utterance).
- `min_dcf` / `act_dcf` use the ASVspoof 5 costs (P_spoof 0.05, C_miss 1, C_fa 10); `cllr` is in bits;
  `min_tdcf` is the ASVspoof 2019/2021 min t-DCF. Every metric but `eer` is optional.
- `per_group` maps a metadata column (`attack`, `codec`, ...) to its values' metrics (same keys as
  `metrics`, plus `n_trials`).
- `conditions` (from `nes2net evaluate --perturb SPEC`) maps a channel condition (`training.channel`) to the
  metrics of the same trials passed through it, drawn with `channel_seed`; `metrics` stay those of clean audio.
- `eer_ci` (in `metrics`, a group or a condition) is a 95% bootstrap interval `[low, high]` of the EER;
  `min_a_dcf` the ASVspoof 5 a-DCF of the CM in tandem with the ASV scores given.

`RESULTS_SCHEMA` below is the JSON Schema of that format and the only definition of it: `validate_results`
checks a parsed file against it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeling_nes2net.atomic import write_text_atomic
from modeling_nes2net.protocols import PROTOCOLS

from .published_files import public_path

SCHEMA_VERSION = 1
CLEAN_CONDITION = "clean"
"""The name the robustness table gives the unperturbed trials (`metrics`)."""
SCORE_SCALES = ("bonafide_logit", "log_odds", "bonafide_probability")

_NON_NEGATIVE = {"type": "number", "minimum": 0}
_METRICS_PROPERTIES: dict[str, Any] = {
    "eer": {"type": "number", "minimum": 0, "maximum": 1},
    "threshold": {"type": "number"},
    "min_dcf": _NON_NEGATIVE,
    "act_dcf": _NON_NEGATIVE,
    "cllr": _NON_NEGATIVE,
    "min_tdcf": _NON_NEGATIVE,
    "min_a_dcf": _NON_NEGATIVE,
    "eer_ci": {"type": "array"},
}
_COUNT = {"type": "integer", "minimum": 0}
_GROUP = {
    "type": "object",
    "required": ["eer", "n_trials"],
    "additionalProperties": False,
    "properties": {**_METRICS_PROPERTIES, "n_trials": _COUNT, "n_bonafide": _COUNT, "n_spoof": _COUNT},
}

RESULTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "nes2net evaluation result",
    "type": "object",
    "required": ["schema_version", "dataset", "protocol", "score", "metrics", "n_trials"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"type": "integer", "enum": [SCHEMA_VERSION]},
        "model": {"type": ["string", "null"]},
        "dataset": {
            "type": "object",
            "required": ["name", "id", "split"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "id": {"type": "string", "minLength": 1},
                "config": {"type": ["string", "null"]},
                "split": {"type": "string", "minLength": 1},
                "revision": {"type": ["string", "null"]},
            },
        },
        "protocol": {"type": "string", "enum": list(PROTOCOLS)},
        "score": {"type": "string", "enum": list(SCORE_SCALES)},
        "metrics": {
            "type": "object",
            "required": ["eer"],
            "additionalProperties": False,
            "properties": _METRICS_PROPERTIES,
        },
        "n_trials": {"type": "integer", "minimum": 1},
        "n_bonafide": _COUNT,
        "n_spoof": _COUNT,
        "per_group": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": _GROUP}},
        "conditions": {"type": "object", "additionalProperties": _GROUP},
        "channel_seed": {"type": "integer"},
    },
}

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def schema_errors(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Checks `value` against the subset of JSON Schema that `RESULTS_SCHEMA` and `hub_cards.generalisation` use
    (`type`, `enum`, bounds, `minLength`, `required`, `properties`, `additionalProperties`, `items`); returns readable
    errors."""
    allowed_types = schema.get("type")
    if allowed_types is not None:
        names = [allowed_types] if isinstance(allowed_types, str) else allowed_types
        is_bool = isinstance(value, bool)
        if not any(isinstance(value, _JSON_TYPES[n]) and (n == "boolean" or not is_bool) for n in names):
            return [f"{where}: expected {' or '.join(names)}, got {type(value).__name__}"]
        if isinstance(value, float) and not math.isfinite(value):
            return [f"{where}: must be a finite number, got {value}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{where}: {value} is below the minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{where}: must not be empty")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        errors += [f"{where}: missing required key '{key}'" for key in schema.get("required", []) if key not in value]
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unknown key '{key}' (allowed: {', '.join(properties)})")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += schema_errors(item, schema["additionalProperties"], f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{where}[{index}]")
    return errors


def validate_results(data: Any) -> list[str]:
    """Returns every way `data` (a parsed evaluation-output JSON) breaks `RESULTS_SCHEMA`; empty when valid."""
    errors = schema_errors(data, RESULTS_SCHEMA, "$")
    if not errors and "n_bonafide" in data and "n_spoof" in data:
        if data["n_bonafide"] + data["n_spoof"] != data["n_trials"]:
            errors.append("$: n_bonafide + n_spoof must equal n_trials")
    return errors


@dataclass(frozen=True)
class EvaluationResult:
    """One evaluation-output file: a model scored on one dataset split under one protocol."""

    dataset_name: str
    dataset_id: str
    dataset_split: str
    protocol: str
    score: str
    metrics: dict[str, float]
    n_trials: int
    dataset_config: str | None = None
    dataset_revision: str | None = None
    model: str | None = None
    n_bonafide: int | None = None
    n_spoof: int | None = None
    per_group: dict[str, dict[str, dict[str, float]]] | None = None
    conditions: dict[str, dict[str, float]] | None = None
    channel_seed: int | None = None
    source_file: str | None = None

    @property
    def key(self) -> tuple[str, str | None, str, str]:
        """What must be unique among the results of one card: dataset, config, split, protocol."""
        return (self.dataset_id, self.dataset_config, self.dataset_split, self.protocol)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source_file: str | None = None) -> EvaluationResult:
        errors = validate_results(data)
        if errors:
            where = f"{source_file}: " if source_file else ""
            raise ValueError(f"{where}invalid evaluation result: {'; '.join(errors)}")
        dataset = data["dataset"]
        return cls(
            dataset_name=dataset["name"],
            dataset_id=dataset["id"],
            dataset_split=dataset["split"],
            dataset_config=dataset.get("config"),
            dataset_revision=dataset.get("revision"),
            protocol=data["protocol"],
            score=data["score"],
            metrics=dict(data["metrics"]),
            n_trials=data["n_trials"],
            n_bonafide=data.get("n_bonafide"),
            n_spoof=data.get("n_spoof"),
            model=data.get("model"),
            per_group=data.get("per_group"),
            conditions=data.get("conditions"),
            channel_seed=data.get("channel_seed"),
            source_file=source_file,
        )

    def to_dict(self) -> dict[str, Any]:
        dataset = {"name": self.dataset_name, "id": self.dataset_id, "config": self.dataset_config}
        dataset.update(split=self.dataset_split, revision=self.dataset_revision)
        data: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "model": self.model, "dataset": dataset}
        data.update(protocol=self.protocol, score=self.score, metrics=dict(self.metrics), n_trials=self.n_trials)
        optional = {"n_bonafide": self.n_bonafide, "n_spoof": self.n_spoof, "per_group": self.per_group,
                    "conditions": self.conditions, "channel_seed": self.channel_seed}
        data.update({key: value for key, value in optional.items() if value is not None})
        return data


def load_result(path: str | os.PathLike) -> EvaluationResult:
    """Reads and validates one evaluation-output JSON file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    return EvaluationResult.from_dict(data, source_file=str(path))


def load_results(paths: Iterable[str | os.PathLike]) -> list[EvaluationResult]:
    """Reads several result files; two files for the same dataset, split and protocol are an error."""
    results = [load_result(path) for path in paths]
    seen: dict[tuple, str | None] = {}
    for result in results:
        if result.key in seen:
            raise ValueError(
                f"{result.source_file} and {seen[result.key]} both report {result.dataset_id} "
                f"split {result.dataset_split} protocol {result.protocol}"
            )
        seen[result.key] = result.source_file
    return results


def write_result(path: str | os.PathLike, result: EvaluationResult | dict[str, Any]) -> Path:
    """Validates and writes one evaluation-output file atomically (temporary file, then `os.replace`); an absolute
    `model` path is recorded by its folder name."""
    data = result.to_dict() if isinstance(result, EvaluationResult) else dict(result)
    if data.get("model") is not None:
        data["model"] = public_path(data["model"])  # a Hub id or a folder name, never a path of this machine
    errors = validate_results(data)
    if errors:
        raise ValueError(f"refusing to write an invalid evaluation result: {'; '.join(errors)}")
    return write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def robustness_rows(result: EvaluationResult) -> list[dict[str, Any]]:
    """The clean trials, then each channel condition of `result.conditions`: `condition`, `n_trials`, `eer`,
    `eer_ci` (or None), `delta_eer` (EER minus the clean EER), `min_dcf` and `cllr` (None where absent)."""
    clean_eer = result.metrics["eer"]
    entries = {CLEAN_CONDITION: {**result.metrics, "n_trials": result.n_trials}, **(result.conditions or {})}
    return [
        {"condition": name, "n_trials": entry["n_trials"], "eer": entry["eer"], "eer_ci": entry.get("eer_ci"),
         "delta_eer": entry["eer"] - clean_eer, "min_dcf": entry.get("min_dcf"), "cllr": entry.get("cllr")}
        for name, entry in entries.items()
    ]


def robustness_table(result: EvaluationResult) -> str:
    """`robustness_rows` as a Markdown table (EER in percent, its change against clean in points)."""
    lines = ["| Condition | Trials | EER (%) | 95% interval | ΔEER vs clean (points) | minDCF | CLLR |",
             "|---|---|---|---|---|---|---|"]
    for row in robustness_rows(result):
        interval = "–" if row["eer_ci"] is None else "%.2f–%.2f" % tuple(100 * bound for bound in row["eer_ci"])
        delta = "" if row["condition"] == CLEAN_CONDITION else "%+.2f" % (100 * row["delta_eer"])
        costs = ["–" if row[key] is None else "%.4f" % row[key] for key in ("min_dcf", "cllr")]
        lines.append(f"| `{row['condition']}` | {row['n_trials']:,} | {100 * row['eer']:.2f} | {interval} | {delta} | "
                     f"{costs[0]} | {costs[1]} |")
    return "\n".join(lines) + "\n"
