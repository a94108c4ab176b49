"""`nes2net convert ORIGINAL OUT_DIR [--preset NAME]`: the authors' checkpoint (a local file or a Hub file,
`hf://OWNER/REPO/PATH`) -> a Hub-ready model folder (a thin layer over `modeling_nes2net.convert.convert_checkpoint`,
with the README.md of `hub_cards.folder_cards.render_conversion_card`).

Exit status 0 on success, 1 when the checkpoint cannot be converted exactly (nothing is written).
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from hub_cards.folder_cards import render_conversion_card

from ..convert import ConversionError, convert_checkpoint
from ..description import describe_architecture
from ..presets import PRESETS

logger = logging.getLogger(__name__)


def parse_assignment(text: str) -> tuple[str, Any]:
    """`"name=value"` -> `("name", value)`, the value read as JSON when it is JSON (`4`, `[5, 2]`, `true`)."""
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="ORIGINAL",
                        help="the authors' .pth / .pt checkpoint: a local file or a Hub file, hf://OWNER/REPO/PATH "
                             "(e.g. hf://nielsr/nes2net-checkpoints/<folder>/<file>.pt)")
    parser.add_argument("output_dir", metavar="OUT_DIR", help="folder to write (must not exist or be empty)")
    parser.add_argument("--preset", choices=list(PRESETS),
                        help="the release the checkpoint belongs to (see docs/checkpoints.md); default: the only "
                             "preset its tensors fit (the 1- or 2-logit head is always read from them)")
    parser.add_argument("--revision", help="the Hub revision of a Hub file (default: main)")
    parser.add_argument("--dilation", type=int, default=None,
                        help="dilation of the inner convolutions, stored in no tensor (default: the preset's)")
    parser.add_argument("--training-data", default=None, help="free-text description of the training data")
    parser.add_argument("--set", dest="fields", action="append", type=parse_assignment, default=[],
                        metavar="FIELD=VALUE", help="override any Nes2NetConfig field, e.g. --set se_min_channels=2")
    parser.add_argument("--frontend-set", dest="frontend_fields", action="append", type=parse_assignment, default=[],
                        metavar="FIELD=VALUE",
                        help="override a front-end config field no tensor stores, "
                             "e.g. --frontend-set num_attention_heads=16")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = dict(args.fields)
    if args.dilation is not None:
        overrides["dilation"] = args.dilation
    if args.training_data is not None:
        overrides["training_data"] = args.training_data
    if args.frontend_fields:
        overrides["frontend_config"] = dict(args.frontend_fields)
    try:
        result = convert_checkpoint(args.checkpoint, args.output_dir, args.preset, overwrite=args.overwrite,
                                    revision=args.revision, model_card=render_conversion_card, **overrides)
    except (ConversionError, FileExistsError) as error:
        logger.error("%s", error)
        return 1
    config, words = result.config, describe_architecture(result.config)
    print(f"wrote {result.output_dir} (preset {result.preset}): {result.converted} tensors; {words} "
          f"({words.backend_details}); {config.num_labels} logit(s), normalize_waveform={config.normalize_waveform}")
    print(f"source sha256 {result.sha256}")
    if result.ignored:
        print(f"ignored {len(result.ignored)} training-only tensors: {', '.join(result.ignored)}")
    else:
        print("ignored no tensor")
    return 0
