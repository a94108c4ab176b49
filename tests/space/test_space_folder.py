"""The Space deploys as built: `nes2net space` assembles a folder (app, Spaces README, a wheel of this checkout and
requirements that install it, the model), `nes2net push --space` checks it (and refuses the bare `space/` source),
and the folder installs offline into a fresh virtual environment, starts there and answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from nes2net_space.harness import start_space
from tests.space.space_fixtures import REPO_ROOT

from hub_cards.space import build_space_folder, space_folder_problems
from nes2net.cli import main
from modeling_nes2net.detection import Nes2NetDetector


@pytest.fixture(scope="module")
def space_folder(tmp_path_factory, space_model_dir) -> Path:
    return build_space_folder(tmp_path_factory.mktemp("built") / "space", model=space_model_dir)


def test_the_folder_holds_the_app_the_wheel_and_the_model(space_folder, space_model_dir):
    assert space_folder_problems(space_folder) == []
    (wheel,) = space_folder.glob("nes2net-*.whl")
    assert (space_folder / "requirements.txt").read_text().splitlines()[-1] == f"./{wheel.name}"
    assert (space_folder / "models.txt").read_text() == "models/tiny-random-test-model\n"
    assert (space_folder / "models/tiny-random-test-model/model.safetensors").read_bytes() == (
        Path(space_model_dir) / "model.safetensors").read_bytes()
    card = (space_folder / "README.md").read_text()
    assert card.startswith("---\n") and "sdk: gradio\n" in card and "app_file: app.py\n" in card
    assert (space_folder / "nes2net_space" / "live.py").is_file() and (space_folder / "app.py").is_file()


def test_push_space_checks_the_folder_and_refuses_the_bare_source(space_folder, tmp_path, capsys, caplog):
    assert main(["push", "--space", str(space_folder), "nes2net-test/space", "--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert "would upload to space repository nes2net-test/space" in listing
    assert "models/tiny-random-test-model/config.json" in listing and ".whl" in listing
    assert main(["push", "--space", str(REPO_ROOT / "space"), "nes2net-test/space", "--dry-run"]) == 1
    assert "requirements.txt is missing" in caplog.text and "models.txt is missing" in caplog.text
    pinned = tmp_path / "pinned"
    build_space_folder(pinned, model="nes2net-test/some-model")
    (pinned / "requirements.txt").write_text("nes2net==0.1.0\n")
    problems = space_folder_problems(pinned)
    assert any("asks an index for 'nes2net==0.1.0', which no index serves" in problem for problem in problems)
    assert "  - nes2net-test/some-model\n" in (pinned / "README.md").read_text()  # a Hub model is linked


def test_a_model_folder_with_a_symbolic_link_is_not_copied_into_a_space(space_model_dir, tmp_path, caplog):
    model = tmp_path / "model"
    shutil.copytree(space_model_dir, model)
    secret = tmp_path / "deploy.key"
    secret.write_text("not for the Hub\n")
    (model / "notes.txt").symlink_to(secret)
    assert main(["space", str(tmp_path / "space"), "--model", str(model)]) == 1
    assert (f"{model} cannot be copied into a Space: notes.txt: a symbolic link (to {secret}); links are never copied "
            "or published") in caplog.text
    copies = [path for path in tmp_path.rglob("*") if path.is_file() and not path.is_symlink() and path != secret
              and path.read_bytes() == secret.read_bytes()]
    assert copies == []


def fresh_venv_with_shared_dependencies(folder: Path) -> Path:
    """A new virtual environment whose third-party packages (torch, transformers, gradio, ...) are this
    environment's, read through a `.pth` file from a folder of links that leaves nes2net out: installing the
    Space's requirements there needs no index, and only the Space's wheel can provide nes2net."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    shared = Path(sysconfig.get_paths()["purelib"])
    links = folder / "shared-dependencies"
    links.mkdir()
    for entry in shared.iterdir():
        if "nes2net" not in entry.name:
            (links / entry.name).symlink_to(entry)
    python = folder / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "shared-dependencies.pth").write_text(f"{links}\n")
    return python


def test_the_folder_installs_offline_in_a_fresh_venv_starts_and_answers(space_folder, space_model_dir, space_audio,
                                                                        tmp_path):
    python = fresh_venv_with_shared_dependencies(tmp_path / "venv")
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "-q",
         "-r", "requirements.txt"],
        cwd=space_folder, env=environment, capture_output=True, text=True,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    where = subprocess.run([str(python), "-c", "import modeling_nes2net; print(modeling_nes2net.__file__)"],
                           cwd=space_folder, env=environment, check=True, capture_output=True, text=True)
    assert where.stdout.startswith(str(tmp_path / "venv"))  # the wheel's package, not this checkout's
    server = start_space(tmp_path / "run", ["--threads", "1"], env={"PYTHONPATH": ""}, app=space_folder / "app.py",
                         python=str(python))
    try:
        client = Client(server.url, verbose=False, download_files=False)
        _, _, details = client.predict(handle_file(space_audio["short"]), "tiny-random-test-model", "mean",
                                       api_name="/detect")
    finally:
        server.stop()
    expected = Nes2NetDetector.from_pretrained(space_model_dir, device="cpu").detect(space_audio["short"])
    assert details["label"] == expected.label
    assert details["bonafide_probability"] == pytest.approx(expected.bonafide_probability, abs=1e-5)
