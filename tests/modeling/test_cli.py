"""The `nes2net` dispatcher: every command resolves to a module with `add_arguments` and `run`."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from modeling_nes2net.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_a_parser_and_a_runner(command):
    module = importlib.import_module(COMMANDS[command][0])
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    assert callable(module.run)
    assert parser.format_help()


def test_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "modeling_nes2net.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert all(command in result.stdout for command in COMMANDS)


def test_an_unknown_command_is_refused():
    with pytest.raises(SystemExit) as exit_info:
        main(["bake"])
    assert exit_info.value.code == 2
