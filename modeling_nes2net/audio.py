"""Robust audio decoding for detection: any format, any length, any sampling rate -> 16 kHz mono float32.

Everything is a stream of blocks, so a two-hour podcast never sits in memory at once:

1. **soundfile** (libsndfile: WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, ...) reads blocks at the file's own rate;
   they are downmixed (mean over channels) and resampled with `soxr.ResampleStream`.
2. **ffmpeg** (a subprocess, for M4A/AAC, WMA, video containers and anything libsndfile rejects) decodes,
   downmixes and resamples to 16 kHz mono itself and streams little-endian float32 through a pipe: the
   same output options as transformers' `ffmpeg_read`, so `pipeline("audio-classification")` sees the same samples.
   Float32 rather than s16le output keeps float sources unquantised. The input is untrusted: ffmpeg gets it only as
   bytes on its standard input, with the demuxer named from the file's first bytes (`sniff_container`, audio and
   audio-video containers only: never a playlist or concat script that would open other files), no protocol but
   the pipe, a memory and CPU limit, and SIGKILL when it stalls (`FFMPEG_STALL_SECONDS`).
3. **torchcodec**, by default only when no `ffmpeg` executable is on PATH: it decodes the whole file in-process (no
   streaming), from its bytes and only when `sniff_container` knows the container, then the samples go through
   the same downmix and soxr path as 1.

Every failure is an `AudioInputError` whose message is one line naming the input (control characters escaped,
see `printable`) and the problem. Refused before any decoding: what is not a regular file (a FIFO would block the
reader forever, a symbolic link loop or a dangling link), an empty file, a header whose sampling rate is outside
`MIN_SAMPLING_RATE`..`MAX_SAMPLING_RATE` (a 32 KB WAV claiming 1 Hz would decode to 16,000 s) or whose duration is
over `MAX_DURATION_SECONDS` (a header that declares no length, as a FLAC written to a pipe, is an unknown length:
ffmpeg decodes it, and the limit holds as it decodes), a WAV whose header promises more samples than the file holds
(a truncated download: the message gives both durations), and an MP3 or Ogg file cut short (`check_complete`). A
non-audio file (an image renamed `.flac`) is named for what it is.
"""

from __future__ import annotations

import errno
import io
import os
import re
import resource
import select
import shutil
import signal
import stat
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Union

import numpy as np
import soundfile
import soxr

from .protocols import SAMPLING_RATE

BLOCK_SECONDS = 10.0
MIN_SAMPLING_RATE = 2_000
MAX_SAMPLING_RATE = 768_000
MAX_DURATION_SECONDS = 24 * 3600.0
DECODERS = ("soundfile", "ffmpeg", "torchcodec")
DEFAULT_DECODERS = ("soundfile", "ffmpeg") if shutil.which("ffmpeg") else ("soundfile", "torchcodec")
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".mp4", ".wma", ".aif", ".aiff", ".au",
     ".caf", ".webm", ".mka", ".w64", ".rf64", ".amr", ".ac3"}
)
"""The file extensions taken as audio wherever files are looked for (`detect` folders, corpus builders, noise and
impulse-response folders, score-file ids): what soundfile or ffmpeg decode."""

AudioSourceLike = Union[str, os.PathLike, bytes, np.ndarray, tuple, "AudioSource"]


def printable(name: str | os.PathLike) -> str:
    """`name` with control and other non-printable characters escaped as in Python literals (`\\n`, `\\x1b`), so
    it stays on one line and cannot forge output; printable text (any script) is kept as is."""
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in os.fspath(name))


class AudioInputError(ValueError):
    """An input that cannot be decoded or scored; `str(error)` is `"<name>: <problem>"` on one line."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{printable(name)}: {self.problem}")


@dataclass(frozen=True)
class AudioSource:
    """One input to decode: a file path, the encoded bytes of a file, or a waveform with its sampling rate.

    Args:
        data: a path, encoded file bytes, or a waveform array: `(samples,)`, or 2-D with channels on the
            shorter axis (`(channels, samples)` and `(samples, channels)` both work). Integer arrays are
            scaled from their full range to [-1, 1].
        sampling_rate: required for arrays, ignored otherwise.
        name: how errors and results refer to the input (defaults to the path, `<bytes>` or `<array>`).
    """

    data: str | os.PathLike | bytes | np.ndarray
    sampling_rate: int | None = None
    name: str | None = None

    @classmethod
    def wrap(cls, source: AudioSourceLike, sampling_rate: int | None = None) -> AudioSource:
        if isinstance(source, AudioSource):
            return source
        if isinstance(source, tuple) and len(source) == 2:
            return cls(np.asarray(source[0]), int(source[1]))
        if hasattr(source, "numpy") and not isinstance(source, (bytes, np.ndarray)):
            source = source.detach().cpu().numpy()  # a torch tensor
        return cls(source, sampling_rate)

    @property
    def display_name(self) -> str:
        if self.name is not None:
            return self.name
        if isinstance(self.data, bytes):
            return "<bytes>"
        if isinstance(self.data, np.ndarray):
            return "<array>"
        return os.fspath(self.data)


@dataclass(frozen=True)
class AudioInfo:
    """What the decoder found: the input's own sampling rate and channel count, and which decoder read it."""

    sampling_rate: int
    num_channels: int
    decoder: str


class AudioStream:
    """Blocks of 16 kHz mono float32 audio decoded lazily from one `AudioSource`.

    Iterate to get `(block_samples,)` arrays; `info` is set once the first block is decoded (ffmpeg streams
    report the rate they were asked for). Raises `AudioInputError` (from the iteration) for unreadable
    input, no audio, or NaN / infinite samples.

    Args:
        source: what to decode.
        target_rate: the output sampling rate.
        block_seconds: duration of the blocks read from the decoder (memory use is a few blocks).
        decoders: the decoders to try in order, a subset of `DECODERS`; by default soundfile, then ffmpeg when
            its executable is on PATH, else torchcodec.
        max_seconds: longer input is refused (from the header when it tells, else once that much is decoded).
    """

    def __init__(
        self,
        source: AudioSourceLike,
        target_rate: int = SAMPLING_RATE,
        block_seconds: float = BLOCK_SECONDS,
        decoders: Sequence[str] = DEFAULT_DECODERS,
        max_seconds: float = MAX_DURATION_SECONDS,
    ) -> None:
        unknown = set(decoders) - set(DECODERS)
        if unknown:
            raise ValueError(f"unknown decoders {sorted(unknown)}; choose from {DECODERS}")
        self.source = AudioSource.wrap(source)
        self.name = self.source.display_name
        self.target_rate = target_rate
        self.block_seconds = block_seconds
        self.decoders = tuple(decoders)
        self.max_seconds = max_seconds
        self.info: AudioInfo | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        total, limit = 0, self.max_seconds * self.target_rate
        for block in self._blocks():
            if not np.isfinite(block).all():
                raise AudioInputError(self.name, "contains NaN or infinite samples")
            total += len(block)
            if total > limit:
                raise AudioInputError(self.name, f"longer than {self.max_seconds:g} s, the most this reads")
            if len(block):
                yield block
        if total == 0:
            raise AudioInputError(self.name, "no audio samples (zero duration)")

    def _blocks(self) -> Iterator[np.ndarray]:
        data = self.source.data
        if isinstance(data, np.ndarray):
            rate = self.source.sampling_rate
            if rate is None:
                raise AudioInputError(self.name, "a waveform array needs its sampling rate")
            if not MIN_SAMPLING_RATE <= rate <= MAX_SAMPLING_RATE:
                raise AudioInputError(self.name, f"implausible sampling rate {rate} Hz (audio has "
                                                 f"{MIN_SAMPLING_RATE}-{MAX_SAMPLING_RATE} Hz)")
            yield from self._resampled(_array_blocks(data, rate, self.name, self.block_seconds), rate, "array")
            return
        if not isinstance(data, bytes):
            check_file(Path(data), self.name)
        elif not data:
            raise AudioInputError(self.name, "empty input (0 bytes)")
        check_complete(data, self.name)
        failures = []
        for decoder in self.decoders:
            decoded_any = False
            try:
                for block in _OPENERS[decoder](self, data):
                    decoded_any = True
                    yield block
                return
            except _DecoderUnavailable as error:
                if decoded_any:
                    raise AudioInputError(self.name, f"decoding failed mid-stream ({decoder}: {error})") from None
                failures.append(f"{decoder}: {_short_reason(error, data)}")
        kind = _non_audio_kind(data)
        if kind is not None:
            raise AudioInputError(self.name, f"is {kind}, not audio (whatever its extension says)")
        raise AudioInputError(self.name, "cannot decode audio (" + "; ".join(failures) + ")")

    def _resampled(self, blocks: Iterator[np.ndarray], rate: int, decoder: str) -> Iterator[np.ndarray]:
        """Downmix `(frames, channels)` blocks at `rate` to mono and resample them to `target_rate`."""
        resampler = None if rate == self.target_rate else soxr.ResampleStream(rate, self.target_rate, 1, "float32")
        for block in blocks:
            if self.info is None:
                self.info = AudioInfo(rate, block.shape[1], decoder)
            mono = np.ascontiguousarray(block.mean(axis=1, dtype=np.float32))
            yield mono if resampler is None else resampler.resample_chunk(mono)
        if resampler is not None:
            yield resampler.resample_chunk(np.zeros(0, np.float32), last=True)


class _DecoderUnavailable(Exception):
    """A decoder that cannot open this input; the next decoder is tried."""


def _short_reason(error: Exception, data: str | os.PathLike | bytes) -> str:
    """A decoder's message without the file path and source locations it repeats: the text after its last ': '."""
    message = str(error) if isinstance(data, bytes) else str(error).replace(os.fspath(data), "")
    return message.rsplit(": ", 1)[-1].strip(" '.") or type(error).__name__


_NON_AUDIO_SIGNATURES = {
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image", b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive", b"\x1f\x8b": "a gzip archive", b"{": "text (JSON?)", b"<": "text (HTML/XML?)",
    b"#EXTM3U": "an M3U / HLS playlist (never followed)", b"ffconcat": "an ffmpeg concat script (never followed)",
}


def _non_audio_kind(data: str | os.PathLike | bytes) -> str | None:
    """What a file that no decoder could read is, from its first bytes, when it is a common non-audio format."""
    if isinstance(data, bytes):
        head = data[:8]
    else:
        with open(data, "rb") as handle:
            head = handle.read(8)
    return next((kind for signature, kind in _NON_AUDIO_SIGNATURES.items() if head.startswith(signature)), None)


def check_file(path: Path, name: str) -> None:
    """Refuse what is not a readable, non-empty regular file, saying what it is."""
    try:
        status = path.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise AudioInputError(name, "is a symbolic link loop (the link resolves to itself)") from None
        if error.errno == errno.ENOENT and path.is_symlink():
            raise AudioInputError(name, f"is a dangling symbolic link (to {os.readlink(path)}, which does not exist)"
                                  ) from None
        if error.errno == errno.ENOENT:
            raise AudioInputError(name, "no such file") from None
        raise AudioInputError(name, f"cannot be read ({error.strerror})") from None
    if stat.S_ISDIR(status.st_mode):
        raise AudioInputError(name, "is a directory, not an audio file")
    if stat.S_ISFIFO(status.st_mode):
        raise AudioInputError(name, "is a FIFO (named pipe), not an audio file: reading it could block forever")
    if not stat.S_ISREG(status.st_mode):
        raise AudioInputError(name, "is not a regular file (a device or socket), not an audio file")
    if status.st_size == 0:
        raise AudioInputError(name, "empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise AudioInputError(name, "cannot be read (permission denied)")


def _array_blocks(array: np.ndarray, rate: int, name: str, block_seconds: float) -> Iterator[np.ndarray]:
    if array.ndim == 1:
        array = array[:, None]
    elif array.ndim == 2:
        array = array.T if array.shape[0] < array.shape[1] else array
    else:
        raise AudioInputError(name, f"expected a 1-D or 2-D waveform, got shape {array.shape}")
    step = max(1, int(block_seconds * rate))
    for start in range(0, len(array), step):
        yield _to_float(array[start : start + step])


def _to_float(block: np.ndarray) -> np.ndarray:
    """Integer PCM to [-1, 1) float32; float input passes through as float32."""
    if block.dtype.kind == "u":
        half = 2.0 ** (8 * block.dtype.itemsize - 1)
        return ((block.astype(np.float64) - half) / half).astype(np.float32)
    if block.dtype.kind == "i":
        return (block / 2.0 ** (8 * block.dtype.itemsize - 1)).astype(np.float32)
    return block.astype(np.float32, copy=False)


def _open_soundfile(stream: AudioStream, data: str | os.PathLike | bytes) -> Iterator[np.ndarray]:
    try:
        sound_file = soundfile.SoundFile(io.BytesIO(data) if isinstance(data, bytes) else os.fspath(data))
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise _DecoderUnavailable(error) from None
    try:
        check_header(sound_file, data, stream.name, stream.max_seconds)
    except AudioInputError:
        sound_file.close()
        raise
    if declared_frames(sound_file) is None:  # libsndfile fails to seek at the end of such a stream: ffmpeg reads it
        sound_file.close()
        raise _DecoderUnavailable("its header declares no length (written to a pipe)")
    return stream._resampled(_soundfile_blocks(sound_file, stream), sound_file.samplerate, "soundfile")


UNKNOWN_LENGTH = 2**63 - 1  # libsndfile's frame count (SF_COUNT_MAX) of a stream whose header declares no length


def declared_frames(sound_file: soundfile.SoundFile) -> int | None:
    """The frames an open file's header declares; None when it declares none, as a FLAC written to a pipe (its
    STREAMINFO total is 0, which libsndfile reports as `UNKNOWN_LENGTH`): an unknown length, not a huge one."""
    return None if sound_file.frames >= UNKNOWN_LENGTH else sound_file.frames


def check_header(
    sound_file: soundfile.SoundFile, data: str | os.PathLike | bytes, name: str,
    max_seconds: float = MAX_DURATION_SECONDS,
) -> None:
    """Refuse an open file whose header is implausible (rate, duration) or promises more than the file holds."""
    rate = sound_file.samplerate
    if not MIN_SAMPLING_RATE <= rate <= MAX_SAMPLING_RATE:
        raise AudioInputError(name, f"implausible sampling rate in the header ({rate} Hz; audio has "
                                    f"{MIN_SAMPLING_RATE}-{MAX_SAMPLING_RATE} Hz): a damaged or forged header")
    frames = declared_frames(sound_file)
    if frames is None:  # the length limit is kept while decoding (`AudioStream`)
        return
    if frames > max_seconds * rate:
        raise AudioInputError(name, f"the header claims {frames / rate:.0f} s, over the {max_seconds:g} s this reads")
    promised = _wav_promised_frames(data, sound_file)
    if promised is not None and promised > frames:
        raise AudioInputError(name, truncation(promised / rate, frames / rate))


def truncation(promised_seconds: float, held_seconds: float) -> str:
    """The one-line reason for a file that holds less audio than its header promises."""
    return (f"truncated: the header promises {promised_seconds:.2f} s, the file holds {held_seconds:.2f} s "
            "(an incomplete copy or download?)")


def check_complete(data: str | os.PathLike | bytes, name: str) -> None:
    """Refuse an MP3 or Ogg file cut short, which every decoder would score on what is left: an MP3 whose Xing /
    Info header declares more bytes of audio than follow it, an Ogg stream whose last page is cut or is not the
    end-of-stream page. (A WAV's truncation is found in its header, `check_header`; a FLAC decoder fails itself.)"""
    container = sniff_container(data)
    if container not in ("mp3", "ogg"):
        return
    with io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb") as handle:
        size = handle.seek(0, io.SEEK_END)
        problem = _mp3_shortfall(handle, size) if container == "mp3" else _ogg_shortfall(handle, size)
    if problem is not None:
        raise AudioInputError(name, f"truncated: {problem} (an incomplete copy or download?)")


_MP3_RATES = {3: (44_100, 48_000, 32_000), 2: (22_050, 24_000, 16_000), 0: (11_025, 12_000, 8_000)}  # by version


def _mp3_shortfall(handle: IO[bytes], size: int) -> str | None:
    """How an MPEG audio file falls short of the stream length its Xing / Info header declares (LAME and ffmpeg
    write one), or None when it holds it all or declares none."""
    handle.seek(0)
    head = handle.read(10)
    start = 0
    if head.startswith(b"ID3") and len(head) == 10:
        start = 10 + ((head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | head[9] & 0x7F)
        start += 10 if head[5] & 0x10 else 0
    handle.seek(start)
    frame = handle.read(64)
    if len(frame) < 4:
        return None
    version, layer, rate_index = frame[1] >> 3 & 3, frame[1] >> 1 & 3, frame[2] >> 2 & 3
    if version not in _MP3_RATES or layer != 1 or rate_index == 3:  # layer III, a valid rate
        return None
    mono = frame[3] >> 6 == 3
    tag = 4 + ((17 if mono else 32) if version == 3 else (9 if mono else 17))
    if frame[tag : tag + 4] not in (b"Xing", b"Info") or len(frame) < tag + 16:
        return None
    flags = struct.unpack(">I", frame[tag + 4 : tag + 8])[0]
    if not flags & 2:  # no byte count
        return None
    frames_field = flags & 1
    declared_frames = struct.unpack(">I", frame[tag + 8 : tag + 12])[0] if frames_field else None
    declared_bytes = struct.unpack(">I", frame[tag + 8 + 4 * frames_field : tag + 12 + 4 * frames_field])[0]
    held = size - start
    if held >= declared_bytes:
        return None
    if declared_frames is None:
        return f"the header promises {declared_bytes} bytes of audio, the file holds {held}"
    seconds = declared_frames * (1152 if version == 3 else 576) / _MP3_RATES[version][rate_index]
    return f"the header promises {seconds:.2f} s, the file holds about {seconds * held / declared_bytes:.2f} s"


_OGG_MAX_PAGE = 27 + 255 + 255 * 255


def _ogg_shortfall(handle: IO[bytes], size: int) -> str | None:
    """How an Ogg file's end shows it was cut: its last page is incomplete or is not marked end-of-stream; None
    when it ends with a complete end-of-stream page, or its end cannot be told (data after the last page)."""
    handle.seek(max(0, size - 2 * _OGG_MAX_PAGE))
    tail = handle.read()
    position = tail.rfind(b"OggS\x00")
    if position < 0 or len(tail) < position + 27:
        return "its last page is cut"
    segments = tail[position + 26]
    table = tail[position + 27 : position + 27 + segments]
    end = position + 27 + segments + sum(table)
    if len(table) < segments or end > len(tail):
        return "its last page is cut"
    if end < len(tail):
        return None
    if not tail[position + 5] & 0x04:
        return "the stream stops without its end-of-stream page"
    return None


_STREAMING_DATA_SIZE = 0x7FFF_0000  # writers to a pipe (espeak-ng, sox, ffmpeg) put 2**31 - 1 or 2**32 - 1 here


def _wav_promised_frames(data: str | os.PathLike | bytes, sound_file: soundfile.SoundFile) -> int | None:
    """The frames a RIFF/WAVE file's `data` chunk declares (libsndfile silently counts only those present), or None
    for other formats and for the placeholder sizes of streaming writers, which declare no length."""
    if sound_file.format != "WAV" or not sound_file.subtype.startswith(("PCM", "FLOAT", "DOUBLE", "ULAW", "ALAW")):
        return None
    if isinstance(data, bytes):
        head = data[:1 << 16]
    else:
        with open(data, "rb") as handle:
            head = handle.read(1 << 16)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    position, frame_bytes = 12, None
    while position + 8 <= len(head):
        chunk, size = head[position : position + 4], struct.unpack("<I", head[position + 4 : position + 8])[0]
        if chunk == b"fmt ":
            _, _, _, block_align = struct.unpack("<HIIH", head[position + 10 : position + 22])
            frame_bytes = block_align or None
        elif chunk == b"data":
            if frame_bytes is None or size == 0 or size >= _STREAMING_DATA_SIZE:
                return None
            return size // frame_bytes
        position += 8 + size + size % 2
    return None


def _soundfile_blocks(sound_file: soundfile.SoundFile, stream: AudioStream) -> Iterator[np.ndarray]:
    frames = max(1, int(stream.block_seconds * sound_file.samplerate))
    with sound_file:
        while True:
            try:
                block = sound_file.read(frames, dtype="float32", always_2d=True)
            except (soundfile.LibsndfileError, RuntimeError) as error:
                raise AudioInputError(stream.name, f"decoding failed mid-stream ({error})") from None
            if len(block):
                yield block
            if len(block) < frames:
                return


# ffmpeg and torchcodec choose a demuxer by probing, and some demuxers open the files or URLs their input names (HLS
# and other playlists, concat scripts, SDP): a 141-byte text file named `.wav` could make them read any file on the
# server. So the container is recognised here from its first bytes, only these audio and audio-video containers are
# decoded, and ffmpeg is told which demuxer to use (`-f`, `-format_whitelist`) and reads nothing but the bytes sent
# to its standard input (`-protocol_whitelist`). Each entry: the demuxer, the pattern of the file's first bytes.
_CONTAINERS = tuple((demuxer, re.compile(pattern, re.DOTALL)) for demuxer, pattern in (
    ("wav", rb"(RIFF|RF64|BW64)....WAVE"),
    ("avi", rb"RIFF....AVI "),
    ("w64", rb"riff\x2e\x91\xcf\x11"),
    ("aiff", rb"FORM....AIF[FC]"),
    ("flac", rb"fLaC"),
    ("ogg", rb"OggS"),
    ("matroska", rb"\x1a\x45\xdf\xa3"),  # MKA, MKV, WebM
    ("mov", rb"....(ftyp|moov|mdat|wide|free)"),  # MP4, M4A, 3GP, QuickTime
    ("asf", rb"\x30\x26\xb2\x75\x8e\x66\xcf\x11"),  # WMA
    ("caf", rb"caff"),
    ("au", rb"\.snd"),
    ("amr", rb"#!AMR"),
    ("ac3", rb"\x0b\x77"),
    ("aac", rb"\xff[\xf0\xf1\xf8\xf9]"),  # ADTS frame header
    ("mp3", rb"\xff[\xe0-\xff]"),  # MPEG audio frame header
))
_AFTER_ID3 = ("mp3", "aac")  # what an ID3v2 tag may precede
_SEEKING_DEMUXERS = ("mov",)  # MP4 may hold its index (moov) after the audio: the pipe read through ffmpeg's cache
FFMPEG_MEMORY_BYTES = 1 << 30  # address space of the ffmpeg process: it needs tens of MiB for audio
FFMPEG_STALL_SECONDS = 30.0  # wall clock ffmpeg may take to deliver the next block (or end) before it is killed
FEED_BYTES = 1 << 20


def ffmpeg_cpu_seconds(max_seconds: float) -> int:
    """The CPU time ffmpeg may use to decode at most `max_seconds` of audio: 30 s, plus 1 s per 20 s of audio."""
    return int(30 + max_seconds / 20)


def sniff_container(data: str | os.PathLike | bytes) -> str | None:
    """The ffmpeg demuxer of a file (one of `_CONTAINERS`) from its first bytes, past an ID3v2 tag; None when it
    starts like none of them (text, a playlist, an unknown format)."""
    with io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb") as handle:
        head, allowed = handle.read(16), None
        if head.startswith(b"ID3") and len(head) >= 10:
            size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | head[9] & 0x7F
            handle.seek(10 + size + (10 if head[5] & 0x10 else 0))  # the tag, and its footer if flagged
            head, allowed = handle.read(16), _AFTER_ID3
    for demuxer, pattern in _CONTAINERS:
        if pattern.match(head) and (allowed is None or demuxer in allowed):
            return demuxer
    return None


def _open_ffmpeg(stream: AudioStream, data: str | os.PathLike | bytes) -> Iterator[np.ndarray]:
    executable = shutil.which("ffmpeg")
    if executable is None:
        raise _DecoderUnavailable("no ffmpeg executable on PATH")
    demuxer = sniff_container(data)
    if demuxer is None:
        raise _DecoderUnavailable("not a known audio container (by its first bytes)")
    return _ffmpeg_blocks(executable, demuxer, stream, data)


def _ffmpeg_blocks(
    executable: str, demuxer: str, stream: AudioStream, data: str | os.PathLike | bytes
) -> Iterator[np.ndarray]:
    """Decode `data` with ffmpeg's `demuxer`, fed through a pipe, under a memory and CPU limit (`_limit`), killed
    (SIGKILL) when a block takes over `FFMPEG_STALL_SECONDS`; 16 kHz mono float32 blocks."""
    seeking = ["-read_ahead_limit", "-1", "-i", "cache:pipe:0"]  # the cache may read ahead as far as a seek goes
    command = [executable, "-nostdin", "-hide_banner", "-loglevel", "error",
               "-protocol_whitelist", "pipe,cache", "-format_whitelist", demuxer, "-f", demuxer,
               *(seeking if demuxer in _SEEKING_DEMUXERS else ["-i", "pipe:0"]), "-vn", "-map", "0:a:0", "-ac", "1", "-ar", str(stream.target_rate), "-f", "f32le", "pipe:1"]
    with tempfile.TemporaryFile() as stderr:  # a file: a full stderr pipe would deadlock
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
        feeder = threading.Thread(target=_feed, args=(process.stdin, data), daemon=True)
        try:
            _limit(process.pid, stream.max_seconds)  # before the first byte of input reaches it
            feeder.start()
            block_bytes = 4 * max(1, int(stream.block_seconds * stream.target_rate))
            while chunk := _read_block(process, block_bytes):
                if stream.info is None:
                    stream.info = AudioInfo(stream.target_rate, 1, "ffmpeg")
                yield np.frombuffer(chunk[: len(chunk) - len(chunk) % 4], dtype="<f4").astype(np.float32)
            if process.wait() != 0:
                raise _DecoderUnavailable(_ffmpeg_failure(process.returncode, stderr, stream.max_seconds))
        finally:
            if process.poll() is None:
                process.kill()
            process.stdout.close()
            process.wait()
            if feeder.ident is not None:
                feeder.join()


def _limit(pid: int, max_seconds: float) -> None:
    """Bound the address space (`FFMPEG_MEMORY_BYTES`) and CPU time (`ffmpeg_cpu_seconds`; the kernel kills with
    SIGKILL at the hard limit) of the process `pid`. Set from here after it started, not in `preexec_fn`, which
    can deadlock the child of a threaded server."""
    cpu = ffmpeg_cpu_seconds(max_seconds)
    resource.prlimit(pid, resource.RLIMIT_AS, (FFMPEG_MEMORY_BYTES, FFMPEG_MEMORY_BYTES))
    resource.prlimit(pid, resource.RLIMIT_CPU, (cpu, cpu))


def _feed(stdin: io.BufferedWriter, data: str | os.PathLike | bytes) -> None:
    """Write the input file or bytes to ffmpeg's standard input, `FEED_BYTES` at a time, then close it; stops
    quietly when ffmpeg has gone (it ended early, or was killed)."""
    try:
        with io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb") as source:
            while chunk := source.read(FEED_BYTES):
                stdin.write(chunk)
    except OSError:  # BrokenPipeError: ffmpeg exited
        pass
    finally:
        try:
            stdin.close()
        except OSError:
            pass


def _read_block(process: subprocess.Popen, size: int) -> bytes:
    """Up to `size` bytes of ffmpeg's output (fewer at its end), killing it when it produces nothing for
    `FFMPEG_STALL_SECONDS` (a spinning ffmpeg ignores SIGTERM, so SIGKILL)."""
    descriptor, parts, received = process.stdout.fileno(), [], 0
    while received < size:
        ready, _, _ = select.select([descriptor], [], [], FFMPEG_STALL_SECONDS)
        if not ready:
            process.kill()
            raise _DecoderUnavailable(f"ffmpeg stalled for {FFMPEG_STALL_SECONDS:g} s and was killed")
        part = os.read(descriptor, size - received)
        if not part:
            break
        parts.append(part)
        received += len(part)
    return b"".join(parts)


def _ffmpeg_failure(returncode: int, stderr: IO[bytes], max_seconds: float) -> str:
    """Why ffmpeg failed, in one line without ': ' (see `_short_reason`)."""
    if returncode == -signal.SIGKILL:
        return f"ffmpeg was killed at its limit of {ffmpeg_cpu_seconds(max_seconds)} CPU seconds"
    stderr.seek(0)
    lines = [line for line in stderr.read().decode(errors="replace").strip().splitlines()
             if not line.startswith(("[cache @", "    Last message repeated"))]  # the cache's notices
    if any("matches no streams" in line for line in lines):
        return "no audio stream in the file"
    return lines[-1] if lines else f"exit status {returncode}"


def _open_torchcodec(stream: AudioStream, data: str | os.PathLike | bytes) -> Iterator[np.ndarray]:
    try:
        from torchcodec.decoders import AudioDecoder
    except ImportError:
        raise _DecoderUnavailable("torchcodec is not installed") from None
    if sniff_container(data) is None:  # torchcodec probes the demuxer itself: only bytes of a known container
        raise _DecoderUnavailable("not a known audio container (by its first bytes)")
    try:  # bytes, never a path: no file name for the probe to match (image sequences, extension hints)
        decoded = AudioDecoder(data if isinstance(data, bytes) else Path(data).read_bytes()).get_all_samples()
    except (RuntimeError, ValueError) as error:
        raise _DecoderUnavailable(error) from None
    samples = decoded.data.numpy().T  # (frames, channels)
    step = max(1, int(stream.block_seconds * decoded.sample_rate))
    blocks = (samples[start : start + step] for start in range(0, len(samples), step))
    return stream._resampled(blocks, decoded.sample_rate, "torchcodec")


_OPENERS = {"soundfile": _open_soundfile, "ffmpeg": _open_ffmpeg, "torchcodec": _open_torchcodec}


def load_audio(
    source: AudioSourceLike,
    sampling_rate: int | None = None,
    target_rate: int = SAMPLING_RATE,
    decoders: Sequence[str] = DEFAULT_DECODERS,
) -> np.ndarray:
    """Decode a whole input to a `(samples,)` float32 mono waveform at `target_rate` (short clips; see `AudioStream`).

    `sampling_rate` is the rate of an array `source`. Raises `AudioInputError`.
    """
    blocks = list(AudioStream(AudioSource.wrap(source, sampling_rate), target_rate, decoders=decoders))
    return np.concatenate(blocks)


def has_audio_extension(name: str | os.PathLike) -> bool:
    """Whether the file name `name` ends in one of `AUDIO_EXTENSIONS` (any case; a hidden file `.flac` does not)."""
    return os.path.splitext(os.fspath(name))[1].lower() in AUDIO_EXTENSIONS


def find_audio_files(path: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """The entries with an audio extension (see `AUDIO_EXTENSIONS`) in a folder, sorted; a file path is returned as
    is. Entries that are not regular files (a FIFO, a symbolic link loop) are kept, so decoding reports them."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    candidates = path.rglob("*") if recursive else path.iterdir()
    return sorted(p for p in candidates if has_audio_extension(p) and not p.is_dir())
