"""The `nes2net` dispatcher: every command resolves to a module with `add_arguments` and `run`."""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys

import pytest

import nes2net
from nes2net.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_a_parser_and_a_runner(command):
    module = importlib.import_module(COMMANDS[command][0])
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    assert callable(module.run)
    assert parser.format_help()


def test_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "nes2net", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert all(command in result.stdout for command in COMMANDS)


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_and_version_import_neither_torch_nor_transformers(option):
    script = (
        "import sys\n"
        "from nes2net.cli import main\n"
        f"try:\n    main([{option!r}])\nexcept SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        "heavy = sorted({name.split('.')[0] for name in sys.modules} & {'torch', 'transformers', 'numpy', 'modeling_nes2net'})\n"
        "print('imported:', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "imported: []"


def test_version_is_the_distribution_version():
    result = subprocess.run([sys.executable, "-m", "nes2net", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.strip() == f"nes2net {nes2net.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", nes2net.__version__)


def test_an_unknown_command_is_refused():
    with pytest.raises(SystemExit) as exit_info:
        main(["bake"])
    assert exit_info.value.code == 2
