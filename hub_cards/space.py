"""`nes2net space OUT [--model FOLDER_OR_HUB_ID]`: assemble a Gradio Space that deploys as built, from a checkout.

The folder holds the app (`app.py`, `nes2net_space/`, `packages.txt`), the Spaces README (front matter + text), a
wheel of this checkout and a `requirements.txt` that installs it (no index serves `nes2net`), and the models the
app offers (`models.txt`: a model folder copied under `models/`, or a Hub id). `space_folder_problems` checks such a
folder, and `nes2net push --space OUT OWNER/NAME` checks and uploads it.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from .published_files import CARD_FILE, CONFIG_FILE, link_problems, list_files

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE_SOURCE = REPO_ROOT / "space"
APP_FILES = ("app.py", "packages.txt", CARD_FILE)  # copied from space/, with the nes2net_space package
APP_PACKAGE = "nes2net_space"
MODELS_FILE = "models.txt"  # one model a line: a folder relative to the Space, or a Hub id
MODELS_DIR = "models"
REQUIREMENTS_FILE = "requirements.txt"
WHEEL_PATTERN = re.compile(r"^nes2net-[^-]+-py3-none-any\.whl$")
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)


class SpaceBuildError(RuntimeError):
    """The Space folder cannot be assembled (one line: why)."""


def build_wheel(output_dir: str | os.PathLike, source: str | os.PathLike = REPO_ROOT) -> Path:
    """Build the `nes2net` wheel of the checkout `source` into `output_dir` (no dependencies, no index); its path."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
               "-w", str(output_dir), str(source)]
    completed = subprocess.run(command, capture_output=True, text=True)
    wheels = [path for path in output_dir.iterdir() if WHEEL_PATTERN.match(path.name)]
    if completed.returncode != 0 or len(wheels) != 1:
        reason = (completed.stderr.strip().splitlines() or ["no wheel written"])[-1]
        raise SpaceBuildError(f"cannot build the nes2net wheel from {source}: {reason}")
    return wheels[0]


def build_space_folder(output: str | os.PathLike, model: str | None = None) -> Path:
    """Assemble a deployable Space in the new or empty folder `output` and return it.

    Args:
        output: where the Space is written.
        model: a model folder (copied into the Space) or a Hub id the app offers first; None: only the embedded
            default model the wheel carries.
    """
    output = Path(output)
    local = model is not None and Path(model).is_dir()
    links = link_problems(model) if local else []
    if links:
        raise SpaceBuildError(f"{model} cannot be copied into a Space: " + "; ".join(links))
    if local:
        _refuse_unloadable(model)
    if not (SPACE_SOURCE / "app.py").is_file():
        raise SpaceBuildError(f"no Space app at {SPACE_SOURCE}: build Spaces from a checkout of the repository")
    if output.exists() and any(output.iterdir()):
        raise SpaceBuildError(f"{output} is not empty: choose a new folder")
    output.mkdir(parents=True, exist_ok=True)
    for name in APP_FILES:
        shutil.copy2(SPACE_SOURCE / name, output / name)
    shutil.copytree(SPACE_SOURCE / APP_PACKAGE, output / APP_PACKAGE,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheel = build_wheel(output)
    (output / REQUIREMENTS_FILE).write_text(
        "# The Space installs the nes2net package from the wheel next to this file (built by `nes2net space`);\n"
        "# Gradio itself comes with the README's sdk_version.\n"
        f"./{wheel.name}\n",
        encoding="utf-8",
    )
    models = []
    if model is not None:
        folder = Path(model)
        if folder.is_dir():
            target = output / MODELS_DIR / folder.name
            shutil.copytree(folder, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
            models.append(target.relative_to(output).as_posix())
        else:
            models.append(model)
            _add_hub_model_to_card(output / CARD_FILE, model)
    (output / MODELS_FILE).write_text("".join(f"{line}\n" for line in models), encoding="utf-8")
    problems = space_folder_problems(output)
    if problems:
        raise SpaceBuildError(f"the assembled Space {output} is incomplete: " + "; ".join(problems))
    return output


def _refuse_unloadable(model: str) -> None:
    """Refuse a model folder the app could not load (NaN or missing weights, a config out of bounds): loaded here as
    the app loads it (`load_model`), so a Space is never assembled around a model it would refuse."""
    from modeling_nes2net.model_loading import ModelLoadError, load_model

    try:
        load_model(model)
    except ModelLoadError as error:
        raise SpaceBuildError(f"{error} (the Space would refuse it)") from None


def _add_hub_model_to_card(card: Path, model_id: str) -> None:
    """List `model_id` first under the front matter's `models:` (the Hub links the Space to it)."""
    text = card.read_text(encoding="utf-8")
    card.write_text(text.replace("\nmodels:\n", f"\nmodels:\n  - {model_id}\n", 1), encoding="utf-8")


def space_folder_problems(folder: str | os.PathLike) -> list[str]:
    """Everything that stops `folder` from deploying as a Gradio Space (empty when it would)."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    problems = link_problems(folder)
    if problems:
        return problems  # nothing in the folder is read through a link
    card = folder / CARD_FILE
    front = FRONT_MATTER.match(card.read_text(encoding="utf-8")) if card.is_file() else None
    if front is None:
        problems.append(f"{CARD_FILE} has no '---' front matter (the Space's settings)")
    else:
        settings = dict(line.split(":", 1) for line in front.group(1).splitlines() if ":" in line
                        and not line.startswith(" "))
        settings = {key.strip(): value.strip().strip('"') for key, value in settings.items()}
        if settings.get("sdk") != "gradio":
            problems.append(f"{CARD_FILE} front matter must say sdk: gradio")
        if not settings.get("sdk_version"):
            problems.append(f"{CARD_FILE} front matter must pin sdk_version (the Gradio the app was tested with)")
        app_file = settings.get("app_file", "app.py")
        if not (folder / app_file).is_file():
            problems.append(f"{CARD_FILE} names app_file {app_file}, which the folder does not hold")
    if not (folder / APP_PACKAGE / "__init__.py").is_file():
        problems.append(f"{APP_PACKAGE}/ (the app's own package) is missing")
    problems += _requirements_problems(folder)
    problems += _models_problems(folder)
    problems += [f"{path}: compiled or hidden file would be uploaded; remove it" for path in list_files(folder)
                 if path.endswith(".pyc") or any(part.startswith(".") for part in path.split("/"))]
    return problems


def _requirements_problems(folder: Path) -> list[str]:
    requirements = folder / REQUIREMENTS_FILE
    if not requirements.is_file():
        return [f"{REQUIREMENTS_FILE} is missing"]
    lines = [line.split("#")[0].strip() for line in requirements.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    problems = []
    wheels = [line for line in lines if line.endswith(".whl")]
    for line in lines:
        if re.match(r"^nes2net\s*(==|>=|~=|$)", line):
            problems.append(f"{REQUIREMENTS_FILE} asks an index for {line!r}, which no index serves: install the "
                            "wheel in the folder (./nes2net-...whl)")
    if not wheels:
        problems.append(f"{REQUIREMENTS_FILE} installs no nes2net wheel from the folder")
    for line in wheels:
        wheel = folder / line
        if not (line.startswith("./") and wheel.is_file()):
            problems.append(f"{REQUIREMENTS_FILE} names {line}, which is not a file in the folder")
            continue
        try:
            with zipfile.ZipFile(wheel) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            problems.append(f"{line} is not a wheel (not a zip archive)")
            continue
        if "modeling_nes2net/__init__.py" not in names or "modeling_nes2net/default_model/config.json" not in names:
            problems.append(f"{line} lacks the modeling_nes2net package or its embedded default model")
    return problems


def _models_problems(folder: Path) -> list[str]:
    listing = folder / MODELS_FILE
    if not listing.is_file():
        return [f"{MODELS_FILE} is missing (it may be empty: the embedded default model only)"]
    problems = []
    for line in filter(None, (line.strip() for line in listing.read_text(encoding="utf-8").splitlines())):
        local = folder / line
        if line.startswith(f"{MODELS_DIR}/"):
            if not (local / CONFIG_FILE).is_file() or not any(local.glob("*.safetensors")):
                problems.append(f"{MODELS_FILE} names {line}, which is not a model folder with config.json and "
                                "safetensors weights")
        elif not re.match(r"^[\w.-]+/[\w.-]+$", line):
            problems.append(f"{MODELS_FILE} line {line!r} is neither a folder under {MODELS_DIR}/ nor a Hub id "
                            "owner/name")
    return problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", type=Path, help="new folder to write the Space into")
    parser.add_argument("--model", default=None,
                        help="model folder (copied in) or Hub id the Space offers first (default: the embedded one)")


def run(args: argparse.Namespace) -> int:
    try:
        folder = build_space_folder(args.output, args.model)
    except SpaceBuildError as error:
        logger.error("%s", error)
        return 1
    files = list_files(folder)
    size = sum((folder / path).stat().st_size for path in files)
    print(f"Space assembled in {folder}: {len(files)} files, {size:,} bytes; "
          f"upload it with: nes2net push --space {folder} OWNER/NAME")
    return 0
