"""The bad-input corpus: hostile and broken files generated on the fly, each with the one-line message every surface
must give for it, next to good files with awkward names that every surface must score.

`write_bad_inputs(folder)` writes them and returns `BadInput`s; `write_good_inputs(folder)` the ones to score.
`speech_like` is the synthetic speech every test that scores audio uses: a tone or noise is not speech-like and is
refused (`modeling_nes2net.input_check`).
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from modeling_nes2net import examples

RATE = 16_000


@dataclass(frozen=True)
class BadInput:
    """A file no surface may score: `path`, and `message`, the text its one-line error must hold after its name."""

    kind: str
    path: Path
    message: str


def speech_like(seconds: float, rate: int = RATE, channels: int = 1, seed: int = 0) -> np.ndarray:
    """`(frames, channels)` float32 synthetic speech (`examples.speech_like`, another seed in each channel)."""
    return np.stack([examples.speech_like(seconds, rate, seed + channel) for channel in range(channels)], axis=1)


def wav_bytes(waveform: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


def _with_data_size(wav: bytes, data_bytes: int) -> bytes:
    """`wav` with its `data` chunk's declared size replaced (the samples themselves unchanged)."""
    position = wav.index(b"data")
    return wav[: position + 4] + struct.pack("<I", data_bytes) + wav[position + 8 :]


def ffmpeg_encoded(waveform: np.ndarray, suffix: str) -> bytes:
    """`waveform` (at `RATE`) encoded by the ffmpeg executable to the format of `suffix` (`mp3`, `opus`, `ogg`), into
    a file: the MP3 muxer writes the stream's length into its header only when it can seek back."""
    with tempfile.TemporaryDirectory() as folder:
        encoded = Path(folder) / f"encoded.{suffix}"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "wav", "-i", "pipe:0", str(encoded)],
                       input=wav_bytes(waveform), check=True)
        return encoded.read_bytes()


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
    if shutil.which("ffmpeg") is not None:
        cut_short = {"mp3": "truncated: the header promises 3.", "opus": "truncated: its last page is cut"}
        for suffix, message in cut_short.items():
            encoded = ffmpeg_encoded(speech_like(3.0), suffix)
            add(f"truncated {suffix}", f"truncated.{suffix}", encoded[: len(encoded) * 3 // 5], message)
    time = np.arange(2 * RATE)[:, None] / RATE
    steady = "not speech-like, nothing to score: a steady level"
    add("constant", "dc.wav", wav_bytes(np.full((2 * RATE, 1), 0.3, np.float32)), steady)
    add("square wave", "square440.wav", wav_bytes(0.5 * np.sign(np.sin(2 * np.pi * 440 * time))), steady)
    add("white noise", "noise.wav", wav_bytes(0.3 * np.random.default_rng(0).standard_normal((2 * RATE, 1))), steady)
    add("too short", "short.wav", wav_bytes(speech_like(0.05)), "0.050 s long, under the 0.2 s of one syllable")
    add("broken scale", "times1e30.wav", wav_bytes(speech_like(1.0) * 1e30, subtype="FLOAT"), "audio lies in [-1, 1]")
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
