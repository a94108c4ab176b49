"""Imports flow one way: the layers drawn in docs/architecture.md, checked in the code.

A module may import its own layer and the layers below it, never one above. Two checks, because each misses what the
other sees: importing each package in a fresh interpreter shows what really loads (`sys.modules`), and reading every
import statement, function-local and `importlib.import_module("...")` ones included, shows the arrows that run only
when a function does (a lazy import is still an arrow).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE_ROOT = REPO_ROOT / "space"
# Bottom to top; a name is a package or a subpackage, and a module belongs to the longest name it starts with.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("modeling_nes2net",),  # the model, its config, audio decoding, the detection API, conversion, averaging, ONNX
    ("hub_cards",),  # the published-file layout, the results schema, the card renderer, push
    ("training",),  # corpora, training, evaluation, calibration and fusion
    ("nes2net", "modeling_nes2net.commands", "nes2net_space"),  # the CLI, its commands, the Space
)
SOURCE_FOLDERS = {"modeling_nes2net": REPO_ROOT, "hub_cards": REPO_ROOT, "training": REPO_ROOT, "nes2net": REPO_ROOT,
                  "nes2net_space": SPACE_ROOT}


def layer_of(module: str) -> int | None:
    """The index in `LAYERS` of `module` (a dotted name), None for a module of no layer (the standard library, a
    third-party package)."""
    matches = [(len(name), index) for index, names in enumerate(LAYERS) for name in names
               if module == name or module.startswith(name + ".")]
    return max(matches)[1] if matches else None


def module_files(package: str) -> dict[str, Path]:
    """`dotted name -> file` for every Python module of `package`."""
    root = SOURCE_FOLDERS[package]
    files = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imported_modules(module: str, path: Path) -> list[tuple[str, int]]:
    """`(dotted name, line)` of everything `path` (module `module`) imports, wherever the statement sits: relative
    imports resolved, `from package import name` counted as `package.name`, `importlib.import_module("x")` as `x`."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                anchor = parts[: len(parts) - node.level + is_package]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
        elif isinstance(node, ast.Call) and _called_name(node) == "import_module" and node.args:
            if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append((node.args[0].value, node.lineno))
    return found


def _called_name(call: ast.Call) -> str | None:
    """`f` for `f(...)` and `module.f(...)`."""
    return getattr(call.func, "attr", getattr(call.func, "id", None))


def upward_imports(package: str) -> list[str]:
    """`file:line: importer -> imported` for every import in `package` that reaches a layer above the importer's."""
    problems = []
    for module, path in module_files(package).items():
        for imported, line in imported_modules(module, path):
            target = layer_of(imported)
            if target is not None and target > layer_of(module):
                problems.append(f"{path.relative_to(REPO_ROOT)}:{line}: {module} -> {imported}")
    return problems


@pytest.mark.parametrize("package", list(SOURCE_FOLDERS))
def test_no_import_statement_reaches_a_higher_layer(package):
    assert upward_imports(package) == []


def test_the_check_sees_lazy_relative_and_string_imports(tmp_path, monkeypatch):
    """The reader itself: each kind of arrow a lower layer could hide is reported."""
    folder = tmp_path / "modeling_nes2net"
    folder.mkdir()
    (folder / "__init__.py").write_text("from .commands import detect\n")
    (folder / "lazy.py").write_text("def card():\n    from hub_cards.folder_cards import render_average_card\n")
    (folder / "by_name.py").write_text("import importlib\nimportlib.import_module('training.evaluate')\n")
    (folder / "fine.py").write_text("from . import audio\nimport torch\n")
    monkeypatch.setitem(SOURCE_FOLDERS, "modeling_nes2net", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "REPO_ROOT", tmp_path)
    assert upward_imports("modeling_nes2net") == [
        "modeling_nes2net/__init__.py:1: modeling_nes2net -> modeling_nes2net.commands.detect",
        "modeling_nes2net/by_name.py:2: modeling_nes2net.by_name -> training.evaluate",
        "modeling_nes2net/lazy.py:2: modeling_nes2net.lazy -> hub_cards.folder_cards.render_average_card",
    ]


def import_cycles() -> list[list[str]]:
    """The modules of all layers that reach themselves through imports (every statement counted, `TYPE_CHECKING`
    and function-local ones included), one sorted list per cycle (strongly connected component)."""
    files = {name: path for package in SOURCE_FOLDERS for name, path in module_files(package).items()}
    graph = {}
    for module, path in files.items():
        targets = set()
        for imported, _ in imported_modules(module, path):
            parts = imported.split(".")
            known = next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in files), None)
            if known not in (None, module):
                targets.add(known)
        graph[module] = targets
    cycles = []
    for module in graph:  # a module is on a cycle with each module that both reaches it and is reached by it
        reached = _reachable(graph, module)
        if module in reached:
            cycle = sorted(other for other in reached if module in _reachable(graph, other))
            if cycle not in cycles:
                cycles.append(cycle)
    return cycles


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, pending = set(), list(graph[start])
    while pending:
        module = pending.pop()
        if module not in seen:
            seen.add(module)
            pending += graph[module]
    return seen


def test_no_module_reaches_itself_through_its_imports():
    assert import_cycles() == []


@pytest.mark.slow
@pytest.mark.parametrize("package", ["modeling_nes2net", "hub_cards", "training"])
def test_importing_a_package_loads_nothing_from_a_higher_layer(package):
    """Every module of `package` (the application subpackage `modeling_nes2net.commands` aside) imported in a fresh
    interpreter: no module of a higher layer may appear in `sys.modules`."""
    own_layer = layer_of(package)
    modules = [name for name in module_files(package) if layer_of(name) == own_layer]
    code = ("import importlib, json, sys\n"
            f"for name in {modules!r}:\n    importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = json.loads(run.stdout.splitlines()[-1])
    assert [name for name in loaded if (layer_of(name) or 0) > own_layer] == []

