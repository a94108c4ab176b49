"""Render a card into a model or dataset folder from files: a spec YAML, the evaluation outputs, build_info.json.

    python -m hub_cards.render model MODEL_DIR --spec release.yaml --results eval/*.json [--measure-efficiency]
    python -m hub_cards.render dataset DATASET_DIR --spec dataset.yaml

The model spec YAML holds the fields of `ModelCardSpec` except `results` (e.g. `repo_id`, `kind`, `license`,
`datasets`, `base_model`, `recipe`, `source`); the dataset spec YAML the fields of `DatasetCardSpec`.
`--measure-efficiency` counts the back-end's parameters and MACs (201 frames) and the model's parameters with
`modeling_nes2net.complexity` instead of reading them from the spec.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from .results import load_results

from .dataset_card import DatasetCardSpec, write_dataset_card
from .model_card import Efficiency, ModelCardSpec, write_model_card

logger = logging.getLogger(__name__)


def read_spec(path: str | os.PathLike) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a card spec must be a YAML mapping")
    return data


def measure_efficiency(model_dir: str | os.PathLike, frames: int = 201) -> Efficiency:
    """Back-end parameters and MACs for `frames` frames, and the whole model's parameter count (built on the
    meta device, so a full-size front-end costs no memory)."""
    import torch

    from modeling_nes2net import Nes2NetConfig, Nes2NetForAudioClassification
    from modeling_nes2net.complexity import backend_complexity, count_parameters

    config = Nes2NetConfig.from_pretrained(model_dir)
    backend = backend_complexity(config, frames=frames)
    with torch.device("meta"):
        total = count_parameters(Nes2NetForAudioClassification(config))
    return Efficiency(backend_parameters=backend["parameters"], backend_macs=backend["macs"], frames=frames,
                      total_parameters=total)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=("model", "dataset"), help="which card to render")
    parser.add_argument("folder", type=Path, help="model folder or built dataset folder (README.md is written there)")
    parser.add_argument("--spec", type=Path, required=True, help="YAML with what only the publisher knows")
    parser.add_argument("--results", type=Path, nargs="*", default=[], help="evaluation output JSON files (model)")
    parser.add_argument("--measure-efficiency", action="store_true",
                        help="count back-end parameters and MACs with modeling_nes2net.complexity (model)")
    parser.add_argument("--no-copy-results", action="store_true",
                        help="do not copy the result files into FOLDER/evaluation/ (model)")


def run(args: argparse.Namespace) -> int:
    try:
        spec = read_spec(args.spec)
        if args.kind == "dataset":
            path = write_dataset_card(args.folder, DatasetCardSpec(**spec))
        else:
            if args.measure_efficiency:
                spec["efficiency"] = None
            model_spec = ModelCardSpec.from_dict(spec, results=load_results(args.results))
            if args.measure_efficiency:
                model_spec = ModelCardSpec(**{**model_spec.__dict__, "efficiency": measure_efficiency(args.folder)})
            path = write_model_card(args.folder, model_spec, copy_results=not args.no_copy_results)
    except (ValueError, TypeError, OSError) as error:
        logger.error("%s", error)
        return 1
    logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m hub_cards.render", description=__doc__.splitlines()[0])
    add_arguments(_parser)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(run(_parser.parse_args()))
