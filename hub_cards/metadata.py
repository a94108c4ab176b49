"""Offline checks of card metadata: what the Hub needs to index, filter and render our repositories.

`RepoCard.validate()` asks the Hub's own validator over the network; these checks run anywhere and are
stricter where it matters for us (labels, evaluation results, training data).
"""

from __future__ import annotations

import re
from typing import Any

from huggingface_hub import DatasetCard, ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

# License identifiers the Hub recognises (https://huggingface.co/docs/hub/repositories-licenses).
HUB_LICENSES = frozenset(
    """
    apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
    bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc
    cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0
    cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0
    cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1
    eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c
    ms-pl apple-ascl apple-amlr mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib
    pddl lgpl-lr deepfloyd-if-license fair-noncommercial-research-license unknown other
    """.split()
)
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?$")
TASK = "audio-classification"


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _license_problems(data: dict[str, Any]) -> list[str]:
    licenses = _as_list(data.get("license"))
    if not licenses:
        return ["metadata: 'license' is missing"]
    unknown = [name for name in licenses if name not in HUB_LICENSES]
    problems = [f"metadata: license '{name}' is not a Hub license identifier" for name in unknown]
    if "other" in licenses and not (data.get("license_name") and data.get("license_link")):
        problems.append("metadata: license 'other' needs 'license_name' and 'license_link'")
    return problems


def _repo_id_problems(key: str, values: list) -> list[str]:
    return [
        f"metadata: {key} entry {value!r} is not a Hub repository id"
        for value in values
        if not isinstance(value, str) or not REPO_ID.match(value)
    ]


def model_card_problems(card: ModelCard, require_base_model: bool = False) -> list[str]:
    """Every reason `card` would be an incomplete or unreadable model card on the Hub; empty when fine."""
    data = card.data.to_dict()
    problems = _license_problems(data)
    if data.get("pipeline_tag") != TASK:
        problems.append(f"metadata: pipeline_tag must be '{TASK}', got {data.get('pipeline_tag')!r}")
    if data.get("library_name") != "transformers":
        problems.append(f"metadata: library_name must be 'transformers', got {data.get('library_name')!r}")
    base_models = _as_list(data.get("base_model"))
    if require_base_model and not base_models:
        problems.append("metadata: 'base_model' is missing (the Hub id of the front-end)")
    problems += _repo_id_problems("base_model", base_models)
    datasets = _as_list(data.get("datasets"))
    if not datasets:
        problems.append("metadata: 'datasets' (the training data) is missing")
    problems += _repo_id_problems("datasets", datasets)
    tags = _as_list(data.get("tags"))
    if not tags or not all(isinstance(tag, str) and tag for tag in tags):
        problems.append("metadata: 'tags' must be a non-empty list of strings")
    model_index = data.get("model-index")
    if not model_index:
        return problems + ["metadata: 'model-index' with evaluation results is missing"]
    try:
        _, eval_results = model_index_to_eval_results(model_index)
    except (KeyError, TypeError) as error:
        return problems + [f"metadata: model-index cannot be parsed ({type(error).__name__}: {error})"]
    for result in eval_results:
        where = f"model-index result {result.dataset_name} / {result.metric_type}"
        if result.task_type != TASK:
            problems.append(f"{where}: task type must be '{TASK}'")
        if isinstance(result.metric_value, bool) or not isinstance(result.metric_value, (int, float)):
            problems.append(f"{where}: value {result.metric_value!r} is not a number")
    if not any(result.metric_type == "eer" for result in eval_results):
        problems.append("metadata: model-index reports no EER")
    return problems


def dataset_card_problems(card: DatasetCard) -> list[str]:
    """Every reason `card` would be an incomplete dataset card on the Hub; empty when fine."""
    data = card.data.to_dict()
    problems = _license_problems(data)
    if TASK not in _as_list(data.get("task_categories")):
        problems.append(f"metadata: task_categories must include '{TASK}'")
    if not data.get("pretty_name"):
        problems.append("metadata: 'pretty_name' is missing")
    configs = data.get("configs")
    if not isinstance(configs, list) or not configs:
        return problems + ["metadata: 'configs' with the Parquet data files of each split is missing"]
    for config in configs:
        name = config.get("config_name") if isinstance(config, dict) else None
        data_files = config.get("data_files") if isinstance(config, dict) else None
        if not name or not isinstance(data_files, list) or not data_files:
            problems.append(f"metadata: config {config!r} needs 'config_name' and a list of 'data_files'")
            continue
        for entry in data_files:
            if not isinstance(entry, dict) or not entry.get("split") or not entry.get("path"):
                problems.append(f"metadata: config '{name}' data_files entry {entry!r} needs 'split' and 'path'")
    return problems


def configured_data_files(card: DatasetCard) -> dict[tuple[str, str], list[str]]:
    """`(config_name, split) -> path patterns` as declared in the card's `configs` metadata."""
    declared: dict[tuple[str, str], list[str]] = {}
    for config in card.data.to_dict().get("configs") or []:
        for entry in config["data_files"]:
            declared[(config["config_name"], entry["split"])] = _as_list(entry["path"])
    return declared
