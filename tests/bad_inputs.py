"""The bad-input corpus: hostile and broken files generated on the fly, each with the one-line message every surface
must give for it, next to good files with awkward names that every surface must score.

`write_bad_inputs(folder)` writes them and returns `BadInput`s; `write_good_inputs(folder)` the ones to score.
Used by the detection API, `nes2net detect` and `nes2net evaluate` tests (and reusable by the Space's).
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

RATE = 16_000


@dataclass(frozen=True)
class BadInput:
    """A file no surface may score: `path`, and `message`, the text its one-line error must hold after its name."""

    kind: str
    path: Path
    message: str


def speech_like(seconds: float, rate: int = RATE, channels: int = 1, seed: int = 0) -> np.ndarray:
    """`(frames, channels)` float32: a 220 Hz tone with harmonics and a little noise, loud enough to score."""
    time = np.arange(round(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * time) + 0.1 * np.sin(2 * np.pi * 660 * time)
    noise = 0.02 * np.random.default_rng(seed).standard_normal((len(time), channels))
    return (tone[:, None] + noise).astype(np.float32)


def wav_bytes(waveform: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


def _with_data_size(wav: bytes, data_bytes: int) -> bytes:
    """`wav` with its `data` chunk's declared size replaced (the samples themselves unchanged)."""
    position = wav.index(b"data")
    return wav[: position + 4] + struct.pack("<I", data_bytes) + wav[position + 8 :]


def _png() -> bytes:
    """A real 1x1 PNG image, written without an imaging library."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0\xff\0\0")) + \
        chunk(b"IEND", b"")


def write_bad_inputs(folder: Path, fifo: bool = True) -> list[BadInput]:
    """Write the bad-input corpus into `folder` (created); `fifo=False` leaves out the named pipe (for surfaces that
    copy files first)."""
    folder.mkdir(parents=True, exist_ok=True)
    bad: list[BadInput] = []

    def add(kind: str, name: str, data: bytes | None, message: str) -> None:
        path = folder / name
        if data is not None:
            path.write_bytes(data)
        bad.append(BadInput(kind, path, message))

    add("empty", "empty.wav", b"", "empty file (0 bytes)")
    add("corrupt", "corrupt.flac", b"fLaC" + os.urandom(2000), "cannot decode audio")
    add("silent", "silent.wav", wav_bytes(np.zeros((RATE, 1), np.float32)), "digital silence")
    nan = speech_like(1.0)
    nan[100:200] = np.nan
    add("nan", "nan.wav", wav_bytes(nan, subtype="FLOAT"), "NaN or infinite samples")
    add("wrong rate", "one_hertz.wav", wav_bytes(speech_like(1.0), rate=1),
        "implausible sampling rate in the header (1 Hz")
    six_seconds = wav_bytes(speech_like(6.0))
    claimed_bytes, kept_frames = 1 << 30, RATE * 5 // 4  # 9.3 hours promised (not a streaming placeholder)
    add("huge header", "huge_header.wav", _with_data_size(six_seconds[: 44 + 2 * kept_frames], claimed_bytes),
        f"truncated: the header promises {claimed_bytes // 2 / RATE:.2f} s, the file holds {kept_frames / RATE:.2f} s")
    add("truncated", "truncated.wav", six_seconds[:20_000],
        "truncated: the header promises 6.00 s, the file holds 0.62 s")
    add("png as flac", "image.flac", _png(), "is a PNG image, not audio")
    loop = folder / "loop.wav"
    loop.symlink_to(loop.name)
    bad.append(BadInput("symlink loop", loop, "is a symbolic link loop"))
    if fifo:
        pipe = folder / "pipe.wav"
        os.mkfifo(pipe)
        bad.append(BadInput("fifo", pipe, "is a FIFO (named pipe)"))
    return bad


def write_good_inputs(folder: Path) -> list[Path]:
    """Good recordings every surface must score: stereo 44.1 kHz, names with a newline, spaces, a `%`, the same stem
    in two folders, and a WAV streamed with no length in its header."""
    paths = [
        folder / "stereo.wav",
        folder / "line\nbreak.wav",
        folder / "two words 100%.wav",
        folder / "a" / "same.wav",
        folder / "b" / "same.wav",
    ]
    for seed, path in enumerate(paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        rate, channels = (44_100, 2) if path.name == "stereo.wav" else (RATE, 1)
        soundfile.write(path, speech_like(1.5, rate, channels, seed=seed), rate, subtype="PCM_16")
    streamed = folder / "streamed.wav"  # as espeak-ng or `sox ... -t wav -` write to a pipe: no length in the header
    streamed.write_bytes(_with_data_size(wav_bytes(speech_like(1.5, seed=len(paths))), 0xFFFF_FFFF))
    return [*paths, streamed]
