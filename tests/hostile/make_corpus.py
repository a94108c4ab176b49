"""The hostile-input corpus: broken, forged and awkward files generated on the fly (nothing binary is committed), each
with what every surface must do with it, next to good files with awkward names that every surface must score.

- `write_corpus(folder)` writes the whole corpus and returns its `HostileCase`s: each says, for `nes2net detect` and
  for `nes2net data check|build`, the text of the one-line refusal that follows the file's name, or None when the
  file must be accepted.
- `write_bad_inputs(folder)` writes the part every decoding surface refuses today (detection API, `detect`,
  `evaluate`, `pipeline`), `write_good_inputs(folder)` good files with awkward names.
- `snapshot(folder)` fingerprints a folder, to show a command changed nothing in its inputs.
- `speech_like(seconds)` is the good test signal (the package's synthetic speech), so the speech-like input check
  (`modeling_nes2net.input_check`) lets it through.

Run as a script to write the corpus into a folder: `python tests/hostile/make_corpus.py FOLDER`.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import stat
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from modeling_nes2net import examples

RATE = 16_000


@dataclass(frozen=True)
class HostileCase:
    """One input of the corpus: `path`, and for each surface the text its one-line refusal must hold after the
    file's name, or None where the file must be accepted. `pending` says which fix of an open issue makes `detect`
    refuse the file, while it still scores it (the tests then check that it is still scored, so the fix is noticed)."""

    kind: str
    path: Path
    detect: str | None
    data: str | None
    pending: str | None = None


def speech_like(seconds: float, rate: int = RATE, channels: int = 1, seed: int = 0) -> np.ndarray:
    """`(frames, channels)` float32 synthetic speech (`modeling_nes2net.examples.speech_like`, another seed in each
    channel): what every test that scores audio uses, since a tone or noise is not speech-like and is refused."""
    return np.stack([examples.speech_like(seconds, rate, seed + channel) for channel in range(channels)], axis=1)


def wav_bytes(waveform: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


def ffmpeg_encoded(waveform: np.ndarray, suffix: str, rate: int = RATE, piped: bool = False) -> bytes:
    """`waveform` encoded by the ffmpeg executable into a `suffix` file (.flac, .mp3, .ogg), as its bytes. Written to
    a file, so ffmpeg completes the header (FLAC's length, MP3's Xing frame count) as a download has it; or with
    `piped`, written to a pipe, which leaves the length out of the header (FLAC's total samples are 0: unknown)."""
    with tempfile.TemporaryDirectory(prefix="hostile.") as folder:
        source, encoded = Path(folder) / "source.wav", Path(folder) / f"encoded{suffix}"
        source.write_bytes(wav_bytes(waveform, rate))
        command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(source)]
        if piped:
            return subprocess.run([*command, "-f", suffix.lstrip("."), "pipe:1"], check=True,
                                  capture_output=True).stdout
        subprocess.run([*command, str(encoded)], check=True)
        return encoded.read_bytes()


def _with_data_size(wav: bytes, data_bytes: int) -> bytes:
    """`wav` with its `data` chunk's declared size replaced (the samples themselves unchanged)."""
    position = wav.index(b"data")
    return wav[: position + 4] + struct.pack("<I", data_bytes) + wav[position + 8 :]


def _png() -> bytes:
    """A real 1x1 PNG image, written without an imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0\xff\0\0")) + \
        chunk(b"IEND", b"")


class _Writer:
    """Writes the files of a corpus into `folder` and collects their cases."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.cases = folder, []

    def add(self, kind: str, name: str, data: bytes | None, detect: str | None, data_check: str | None,
            pending: str | None = None) -> Path:
        path = self.folder / name
        if data is not None:
            path.write_bytes(data)
        self.cases.append(HostileCase(kind, path, detect, data_check, pending))
        return path


def _write_refused_everywhere(writer: _Writer, fifo: bool) -> None:
    """The files every decoding surface refuses: empty, undecodable, silent, NaN, forged or truncated headers, an
    image, a symbolic link loop and (with `fifo`) a named pipe."""
    add = writer.add
    add("empty", "empty.wav", b"", "empty file (0 bytes)", "empty file (0 bytes)")
    add("corrupt", "corrupt.flac", b"fLaC" + os.urandom(2000), "cannot decode audio", "not a readable audio file")
    add("silent", "silent.wav", wav_bytes(np.zeros((RATE, 1), np.float32)), "digital silence",
        "no sample is non-zero (digital silence)")
    nan = speech_like(1.0)
    nan[100:200] = np.nan
    add("nan", "nan.wav", wav_bytes(nan, subtype="FLOAT"), "NaN or infinite samples",
        "contains NaN or infinite samples")
    add("wrong rate", "one_hertz.wav", wav_bytes(speech_like(1.0), rate=1),
        "implausible sampling rate in the header (1 Hz", "implausible sampling rate in the header (1 Hz")
    six_seconds = wav_bytes(speech_like(6.0))
    claimed_bytes, kept_frames = 1 << 30, RATE * 5 // 4  # 9.3 hours promised (not a streaming placeholder)
    huge = (f"truncated: the header promises {claimed_bytes // 2 / RATE:.2f} s, the file holds "
            f"{kept_frames / RATE:.2f} s")
    add("huge header", "huge_header.wav", _with_data_size(six_seconds[: 44 + 2 * kept_frames], claimed_bytes), huge,
        huge)
    truncated = "truncated: the header promises 6.00 s, the file holds 0.62 s"
    add("truncated", "truncated.wav", six_seconds[:20_000], truncated, truncated)
    add("png as flac", "image.flac", _png(), "is a PNG image, not audio", "not a readable audio file")
    loop = add("symlink loop", "loop.wav", None, "is a symbolic link loop", "is a symbolic link loop")
    loop.symlink_to(loop.name)
    if fifo:
        pipe = add("fifo", "pipe.wav", None, "is a FIFO (named pipe)", "is a FIFO (named pipe)")
        os.mkfifo(pipe)


def _write_truncated_compressed(writer: _Writer) -> None:
    """FLAC, MP3 and Ogg Vorbis files cut at 40 %, as a stopped download leaves them (needs ffmpeg)."""
    three_seconds = speech_like(3.0, seed=1)
    cut = {suffix: ffmpeg_encoded(three_seconds, suffix) for suffix in (".flac", ".mp3", ".ogg")}
    cut = {suffix: encoded[: len(encoded) * 2 // 5] for suffix, encoded in cut.items()}
    add = writer.add
    add("truncated flac", "truncated.flac", cut[".flac"], "decoding failed mid-stream", "decoding failed mid-stream")
    add("truncated mp3", "truncated.mp3", cut[".mp3"], "truncated: the header promises 3.",
        "truncated: the header promises 3.")
    add("truncated ogg", "truncated.ogg", cut[".ogg"], "truncated: its last page is cut",
        "truncated: its last page is cut")


def _write_not_speech_like(writer: _Writer) -> None:
    """Decodable files with nothing to score, which the speech-like input check refuses (a corpus check accepts
    them: they are valid audio)."""
    steady = "not speech-like, nothing to score: a steady level"
    time = np.arange(2 * RATE)[:, None] / RATE
    add = writer.add
    add("dc only", "dc.wav", wav_bytes(np.full((2 * RATE, 1), 0.3, np.float32)), steady, None)
    add("square wave", "square440.wav", wav_bytes(0.5 * np.sign(np.sin(2 * np.pi * 440 * time))), steady, None)
    add("white noise", "noise.wav", wav_bytes(0.3 * np.random.default_rng(0).standard_normal((2 * RATE, 1))), steady,
        None)
    add("short clip", "short.wav", wav_bytes(speech_like(0.05, seed=3)),
        "0.050 s long, under the 0.2 s of one syllable", None)
    add("broken scale", "times1e30.wav", wav_bytes(speech_like(1.0) * 1e30, subtype="FLOAT"), "audio lies in [-1, 1]",
        None)


def write_bad_inputs(folder: Path, fifo: bool = True) -> list[HostileCase]:
    """Write the files every decoding surface refuses into `folder` (created); `fifo=False` leaves out the named pipe
    (for surfaces that copy files first)."""
    writer = _Writer(folder)
    _write_refused_everywhere(writer, fifo)
    _write_not_speech_like(writer)
    if shutil.which("ffmpeg") is not None:
        _write_truncated_compressed(writer)
    return writer.cases


def write_corpus(folder: Path) -> list[HostileCase]:
    """Write the whole hostile corpus into `folder` (created; needs the ffmpeg executable) and return its cases."""
    writer = _Writer(folder)
    _write_refused_everywhere(writer, fifo=True)
    add = writer.add
    add("zero frames", "zero_frames.wav", wav_bytes(np.zeros((0, 1), np.float32)), "no audio samples (zero duration)",
        "no audio samples (zero duration)")
    _write_truncated_compressed(writer)
    add("text as wav", "notes.wav", b"These are my notes, not audio.\n" * 20, "cannot decode audio",
        "not a readable audio file")
    target = add("playlist target", "target.mp3", ffmpeg_encoded(speech_like(2.0, seed=2), ".mp3"), None, None)
    add("hls playlist", "playlist.wav", f"#EXTM3U\n#EXTINF:2.0,\n{target}\n#EXT-X-ENDLIST\n".encode(),
        "is an M3U / HLS playlist (never followed)", "not a readable audio file")
    _write_not_speech_like(writer)
    for kind, name, rate, channels in (("stereo", "stereo.wav", 44_100, 2), ("8 kHz", "rate_8k.wav", 8_000, 1),
                                       ("96 kHz", "rate_96k.wav", 96_000, 1)):
        add(kind, name, wav_bytes(speech_like(1.5, rate, channels, seed=4), rate), None, None)
    add("streamed flac", "streamed.flac", ffmpeg_encoded(speech_like(1.5, seed=5), ".flac", piped=True), None,
        "its header declares no length (a stream written to a pipe)")
    link = add("symlink", "link.wav", None, None, None)
    link.symlink_to("stereo.wav")
    return writer.cases


def write_good_inputs(folder: Path) -> list[Path]:
    """Good recordings every surface must score: stereo 44.1 kHz, names with a newline, spaces, a `%`, the same stem
    in two folders, and a WAV and (with ffmpeg) a FLAC streamed with no length in their headers."""
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
    paths.append(streamed)
    if shutil.which("ffmpeg") is not None:  # as `ffmpeg ... -f flac -` or `flac -` write to a pipe
        paths.append(folder / "streamed.flac")
        paths[-1].write_bytes(ffmpeg_encoded(speech_like(1.5, seed=len(paths)), ".flac", piped=True))
    return paths


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under `folder`, links not followed -> a file's SHA-256 and modification time, a link's target, or
    the entry's type: equal before and after a command when it changed nothing there."""
    entries = {}
    for directory, folders, files in os.walk(folder):
        for path in (Path(directory) / name for name in folders + files):
            status = path.lstat()
            if stat.S_ISLNK(status.st_mode):
                entries[str(path)] = f"link to {os.readlink(path)}"
            elif stat.S_ISREG(status.st_mode):
                entries[str(path)] = f"{hashlib.sha256(path.read_bytes()).hexdigest()} {status.st_mtime_ns}"
            else:
                entries[str(path)] = f"type {stat.S_IFMT(status.st_mode):o}"
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to write the corpus (created)")
    for case in write_corpus(parser.parse_args().folder):
        pending = f", still scored until {case.pending}" if case.pending else ""
        detect, data = case.detect or "accepted", case.data or "accepted"
        print(f"{case.kind}: {case.path} (detect: {detect}{pending}; data: {data})")


if __name__ == "__main__":
    if shutil.which("ffmpeg") is None:
        raise SystemExit("make_corpus.py needs the ffmpeg executable on PATH")
    main()
