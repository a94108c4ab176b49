"""Example recordings made on the spot, so demos never ship or download audio.

`synthesize_speech` speaks a sentence with espeak-ng (a formant synthesiser: machine-made speech, i.e. spoof);
`splice` joins recordings with short pauses, e.g. a real recording around a synthetic sentence; `speech_like` makes
a waveform with the shape of speech (no words), which the detector's input check (`input_check`) accepts where
a tone or noise is refused: for tests, benchmarks and warm-up passes.
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


SYLLABLE_SECONDS = 0.25  # about 4 syllables a second


def speech_like(seconds: float, sampling_rate: int = 16_000, seed: int = 0) -> np.ndarray:
    """`(samples,)` float32 with the shape of voiced speech, peak 0.5: the harmonics (up to 4 kHz) of an f0 gliding
    between 100 and 250 Hz, shaped by three vowel-like formants that change every syllable (`SYLLABLE_SECONDS`),
    each syllable rising and falling in level, every fourth one a pause, over a faint noise floor (never digital
    silence). About 10 ms per second of audio at 16 kHz."""
    rng = np.random.default_rng(seed)
    samples = round(seconds * sampling_rate)
    time = np.arange(samples) / sampling_rate
    syllables = int(seconds / SYLLABLE_SECONDS) + 2
    knots = np.arange(syllables) * SYLLABLE_SECONDS
    f0 = np.interp(time, knots, rng.uniform(100, 250, syllables))
    formants = [np.interp(time, knots, rng.uniform(low, high, syllables))
                for low, high in ((300, 800), (900, 2200), (2300, 3000))]
    position = time / SYLLABLE_SECONDS
    envelope = np.sin(np.pi * (position % 1)) ** 2 * (np.floor(position) % 4 != 3)
    phase = 2 * np.pi * np.cumsum(f0) / sampling_rate
    top = min(4_000.0, 0.45 * sampling_rate)
    twice_cos, previous, current = 2 * np.cos(phase), np.zeros(samples), np.sin(phase)
    voiced = np.zeros(samples)
    for harmonic in range(1, int(top / 100) + 1):  # sin(k phase) by the Chebyshev recurrence
        frequency = harmonic * f0
        gain = sum(1 / (1 + ((frequency - formant) / 120) ** 2) for formant in formants) / harmonic
        voiced += np.where(frequency < top, gain, 0.0) * current
        previous, current = current, twice_cos * current - previous
    waveform = voiced * envelope
    waveform *= 0.5 / max(np.abs(waveform).max(), 1e-9)
    return (waveform + 0.002 * rng.standard_normal(samples)).astype(np.float32)


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
