"""Fixtures of the Space tests: a tiny random model folder, the files to upload, and the app running on it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from tests.space.space_fixtures import MAX_BATCH_FILES, MAX_FILE_MB, MAX_SECONDS, REPO_ROOT, write_twenty_minutes
from tests.tiny_models import tiny_model

from modeling_nes2net import save_model_folder
from modeling_nes2net.model_loading import DEFAULT_MODEL_DIR

sys.path.insert(0, str(REPO_ROOT / "space"))  # the app's own package, nes2net_space
from nes2net_space.harness import start_space, write_speech, write_stereo_clip  # noqa: E402


@pytest.fixture(scope="session")
def space_model_dir(tmp_path_factory) -> str:
    return str(save_model_folder(tiny_model(), tmp_path_factory.mktemp("space-model") / "tiny-random-test-model"))


@pytest.fixture(scope="session")
def space_model_name(space_model_dir) -> str:
    """How the page names the tiny model: its folder name, never its server path."""
    return Path(space_model_dir).name


@pytest.fixture(scope="session")
def space_audio(tmp_path_factory) -> dict[str, Path]:
    """Files to upload: speech (short, and long enough for a timeline), a stereo 44.1 kHz FLAC, and bad inputs."""
    folder = tmp_path_factory.mktemp("space-audio")
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.txt").write_text("these are notes, not audio\n")
    (folder / "too_big.wav").write_bytes(b"RIFF" + os.urandom(round((MAX_FILE_MB + 0.5) * 2**20)))
    return {
        "short": write_speech(folder / "speech_short.wav", 4),
        "long": write_speech(folder / "speech_long.wav", 14),
        "stereo": write_stereo_clip(folder / "stereo_44k.flac"),
        "twenty_minutes": write_twenty_minutes(folder / "twenty_minutes.ogg"),
        "empty": folder / "empty.wav",
        "not_audio": folder / "notes.txt",
        "too_big": folder / "too_big.wav",
    }


def screenshot_model() -> list[str]:
    """`--model` arguments of the app that the screenshot shows: the embedded default model when updating
    docs/space.png and it is installed (the tiny model is offered second), else only the tiny model."""
    wanted = os.environ.get("NES2NET_UPDATE_SCREENSHOT") == "1" and (DEFAULT_MODEL_DIR / "config.json").is_file()
    return ["--model", "embedded default model"] if wanted else []


@pytest.fixture
def screenshot_audio(space_audio: dict[str, Path], tmp_path: Path) -> Path:
    """The recording the screenshot shows: the demo's spliced example (genuine, synthetic, genuine: `nes2net demo`'s
    partly spoofed recording) when updating docs/space.png with the embedded default and the demo can make it (the
    mini set and espeak-ng are there), else the 14 s test recording."""
    if screenshot_model():
        from modeling_nes2net.commands.demo import MINI_ANTISPOOF, SPLICED_NAME, make_examples

        _, spliced_span = make_examples(tmp_path, MINI_ANTISPOOF, per_label=4)
        if spliced_span is not None:
            return tmp_path / SPLICED_NAME
    return space_audio["long"]


@pytest.fixture(scope="session")
def space_app(tmp_path_factory, space_model_dir):
    """The app on a free port of 127.0.0.1, offering the tiny model, with small limits; stopped after the session."""
    args = [*screenshot_model(), "--model", space_model_dir, "--max-seconds", str(MAX_SECONDS),
            "--max-file-mb", str(MAX_FILE_MB), "--max-batch-files", str(MAX_BATCH_FILES), "--threads", "1"]
    server = start_space(tmp_path_factory.mktemp("space-app"), args)
    yield server
    server.stop()
