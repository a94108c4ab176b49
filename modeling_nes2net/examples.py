"""Example recordings made on the spot, so demos never ship or download audio.

`synthesize_speech` speaks a sentence with espeak-ng (a formant synthesiser: machine-made speech, i.e. spoof);
`splice` joins recordings with short pauses, e.g. a real recording around a synthetic sentence.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio import load_audio

SENTENCES = (
    "Please confirm the transfer of twelve thousand dollars to the new account today.",
    "Hi, it's me. I lost my phone, so call me back on this number as soon as you can.",
    "The quarterly results will be announced on Thursday after the markets close.",
)
VOICES = ("en-us", "en", "en-us+f3")


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesize_speech(text: str, path: str | Path, voice: str = "en-us", sampling_rate: int = 16000) -> Path:
    """Write `text` spoken by espeak-ng to `path` (16-bit WAV at `sampling_rate`)."""
    executable = shutil.which("espeak-ng")
    if executable is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    path = Path(path)
    raw = subprocess.run([executable, "-v", voice, "--stdout", text], capture_output=True, check=True).stdout
    waveform = load_audio(raw, target_rate=sampling_rate)
    sf.write(path, waveform, sampling_rate, subtype="PCM_16")
    return path


def splice(paths: list[str | Path], output: str | Path, pause: float = 0.3, sampling_rate: int = 16000) -> Path:
    """Join recordings (any format or rate) into one 16-bit WAV, with `pause` seconds of silence between them."""
    silence = np.zeros(int(pause * sampling_rate), dtype=np.float32)
    pieces = []
    for path in paths:
        pieces.extend([load_audio(path, target_rate=sampling_rate), silence])
    sf.write(output, np.concatenate(pieces[:-1]), sampling_rate, subtype="PCM_16")
    return Path(output)
