"""README.md of model folders before publishing: a converted checkpoint, an average of folders, the final model of a
training run (with its calibration and the recipe's test results), and an ONNX export.

Rendered by the one card renderer (`hub_cards.templating`) from `templates/converted_folder.md`,
`templates/averaged_folder.md`, `templates/trained_folder.md` and `templates/onnx_folder.md`. The published card,
with the full evaluation results, is `hub_cards.model_card`'s and replaces the first three.
"""

from __future__ import annotations

from collections.abc import Sequence

from huggingface_hub import ModelCardData

from modeling_nes2net.configuration_nes2net import ID2LABEL, Nes2NetConfig
from modeling_nes2net.convert import ConversionResult
from modeling_nes2net.description import describe_architecture
from modeling_nes2net.folder import remote_code_files
from modeling_nes2net.onnx_export import PRECISIONS, ExportReport

from .metadata import TASK
from .model_card import PAPER_ARXIV, PAPER_TITLE
from .published_files import (
    CARD_FILE,
    CODE_FILE_DESCRIPTION,
    CONFIG_FILE,
    FEATURE_EXTRACTOR_FILE,
    MODEL_FILE_DESCRIPTIONS,
)
from .results import EvaluationResult
from .templating import render_body

FOLDER_TAGS = ["anti-spoofing", "audio-deepfake-detection", "nes2net", "custom_code"]
ONNX_FOLDER_TAGS = ["anti-spoofing", "audio-deepfake-detection", "nes2net", "onnx"]


def _front_matter(base_model: str | None = None, library_name: str = "transformers",
                  tags: Sequence[str] = FOLDER_TAGS) -> str:
    data = ModelCardData(library_name=library_name, pipeline_tag=TASK, base_model=base_model, tags=list(tags))
    return f"---\n{data.to_yaml()}\n---\n"


def render_conversion_card(result: ConversionResult) -> str:
    """The card of a freshly converted folder: provenance (the checkpoint's file name and sha256, the preset),
    architecture from the config, use, the folder's files and what the conversion left out."""
    files = {name: MODEL_FILE_DESCRIPTIONS[name] for name in (CONFIG_FILE, "model.safetensors", FEATURE_EXTRACTOR_FILE)}
    files.update({name: CODE_FILE_DESCRIPTION for name in remote_code_files()})
    files[CARD_FILE] = MODEL_FILE_DESCRIPTIONS[CARD_FILE]
    config = result.config.to_dict()
    arch = describe_architecture(result.config)
    body = render_body(
        "converted_folder.md", config=config, arch=arch, frontend_name=arch.frontend.split(" (")[0],
        num_labels=len(config.get("id2label") or ID2LABEL[2]), repo="<this folder or repository>",
        checkpoint=result.checkpoint, sha256=result.sha256, preset=result.preset, converted=result.converted,
        ignored=list(result.ignored), files=files, paper_title=PAPER_TITLE, paper_arxiv=PAPER_ARXIV,
    )
    return _front_matter(result.base_model) + body


def render_average_card(folder_names: Sequence[str]) -> str:
    """The card of a folder averaged from `folder_names` by `nes2net average`."""
    return _front_matter() + render_body("averaged_folder.md", folders=list(folder_names))


def render_training_card(
    epoch_names: Sequence[str],
    calibration: dict[str, float] | None,
    calibration_note: str,
    results: Sequence[EvaluationResult],
    statistics_head: bool = False,
) -> str:
    """The card of `nes2net train`'s final folder: the averaged `epoch_names`, the dev calibration (`{"trials",
    "scale", "offset"}`, or None with `calibration_note` saying why), whether a statistics head was fused in after it
    (`training.statistics_head`) and the recipe's test `results`."""
    body = render_body("trained_folder.md", epochs=list(epoch_names), calibration=calibration,
                       calibration_note=calibration_note, statistics_head=statistics_head, results=list(results))
    return _front_matter() + body


def render_onnx_card(config: Nes2NetConfig, report: ExportReport) -> str:
    """The README of a folder written by `nes2net export onnx`: what the graph computes, its parity with PyTorch
    (`report`) and how to run it with onnxruntime, numpy and soundfile only."""
    rows = [{"file": report.files[variant], "precision": PRECISIONS[variant],
             "difference": f"{report.max_log_odds_difference[variant]:.1e}"} for variant in report.files]
    lengths = ", ".join(f"{length / config.sampling_rate:.2f} s" for length in report.parity_lengths)
    body = render_body("onnx_folder.md", report=report, config=config, arch=describe_architecture(config), rows=rows,
                       lengths=lengths)
    return _front_matter(library_name="onnx", tags=ONNX_FOLDER_TAGS) + body
