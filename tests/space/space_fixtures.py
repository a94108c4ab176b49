"""What the Space tests share besides `nes2net_space.harness` (which starts the app and writes speech): the small
limits of the app under test, the browser, and a recording over the length limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# Limits of the app under test: small, so the over-limit cases are cheap.
MAX_SECONDS = 30
MAX_FILE_MB = 2
MAX_BATCH_FILES = 4


def write_twenty_minutes(path: Path, rate: int = 8_000) -> Path:
    """A 20-minute OGG Vorbis tone, under a megabyte, written 10 s at a time."""
    with soundfile.SoundFile(path, "w", rate, 1, format="OGG", subtype="VORBIS") as sound_file:
        for start in range(0, 20 * 60 * rate, 10 * rate):
            samples = np.arange(start, start + 10 * rate)
            sound_file.write((0.25 * np.sin(2 * np.pi * 200 * samples / rate)).astype(np.float32))
    return path
