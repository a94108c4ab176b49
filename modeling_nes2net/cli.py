"""The `nes2net` command line: one sub-command per module, each a thin layer over library functions.

Every command module exposes `add_arguments(parser)` and `run(args) -> int` and is imported only when
its command is used, so `nes2net detect` never imports the training stack.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("modeling_nes2net.commands.demo", "score example recordings with the embedded default model"),
    "detect": ("modeling_nes2net.commands.detect", "score audio files or folders for spoofing"),
    "convert": ("modeling_nes2net.commands.convert", "convert an original Nes2Net checkpoint to a model folder"),
    "average": ("modeling_nes2net.commands.average", "average the weights of several checkpoints"),
    "export": ("modeling_nes2net.commands.export", "export a model to ONNX, checked against PyTorch on real audio"),
    "data": ("training.data.cli", "build HF Datasets versions of anti-spoofing corpora"),
    "train": ("training.train", "train a Nes2Net model with Accelerate from a YAML recipe"),
    "evaluate": ("training.evaluate", "score a dataset split and compute EER / DCF / t-DCF"),
    "fuse": ("training.fusion", "fuse several systems' score files by logistic regression (CLLR before / after)"),
    "card": ("hub_cards.render", "render a model or dataset card from evaluation outputs and a spec"),
    "push": ("hub_cards.push", "validate a model, dataset or Space folder and upload it to the Hub"),
    "space": ("hub_cards.space", "assemble a Gradio Space folder that deploys as built (app, wheel, model)"),
}


def _command_module(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise SystemExit(
            f"nes2net: this command needs an optional dependency that is not installed ({error}). "
            "Install the extras with: pip install 'nes2net[train,space]'"
        ) from error


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="nes2net", description="Nes2Net speech anti-spoofing tools.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        subparser.set_defaults(module_name=module_name)
        if name == wanted:
            _command_module(module_name).add_arguments(subparser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    return int(_command_module(args.module_name).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
