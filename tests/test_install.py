"""`pip install .` with no extras, into a fresh virtual environment, on its own (no constraints file): the model
imports without the audio and plotting libraries, `pipeline` scores a file, and `nes2net detect` runs.

torch is installed first as the Makefile does (`torch==<this torch's release>`: pip takes the wheel on disk when
`find-links` offers one); everything else comes from the ranges in setup.cfg, through pip's configured index and
cache (a local mirror works offline). The repository's files are copied first, so nothing is built inside the
checkout; `--no-compile` leaves byte-compiling to the imports, which touch a fraction of torch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest
import soundfile as sf
import torch
from transformers import pipeline

from modeling_nes2net.examples import speech_like
from modeling_nes2net.model_loading import DEFAULT_MODEL_DIR

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]
# Installed only with an extra; none may come with the base install.
EXTRA_ONLY = ("matplotlib", "datasets", "accelerate", "gradio", "scipy", "torchcodec", "evaluate")


def _copy_checkout(target: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO_ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The `bin/` folder of a fresh venv holding `pip install .` (no extras)."""
    root = tmp_path_factory.mktemp("install")
    source = _copy_checkout(root / "src")
    venv.create(root / "venv", with_pip=True)
    bin_dir = root / "venv" / "bin"
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PIP_CONSTRAINT")}
    for requirement in (f"torch=={torch.__version__.split('+')[0]}", str(source)):
        result = subprocess.run([bin_dir / "python", "-m", "pip", "install", "-q", "--no-compile", "--prefer-binary",
                                 requirement],
                                env=environment, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
    return bin_dir


def _run(bin_dir: Path, *command: str, cwd: Path) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([bin_dir / command[0], *command[1:]], cwd=cwd, env={**environment, "HF_HUB_OFFLINE": "1"},
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    sf.write(path, speech_like(1.5), 16_000)
    return path


def test_the_model_imports_without_the_extras(installed, tmp_path):
    """No extra is installed, and importing the model leaves the package's audio reading and plotting unimported
    (transformers itself may import soundfile when it is there)."""
    script = (
        "import importlib.util, json, sys\n"
        "import modeling_nes2net\n"
        "own = sorted(name for name in sys.modules if name.startswith('modeling_nes2net.'))\n"
        f"extras = [name for name in {EXTRA_ONLY!r} if importlib.util.find_spec(name)]\n"
        "print(json.dumps({'file': modeling_nes2net.__file__, 'own': own, 'extras': extras}))\n"
    )
    result = _run(installed, "python", "-c", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert Path(report["file"]).is_relative_to(installed.parent), report["file"]  # the venv's copy, not the checkout
    assert report["extras"] == []
    assert "modeling_nes2net.modeling_nes2net" in report["own"]
    assert not {"modeling_nes2net.audio", "modeling_nes2net.detection", "modeling_nes2net.plotting"} & set(report["own"])


def test_pipeline_scores_a_file_as_the_checkout_does(installed, clip, tmp_path):
    script = (
        "import json, sys\n"
        "import modeling_nes2net\n"
        "from modeling_nes2net.model_loading import DEFAULT_MODEL_DIR\n"
        "from transformers import pipeline\n"
        "scores = pipeline('audio-classification', model=str(DEFAULT_MODEL_DIR), device='cpu')(sys.argv[1])\n"
        "print(json.dumps({entry['label']: entry['score'] for entry in scores}))\n"
    )
    result = _run(installed, "python", "-c", script, str(clip), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    scores = json.loads(result.stdout.splitlines()[-1])
    expected = {entry["label"]: entry["score"] for entry in pipeline("audio-classification",
                                                                     model=str(DEFAULT_MODEL_DIR), device="cpu")(str(clip))}
    assert set(scores) == set(expected) == {"spoof", "bonafide"}
    assert scores["bonafide"] == pytest.approx(expected["bonafide"], abs=1e-5)


def test_detect_runs_and_commands_name_their_extra(installed, clip, tmp_path):
    detected = _run(installed, "nes2net", "detect", str(clip), "--format", "json", cwd=tmp_path)
    assert detected.returncode == 0, detected.stderr[-3000:]
    (row,) = json.loads(detected.stdout)
    assert row["label"] in ("spoof", "bonafide") and 0.0 <= row["bonafide_probability"] <= 1.0

    plotted = _run(installed, "nes2net", "detect", str(clip), "--plot", str(tmp_path / "t.png"), cwd=tmp_path)
    assert plotted.returncode == 2 and "pip install 'nes2net[plot]'" in plotted.stderr
    assert not (tmp_path / "t.png").exists()
    data = _run(installed, "nes2net", "data", "--help", cwd=tmp_path)
    assert data.returncode != 0 and "pip install 'nes2net[train]'" in data.stderr
    version = _run(installed, "nes2net", "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("nes2net ")
