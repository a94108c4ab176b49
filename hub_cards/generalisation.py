"""The cross-validation record a model folder carries (`evaluation/generalisation.json`): the leave-one-family-out
table its recipe was chosen by (issue 23, "judge a candidate by generalisation"), and the model's own EER on each test
split, whole and on the generators no training clip came from.

`benchmarks/generalisation.py` cross-validates candidate recipes and baselines in one run and scores one model folder
on the test splits next to them; `write_generalisation_record` cuts from its JSON what describes a model folder:

```json
{
  "schema_version": 1,
  "corpora": ["mini-antispoof", "antispoof-plus", "antispoof-modern"],
  "folds": [{"family": "voice conversion", "genuine_sources": ["antispoof-plus/VCTK"]}],
  "recipe": "vocoded-hifigan",
  "baselines": ["logistic"],
  "candidates": {"logistic": {"description": "...", "pooled": RATES, "folds": {"voice conversion": RATES}}},
  "test": {"antispoof-plus": {"all": RATES, "unseen": RATES}},
  "weights_sha256": "3020de8c...",
  "machine": "x86_64, 2 cores, 1 torch thread(s)"
}
```

RATES: `eer` and its 95 % bootstrap interval `eer_low`-`eer_high`, the `spoof_passed` (fakes called bona fide) and
`bonafide_flagged` (genuine clips called spoofed) at the calibrated threshold, all in percent, and the `bonafide` /
`spoof` clip counts. `recipe` is the candidate whose recipe trained the folder's weights; `test` is there only when
the benchmark scored these very weights (`weights_sha256` of `model.safetensors`). Each split's `unseen` row scores
the spoofs of its `unseen_in_train` generators against every genuine clip of the split.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from modeling_nes2net.atomic import write_text_atomic

from .published_files import GENERALISATION_FILE, read_json_object
from .results import schema_errors
from .templating import render_body

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_PERCENT = {"type": "number", "minimum": 0, "maximum": 100}
_COUNT = {"type": "integer", "minimum": 0}
_RATES = {
    "type": "object",
    "required": ["eer", "eer_low", "eer_high", "spoof_passed", "bonafide_flagged", "bonafide", "spoof"],
    "properties": {"eer": _PERCENT, "eer_low": _PERCENT, "eer_high": _PERCENT, "spoof_passed": _PERCENT,
                   "bonafide_flagged": _PERCENT, "bonafide": _COUNT, "spoof": _COUNT},
}
_NAMES = {"type": "array", "items": {"type": "string", "minLength": 1}}
RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["schema_version", "corpora", "folds", "recipe", "baselines", "candidates", "machine"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"type": "integer", "enum": [SCHEMA_VERSION]},
        "corpora": _NAMES,
        "folds": {"type": "array", "items": {"type": "object", "required": ["family", "genuine_sources"],
                                             "properties": {"family": {"type": "string", "minLength": 1},
                                                            "genuine_sources": _NAMES}}},
        "recipe": {"type": "string", "minLength": 1},
        "baselines": _NAMES,
        "candidates": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["description", "pooled", "folds"],
            "properties": {"description": {"type": "string"}, "pooled": _RATES,
                           "folds": {"type": "object", "additionalProperties": _RATES}}}},
        "test": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["all"], "additionalProperties": False,
            "properties": {"all": _RATES, "unseen": _RATES,
                           "channels": {"type": "object", "additionalProperties": _RATES}}}},
        "weights_sha256": {"type": "string", "minLength": 64},
        "machine": {"type": "string"},
    },
}
"""The JSON Schema of the record, checked by `validate_generalisation_record` (with the cross-references it cannot
state: the recipe and baselines are candidates with a row for every fold, the test splits are corpora)."""


def weights_digest(model_dir: str | os.PathLike) -> str:
    """SHA-256 of a model folder's `model.safetensors`: which weights a test row scored."""
    return hashlib.sha256((Path(model_dir) / "model.safetensors").read_bytes()).hexdigest()


def validate_generalisation_record(record: Any) -> list[str]:
    """Every way `record` breaks `RECORD_SCHEMA` or its cross-references; empty when valid."""
    errors = schema_errors(record, RECORD_SCHEMA, "$")
    if errors:
        return errors
    families = [fold["family"] for fold in record["folds"]]
    for name in [record["recipe"], *record["baselines"]]:
        if name not in record["candidates"]:
            errors.append(f"$: {name!r} is not one of the candidates ({', '.join(record['candidates'])})")
        elif sorted(record["candidates"][name]["folds"]) != sorted(families):
            errors.append(f"$.candidates.{name}.folds: holds {sorted(record['candidates'][name]['folds'])}, "
                          f"not the folds {sorted(families)}")
    errors += [f"$.test.{corpus}: not one of the corpora" for corpus in record.get("test", {})
               if corpus not in record["corpora"]]
    return errors


def load_generalisation_record(model_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The record of the model folder `model_dir`, None when it has none; a ValueError naming the file when it is
    invalid."""
    path = Path(model_dir) / GENERALISATION_FILE
    if not path.is_file():
        return None
    record = read_json_object(path)
    errors = validate_generalisation_record(record)
    if errors:
        raise ValueError(f"{path}: invalid cross-validation record: {'; '.join(errors)}")
    return record


def generalisation_record(results: dict[str, Any], recipe: str, baselines: list[str], compared: str,
                          weights_sha256: str | None) -> dict[str, Any]:
    """The record of a model folder whose weights hash to `weights_sha256` and were trained by the candidate `recipe`,
    cut from the JSON of `benchmarks/generalisation.py` (`results`): every candidate's cross-validation row, and the
    `compared` model's test rows when the benchmark scored these weights. Raises ValueError when it is not valid."""
    record = {"schema_version": SCHEMA_VERSION, "corpora": results.get("corpora"), "folds": results.get("folds"),
              "recipe": recipe, "baselines": list(baselines), "candidates": results.get("candidates"),
              "machine": results.get("machine")}
    scored = (results.get("compared") or {}).get("weights_sha256")
    if scored is not None and scored == weights_sha256 and compared in (results.get("test") or {}):
        record.update(test=results["test"][compared], weights_sha256=weights_sha256)
    errors = validate_generalisation_record(record)
    if errors:
        raise ValueError(f"cannot make a cross-validation record: {'; '.join(errors)}")
    return record


def write_generalisation_record(model_dir: str | os.PathLike, results_file: str | os.PathLike, recipe: str,
                                baselines: list[str], compared: str,
                                shown_as: str | os.PathLike | None = None) -> Path:
    """Write `model_dir/evaluation/generalisation.json` from the `benchmarks/generalisation.py` JSON `results_file`
    (see `generalisation_record`); returns its path. The test rows are left out, with a warning naming the folder
    `shown_as` (where a staging `model_dir` ends up; by default `model_dir`), when the benchmark scored other weights
    than the folder's."""
    model_dir, results_file = Path(model_dir), Path(results_file)
    shown_as = model_dir if shown_as is None else shown_as
    results = read_json_object(results_file)
    digest = weights_digest(model_dir) if (model_dir / "model.safetensors").is_file() else None
    try:
        record = generalisation_record(results, recipe, baselines, compared, digest)
    except ValueError as error:
        raise ValueError(f"{results_file}: {error}") from None
    if "test" not in record:
        logger.warning("%s scored other weights than those of %s: the record has no test rows (rerun the benchmark "
                       "with --compared %s, then write the record again)", results_file, shown_as, shown_as)
    path = model_dir / GENERALISATION_FILE
    path.parent.mkdir(exist_ok=True)
    return write_text_atomic(path, json.dumps(record, indent=1) + "\n")


def generalisation_summary(record: dict[str, Any]) -> str:
    """The record's compact tables in Markdown (what the Space shows): the pooled leave-one-family-out EER of the
    recipe and the baselines, and the model's EER on each test split, whole and on its unseen generators."""
    return render_body("_generalisation_summary.md", record=record)
