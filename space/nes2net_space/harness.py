"""The app on this machine, for the Space's tests and `benchmarks/space_load.py`: `start_space` runs `app.py` in a
subprocess on 127.0.0.1 and returns once it answers; `write_speech` and `write_stereo_clip` write recordings to send
it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from modeling_nes2net.examples import SENTENCES, espeak_available, speech_like, splice, synthesize_speech

APP = Path(__file__).resolve().parents[1] / "app.py"
STARTUP_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class SpaceServer:
    """A running app: its URL, the TMPDIR it was given and its log file."""

    process: subprocess.Popen
    url: str
    tmpdir: Path
    log: Path

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        """Stop the app with `sig` (as Ctrl-C or a Space shutting down would) and return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_space(
    work_dir: Path,
    args: list[str] = (),
    env: dict[str, str] | None = None,
    app: Path = APP,
    python: str = sys.executable,
) -> SpaceServer:
    """Start `app` with `python`, `args` (and `env` on top of ours) and a TMPDIR of its own under `work_dir`, in
    the app's folder; return once it answers HTTP."""
    tmpdir = work_dir / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = work_dir / "app.log"
    environment = {**os.environ, "TMPDIR": str(tmpdir), "GRADIO_ANALYTICS_ENABLED": "False",
                   "OMP_NUM_THREADS": "1", **(env or {})}
    environment.pop("GRADIO_TEMP_DIR", None)
    if "NES2NET_PORT" not in (env or {}):
        args = [*args, "--host", "127.0.0.1", "--port", str(port)]
    else:
        port = int(env["NES2NET_PORT"])
    with log.open("wb") as stream:
        process = subprocess.Popen([python, str(app), *args], cwd=app.parent, env=environment,
                                   stdout=stream, stderr=subprocess.STDOUT)
    server = SpaceServer(process, f"http://127.0.0.1:{port}/", tmpdir, log)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.url, timeout=5) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"the app did not answer within {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}")


def write_speech(path: Path, seconds_hint: float) -> Path:
    """Speech to upload: espeak-ng sentences (one, or all three joined when `seconds_hint` > 5), else synthetic
    speech (`examples.speech_like`) of that length when espeak-ng is missing."""
    if espeak_available():
        if seconds_hint <= 5:
            return synthesize_speech(SENTENCES[0], path)
        parts = [synthesize_speech(text, path.with_name(f"{path.stem}-{i}.wav")) for i, text in enumerate(SENTENCES)]
        return splice(parts, path)
    soundfile.write(path, speech_like(seconds_hint), 16_000)
    return path


def write_stereo_clip(path: Path, seconds: float = 2.0, rate: int = 44_100) -> Path:
    """A stereo clip of synthetic speech (`examples.speech_like`, another seed in each channel) at 44.1 kHz (FLAC),
    resampled and downmixed by the app."""
    soundfile.write(path, np.stack([speech_like(seconds, rate, seed) for seed in (1, 2)], axis=1), rate)
    return path
