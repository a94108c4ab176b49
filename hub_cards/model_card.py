"""Model cards for Nes2Net checkpoints: converted releases, trained checkpoints and the demo checkpoint.

The card is built from these sources and nothing typed into the template: the folder's `config.json`
(architecture, labels, threshold), the evaluation-output files (`hub_cards.results`), the folder's cross-validation
record when it has one (`evaluation/generalisation.json`, `hub_cards.generalisation`) and a `ModelCardSpec` (what only
the publisher knows: repository, license, base model, training data and recipe, efficiency figures).

```python
spec = ModelCardSpec(repo_id="nes2net/nes2net-x-xlsr-asvspoof2019", kind="converted", license="other", ...,
                     results=load_results(["eval/df.json", "eval/itw.json"]))
write_model_card("releases/nes2net-x-xlsr", spec)   # copies the results to evaluation/, writes README.md
```
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from modeling_nes2net.atomic import write_text_atomic
from modeling_nes2net.configuration_nes2net import ID2LABEL, Nes2NetConfig
from modeling_nes2net.description import describe_architecture
from .generalisation import load_generalisation_record
from .results import EvaluationResult, load_result, robustness_table

from .published_files import (
    CARD_FILE,
    EVALUATION_DIR,
    GENERALISATION_FILE,
    describe_model_files,
    list_files,
    read_config,
)
from .metadata import TASK, model_card_problems
from .templating import MarkdownText

Kind = Literal["converted", "trained", "demo"]
KINDS = ("converted", "trained", "demo")
PAPER_TITLE = "Nes2Net: A Lightweight Nested Architecture for Foundation Model Driven Speech Anti-spoofing"
PAPER_ARXIV = "2504.05657"
SCORE_DESCRIPTIONS = {
    "bonafide_logit": "the bona fide logit",
    "log_odds": "the log-odds log p(bonafide)/p(spoof)",
    "bonafide_probability": "p(bonafide)",
}
# (metrics key, model-index type, column title, scale factor for the card and model-index)
REPORTED_METRICS = (
    ("eer", "eer", "EER (%)", 100.0),
    ("min_dcf", "min_dcf", "minDCF", 1.0),
    ("act_dcf", "act_dcf", "actDCF", 1.0),
    ("cllr", "cllr", "CLLR (bits)", 1.0),
    ("min_tdcf", "min_tdcf", "min t-DCF", 1.0),
)


@dataclass(frozen=True)
class PublishedResult:
    """An EER published elsewhere for these weights, not re-measured here: the paper's or a leaderboard's.

    `protocol` is the scoring protocol the source used (`full`, `4sec`, ...), `eer` is in percent and `source` names
    who measured it (e.g. "Liu et al., T-IFS 2025, Table 6" or "Speech Anti-Spoofing Arena"), found at `url`."""

    dataset_name: str
    split: str
    protocol: str
    eer: float
    source: str
    url: str


@dataclass(frozen=True)
class ConvertedSource:
    """Where a converted release comes from: the authors' checkpoint file and its SHA-256."""

    checkpoint: str
    sha256: str
    url: str
    release: str


@dataclass(frozen=True)
class BackendComparison:
    """Another back-end to set the efficiency figures against (measured by the caller, same frame count)."""

    name: str
    parameters: int
    macs: int


@dataclass(frozen=True)
class Efficiency:
    """Back-end cost, measured by the caller (`modeling_nes2net.complexity`), for `frames` feature frames."""

    backend_parameters: int
    backend_macs: int
    frames: int = 201
    total_parameters: int | None = None
    comparisons: tuple[BackendComparison, ...] = ()

    @property
    def seconds(self) -> float:
        """Audio covered by `frames` at the 20 ms frame rate of the SSL front-ends."""
        return self.frames * 0.02


@dataclass(frozen=True)
class ModelCardSpec:
    """What the publisher states about a model; everything else on the card is read from files.

    Args:
        repo_id: Hub repository the card is for (`owner/name`).
        kind: `"converted"` (the authors' weights, converted), `"trained"` (trained with this project) or `"demo"`.
        license: Hub license identifier; `"other"` needs `license_name` and `license_link`.
        datasets: Hub ids of the training data.
        training_data: one paragraph on the training data (defaults to `config.training_data`).
        base_model: Hub id of the pre-trained front-end the model was fine-tuned from (`None` for the spectrogram
            front-end).
        results: evaluation outputs; the first one is the headline.
        recipe: training hyper-parameters as `name -> value` (e.g. the recipe YAML), shown as a table.
        recipe_file: path of the recipe in the nes2net repository, if any.
        source: for `kind="converted"`, the original checkpoint.
        efficiency: back-end parameters and MACs.
        published: EERs published elsewhere for these weights (shown apart, never in the `model-index`, which holds
            only the numbers of `results`, re-measured with `nes2net evaluate`).
        file_descriptions: descriptions of files outside the standard layout.
    """

    repo_id: str
    kind: Kind
    license: str
    datasets: list[str]
    results: list[EvaluationResult]
    base_model: str | None = None
    training_data: str | None = None
    title: str | None = None
    language: list[str] = field(default_factory=lambda: ["en"])
    license_name: str | None = None
    license_link: str | None = None
    recipe: dict[str, Any] | None = None
    recipe_file: str | None = None
    source: ConvertedSource | None = None
    efficiency: Efficiency | None = None
    published: list[PublishedResult] = field(default_factory=list)
    extra_tags: list[str] = field(default_factory=list)
    file_descriptions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if "/" not in self.repo_id:
            raise ValueError(f"repo_id must be 'owner/name', got {self.repo_id!r}")
        if not self.results:
            raise ValueError("a model card needs at least one evaluation result")
        if (self.kind == "converted") != (self.source is not None):
            raise ValueError("source (the original checkpoint) is required for converted releases and only for them")
        keys = [result.key for result in self.results]
        if len(set(keys)) != len(keys):
            raise ValueError("two results report the same dataset, split and protocol")

    @classmethod
    def from_dict(cls, data: dict[str, Any], results: list[EvaluationResult]) -> ModelCardSpec:
        """Builds a spec from parsed YAML/JSON; nested `source`, `efficiency` and `published` become their
        dataclasses."""
        data = dict(data)
        data["published"] = [PublishedResult(**row) for row in data.get("published") or []]
        if data.get("source") is not None:
            data["source"] = ConvertedSource(**data["source"])
        if data.get("efficiency") is not None:
            efficiency = dict(data["efficiency"])
            efficiency["comparisons"] = tuple(BackendComparison(**row) for row in efficiency.get("comparisons", ()))
            data["efficiency"] = Efficiency(**efficiency)
        return cls(**data, results=results)


def _tags(config: dict[str, Any], spec: ModelCardSpec) -> list[str]:
    tags = ["anti-spoofing", "deepfake-detection", "audio-deepfake-detection", "speech", "nes2net"]
    tags.append(config.get("backend_variant", "nes2net"))
    if config.get("frontend_config"):
        tags.append(config["frontend_config"]["model_type"])
    tags.append("custom_code")
    if spec.kind in ("demo", "converted"):
        tags.append(spec.kind)
    return list(dict.fromkeys(tags + spec.extra_tags))


def _eval_results(results: list[EvaluationResult], repo_id: str | None = None) -> list[EvalResult]:
    """One model-index entry per reported metric; the protocol goes in the metric's `config` and its name. With
    `repo_id`, each entry's source says it was re-measured with `nes2net evaluate` and links the repository."""
    entries = []
    source = {} if repo_id is None else {"source_name": "re-measured with nes2net evaluate",
                                         "source_url": f"https://huggingface.co/{repo_id}"}
    for result in results:
        for key, metric_type, title, scale in REPORTED_METRICS:
            if key not in result.metrics:
                continue
            entries.append(
                EvalResult(
                    task_type=TASK,
                    task_name="Speech anti-spoofing",
                    dataset_type=result.dataset_id,
                    dataset_name=result.dataset_name,
                    dataset_config=result.dataset_config,
                    dataset_split=result.dataset_split,
                    dataset_revision=result.dataset_revision,
                    metric_type=metric_type,
                    metric_value=round(result.metrics[key] * scale, 4),
                    metric_name=f"{title}, {result.protocol} protocol",
                    metric_config=result.protocol,
                    **source,
                )
            )
    return entries


def model_index(model_name: str, results: list[EvaluationResult], repo_id: str | None = None) -> list[dict[str, Any]]:
    """The card metadata's `model-index` for `results`, as `render_model_card` writes it for `repo_id`."""
    from huggingface_hub.repocard_data import eval_results_to_model_index

    return eval_results_to_model_index(model_name, _eval_results(results, repo_id))


def _results_table(results: list[EvaluationResult]) -> dict[str, Any]:
    """Columns (only metrics some result has) and rows of the evaluation table."""
    reported = [row for row in REPORTED_METRICS if any(row[0] in result.metrics for result in results)]
    columns = [(key, title, scale) for key, _, title, scale in reported]
    rows = [{"result": r, "cells": [_metric_cell(r, key, scale) for key, _, scale in columns]} for r in results]
    return {"titles": [title for _, title, _ in columns], "rows": rows}


def _metric_cell(result: EvaluationResult, key: str, scale: float) -> str:
    if key not in result.metrics:
        return "–"
    return f"{result.metrics[key] * scale:.2f}" if key == "eer" else f"{result.metrics[key] * scale:.4f}"


def _evaluation_file_descriptions(model_dir: Path, results: list[EvaluationResult]) -> dict[str, str]:
    """Descriptions of the result files that live inside the model folder (copied there by `write_model_card`)."""
    descriptions = {}
    for result in results:
        if result.source_file is None:
            continue
        path = Path(result.source_file).resolve()
        if path.is_relative_to(model_dir.resolve()):
            relative = path.relative_to(model_dir.resolve()).as_posix()
            descriptions[relative] = (
                f"evaluation output read by this card: {result.dataset_name}, {result.dataset_split} split, "
                f"{result.protocol} protocol"
            )
    return descriptions


def _per_group_tables(results: list[EvaluationResult]) -> list[dict[str, Any]]:
    tables = []
    for result in results:
        for column, groups in (result.per_group or {}).items():
            rows = [(value, metrics["n_trials"], 100.0 * metrics["eer"], _interval_cell(metrics.get("eer_ci")))
                    for value, metrics in sorted(groups.items())]
            tables.append({"result": result, "column": column, "rows": rows})
    return tables


def _interval_cell(interval: list[float] | None) -> str:
    return "–" if interval is None else f"{100 * interval[0]:.2f}–{100 * interval[1]:.2f}"


def render_model_card(model_dir: str | os.PathLike, spec: ModelCardSpec) -> ModelCard:
    """Renders the card of the model saved in `model_dir` (which must already hold every file to publish); a
    cross-validation record in the folder adds the "How it generalises" section.

    Raises `ValueError` when the rendered metadata would be invalid, a file in the folder has no description or the
    record is invalid.
    """
    from .templating import render_body

    model_dir = Path(model_dir)
    config = read_config(model_dir)
    num_labels = len(config.get("id2label") or ID2LABEL[2])
    files = describe_model_files(model_dir, config, {**_evaluation_file_descriptions(model_dir, spec.results),
                                                     **spec.file_descriptions})
    files.setdefault(CARD_FILE, "this model card")
    unexplained = [path for path in list_files(model_dir) if path not in files]
    if unexplained:
        raise ValueError(f"no description for {', '.join(unexplained)}: pass them in spec.file_descriptions")
    card_data = ModelCardData(
        base_model=spec.base_model,
        datasets=spec.datasets,
        language=spec.language,
        library_name="transformers",
        license=spec.license,
        license_name=spec.license_name,
        license_link=spec.license_link,
        metrics=[metric for key, metric, _, _ in REPORTED_METRICS if any(key in r.metrics for r in spec.results)],
        model_name=spec.repo_id.split("/")[-1],
        pipeline_tag=TASK,
        tags=_tags(config, spec),
        eval_results=_eval_results(spec.results, spec.repo_id),
    )
    body = render_body(
        "model_card.md",
        spec=spec,
        config=config,
        arch=describe_architecture(Nes2NetConfig.from_dict(config)),
        num_labels=num_labels,
        id2label={int(index): label for index, label in (config.get("id2label") or {}).items()},
        calibration_scale=config.get("calibration_scale", 1.0),
        calibration_offset=config.get("calibration_offset", 0.0),
        training_data=spec.training_data or config.get("training_data"),
        headline=spec.results[0],
        table=_results_table(spec.results),
        per_group=_per_group_tables(spec.results),
        robustness=[{"result": r, "table": MarkdownText(robustness_table(r))} for r in spec.results if r.conditions],
        protocols=sorted({result.protocol for result in spec.results}),
        calibration=[r for r in spec.results if "cllr" in r.metrics or "act_dcf" in r.metrics],
        score_descriptions=SCORE_DESCRIPTIONS,
        files=files,
        results_in_repo=any(path.startswith(f"{EVALUATION_DIR}/") for path in files),
        eer_range=(min(r.metrics["eer"] for r in spec.results), max(r.metrics["eer"] for r in spec.results)),
        generalisation=load_generalisation_record(model_dir),
        generalisation_file=GENERALISATION_FILE,
        paper_title=PAPER_TITLE,
        paper_arxiv=PAPER_ARXIV,
    )
    card = ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")
    problems = model_card_problems(card, require_base_model=spec.kind == "converted")
    if problems:
        raise ValueError("the rendered model card is invalid: " + "; ".join(problems))
    return card


def _result_file_name(result: EvaluationResult) -> str:
    parts = [result.dataset_id.replace("/", "--"), result.dataset_config, result.dataset_split, result.protocol]
    return "_".join(part for part in parts if part) + ".json"


def write_model_card(model_dir: str | os.PathLike, spec: ModelCardSpec, copy_results: bool = True) -> Path:
    """Renders the card into `model_dir/README.md` (atomically).

    With `copy_results`, the evaluation outputs are first copied to `model_dir/evaluation/`, so the published
    repository carries the files its numbers come from; the card then reads them from there. An invalid card
    leaves the folder untouched.
    """
    model_dir = Path(model_dir)
    if copy_results:
        render_model_card(model_dir, spec)  # refuses invalid metadata before anything is copied into the folder
        copied = []
        for result in spec.results:
            if result.source_file is None:
                raise ValueError(f"result for {result.dataset_id} was not read from a file; cannot copy it")
            target = model_dir / EVALUATION_DIR / _result_file_name(result)
            target.parent.mkdir(exist_ok=True)
            if Path(result.source_file).resolve() != target.resolve():
                shutil.copyfile(result.source_file, target)
            copied.append(load_result(target))
        spec = ModelCardSpec(**{**spec.__dict__, "results": copied})
    card = render_model_card(model_dir, spec)
    return write_text_atomic(model_dir / CARD_FILE, str(card))
