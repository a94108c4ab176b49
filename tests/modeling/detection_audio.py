"""Real audio files for the audio / detection / detect-CLI tests, written with soundfile or ffmpeg: synthetic speech
(`bad_inputs.speech_like`, what the detector scores) or, for the decoder's pitch tests, a tone plus noise (refused by
the detector: not speech-like)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from tests.hostile.make_corpus import speech_like

TONE_HZ = 440.0
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg executable")


@pytest.fixture(scope="module")
def single_torch_thread():
    """One intra-op thread for the module (restored after): tiny models on a shared CPU run faster and steadier."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tone_and_noise(seconds: float, rate: int, channels: int = 1, seed: int = 0, start: int = 0) -> np.ndarray:
    """`(frames, channels)` float32: a 440 Hz tone at 0.5 plus white noise at 0.05; `start` offsets the phase."""
    frames = round(seconds * rate)
    time = (start + np.arange(frames)) / rate
    tone = 0.5 * np.sin(2 * np.pi * TONE_HZ * time)
    noise = 0.05 * np.random.default_rng(seed).standard_normal((frames, channels))
    return (tone[:, None] + noise).astype(np.float32)


def write_audio(path: Path, seconds: float, rate: int = 16_000, channels: int = 1, subtype: str = "PCM_16",
                tone: bool = False) -> Path:
    """Synthetic speech (`tone`: tone plus noise) written with soundfile (the format follows the suffix); 16-bit
    formats get int16 samples, so every lossless format stores exactly the same values."""
    if tone:
        waveform = tone_and_noise(seconds, rate, channels)
    else:
        waveform = speech_like(seconds, rate, channels)
    if subtype == "PCM_16":
        waveform = np.round(waveform * 32767).astype(np.int16)
    soundfile.write(path, waveform, rate, subtype=subtype)
    return path


def write_long_wav(path: Path, seconds: float, rate: int = 16_000, block_seconds: float = 60.0) -> Path:
    """A long 16-bit WAV of synthetic speech written block by block (the same block again), never holding the whole
    signal."""
    block = speech_like(min(block_seconds, seconds), rate)[:, 0]
    with soundfile.SoundFile(path, "w", rate, 1, "PCM_16") as sound_file:
        for start in range(0, round(seconds * rate), len(block)):
            sound_file.write(block[: round(seconds * rate) - start])
    return path


def ffmpeg_encode(source: Path, target: Path) -> Path:
    """Re-encode `source` to the format of `target`'s suffix with the ffmpeg executable."""
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), str(target)], check=True)
    return target


def dominant_frequency(waveform: np.ndarray, rate: int) -> float:
    """The frequency in Hz of the largest FFT magnitude of a mono waveform."""
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.fft.rfftfreq(len(waveform), 1 / rate)[spectrum.argmax()])
