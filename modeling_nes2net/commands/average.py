"""`nes2net average CKPT... OUT`: the element-wise mean of checkpoints of one architecture (a thin layer over
`modeling_nes2net.averaging.average_checkpoints`, with the README.md of `hub_cards.folder_cards.render_average_card`).

The authors' `.pth` files give a `.pth` state dict; converted model folders give a folder. Exit status 0 on success,
1 when the checkpoints cannot be averaged (nothing is written).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hub_cards.folder_cards import render_average_card

from ..averaging import AveragingError, average_checkpoints

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="CKPT",
                        help="two or more original .pth checkpoints, or two or more model folders")
    parser.add_argument("output", metavar="OUT", help="the averaged .pth file or model folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def run(args: argparse.Namespace) -> int:
    try:
        card = render_average_card([Path(path).name for path in args.inputs])
        output = average_checkpoints(args.inputs, args.output, overwrite=args.overwrite, model_card=card)
    except (AveragingError, FileExistsError) as error:
        logger.error("%s", error)
        return 1
    print(f"wrote {output}: the average of {len(args.inputs)} checkpoints")
    return 0
