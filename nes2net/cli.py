"""The `nes2net` command line: one sub-command per module, each a thin layer over library functions.

Every command module exposes `add_arguments(parser)` and `run(args) -> int` and is imported only when
its command is used, so `nes2net detect` never imports the training stack, and `nes2net --help` and
`nes2net --version` import nothing heavier than argparse (no torch, no transformers).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__

# command -> (module, help, the extra its dependencies come with; None: the base install)
COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "demo": ("modeling_nes2net.commands.demo", "score example recordings with the embedded default model", "plot"),
    "detect": ("modeling_nes2net.commands.detect", "score audio files or folders for spoofing", None),
    "convert": ("modeling_nes2net.commands.convert", "convert an original Nes2Net checkpoint to a model folder", None),
    "average": ("modeling_nes2net.commands.average", "average the weights of several checkpoints", None),
    "export": ("modeling_nes2net.commands.export", "export a model to ONNX, checked against PyTorch on real audio",
               "onnx"),
    "data": ("training.data.cli", "build HF Datasets versions of anti-spoofing corpora", "train"),
    "train": ("training.train", "train a Nes2Net model with Accelerate from a YAML recipe", "train"),
    "evaluate": ("training.evaluate", "score a dataset split and compute EER / DCF / t-DCF", "train"),
    "fuse": ("training.fusion", "fuse several systems' score files by logistic regression (CLLR before / after)",
             "train"),
    "calibrate": ("training.calibrate", "fit a model's score calibration on a dev score file of its log-odds",
                  "train"),
    "card": ("hub_cards.render", "render a model or dataset card from evaluation outputs and a spec", "hub"),
    "push": ("hub_cards.push", "validate a model, dataset or Space folder and upload it to the Hub", "hub"),
    "space": ("hub_cards.space", "assemble a Gradio Space folder that deploys as built (app, wheel, model)", "hub"),
}


def _command_module(command: str):
    module_name, _, extra = COMMANDS[command]
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        if error.name is None or error.name.split(".")[0] in ("modeling_nes2net", "training", "hub_cards", "nes2net"):
            raise
        raise SystemExit(
            f"nes2net {command}: needs {error.name}, which is not installed: pip install 'nes2net[{extra or 'all'}]'"
        ) from error


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="nes2net", description="Nes2Net speech anti-spoofing tools.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (_, help_text, _) in COMMANDS.items():
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            _command_module(name).add_arguments(subparser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    return int(_command_module(args.command).run(args) or 0)

