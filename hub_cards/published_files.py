"""What belongs in a published model or dataset folder, and what each file is for.

The model card lists every file of its folder with the description given here, and `nes2net push` refuses a
folder holding a file the card does not explain.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path
from typing import Any

from .templating import MarkdownText

CARD_FILE = "README.md"
CONFIG_FILE = "config.json"
FEATURE_EXTRACTOR_FILE = "preprocessor_config.json"
BUILD_INFO_FILE = "build_info.json"
EVALUATION_DIR = "evaluation"
GENERALISATION_FILE = f"{EVALUATION_DIR}/generalisation.json"
"""The cross-validation record of a model folder (`hub_cards.generalisation`)."""
# Pickle-based or framework-specific weight formats: loading them can execute code, so they are never published.
FORBIDDEN_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
WEIGHT_SHARD = re.compile(r"^model-\d{5}-of-\d{5}\.safetensors$")
MODEL_FILE_DESCRIPTIONS = {
    CARD_FILE: "this model card",
    CONFIG_FILE: MarkdownText(
        "model configuration (`Nes2NetConfig`); its `auto_map` points `trust_remote_code` at the code"
    ),
    FEATURE_EXTRACTOR_FILE: "feature extractor settings: raw mono waveform, no normalisation, attention mask",
    "model.safetensors": "weights (safetensors)",
    "model.safetensors.index.json": "index of the weight shards",
    GENERALISATION_FILE: "leave-one-family-out cross-validation record the model's recipe was chosen by, and the "
                         "model's EER on each test split (read by the \"How it generalises\" section)",
}
CODE_FILE_DESCRIPTION = MarkdownText("model code loaded with `trust_remote_code=True`")


def public_path(path: str | os.PathLike) -> str:
    """`path` as a published file may record it: an absolute path by its last part only (no folder of the machine
    it was made on), a relative one as it is."""
    return Path(path).name if Path(path).is_absolute() else str(path)


def list_files(folder: str | os.PathLike) -> list[str]:
    """All regular files under `folder` as sorted POSIX paths relative to it (hidden ones included); symbolic links
    are neither listed nor followed (`link_problems` reports them)."""
    folder = Path(folder)
    paths = (Path(root, name) for root, _, names in os.walk(folder) for name in names)
    return sorted(path.relative_to(folder).as_posix() for path in paths if path.is_file() and not path.is_symlink())


def link_problems(folder: str | os.PathLike) -> list[str]:
    """One line per symbolic link under `folder` (to a file or a folder, never entered): copying or publishing the
    folder would carry the link's target, any file of the machine, along."""
    folder = Path(folder)
    paths = (Path(root, name) for root, folders, names in os.walk(folder) for name in folders + names)
    return [f"{path.relative_to(folder).as_posix()}: a symbolic link (to {os.readlink(path)}); links are never "
            "copied or published: put the file itself in the folder, or remove the link"
            for path in sorted(paths) if path.is_symlink()]


def read_json_object(path: Path, missing: str | None = None) -> dict[str, Any]:
    """The JSON object in `path`, or a ValueError naming the file and the problem (`missing` replaces the message
    for an absent file)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ValueError(missing or f"{path} is missing") from error
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from error
    if not isinstance(value, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return value


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The folder's `config.json` as a dict."""
    return read_json_object(Path(folder) / CONFIG_FILE)


def auto_map_modules(config: dict[str, Any]) -> list[str]:
    """Python files named by `auto_map` (`"modeling_nes2net.Nes2NetForAudioClassification"` -> `modeling_nes2net.py`).

    References into another repository (`"owner/repo--module.Class"`) are returned as written, so the caller
    can report them: a published folder must carry its own code.
    """
    references = []
    for value in (config.get("auto_map") or {}).values():
        references += value if isinstance(value, list) else [value]
    modules = []
    for reference in references:
        if not isinstance(reference, str):
            continue
        module = reference if "--" in reference else reference.rsplit(".", 1)[0].replace(".", "/") + ".py"
        if module not in modules:
            modules.append(module)
    return modules


def relative_imports(source: str) -> list[str]:
    """Module files imported with `from .module import ...` in `source` (what `trust_remote_code` downloads too)."""
    modules = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [alias.name for alias in node.names]
            modules += [name.replace(".", "/") + ".py" for name in names]
    return modules


def remote_code_files(folder: str | os.PathLike, config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The code files `trust_remote_code` needs (from the `auto_map` of the config and of the feature extractor, then
    their relative imports, transitively), and the problems found on the way: references into other repositories,
    missing files."""
    folder = Path(folder)
    needed, problems = [], []
    pending = auto_map_modules(config)
    if (folder / FEATURE_EXTRACTOR_FILE).is_file():
        pending += auto_map_modules(read_json_object(folder / FEATURE_EXTRACTOR_FILE))
    while pending:
        module = pending.pop(0)
        if module in needed:
            continue
        if "--" in module:
            problems.append(f"auto_map points at code in another repository ({module}); ship the code in the folder")
            continue
        needed.append(module)
        path = folder / module
        if not path.is_file():
            problems.append(f"{module} is named by auto_map or imported by the remote code but is missing")
            continue
        try:
            pending += relative_imports(path.read_text(encoding="utf-8"))
        except SyntaxError as error:
            problems.append(f"{module} is not valid Python ({error.msg}, line {error.lineno})")
    return needed, problems


def describe_model_files(
    folder: str | os.PathLike, config: dict[str, Any], extra: dict[str, str] | None = None
) -> dict[str, str]:
    """`relative path -> one-line description` for every file of a model folder that can be explained.

    Files outside the standard layout are explained only by `extra`; the card lists exactly these files.
    """
    code_files, _ = remote_code_files(folder, config)
    descriptions = {}
    for path in list_files(folder):
        if path in MODEL_FILE_DESCRIPTIONS:
            descriptions[path] = MODEL_FILE_DESCRIPTIONS[path]
        elif WEIGHT_SHARD.match(path):
            descriptions[path] = "a shard of the weights (safetensors)"
        elif path in code_files:
            descriptions[path] = CODE_FILE_DESCRIPTION
        if extra and path in extra:
            descriptions[path] = extra[path]
    return descriptions
