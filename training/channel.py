"""Channel conditions for robustness evaluation and training augmentation: codecs, telephone bands, packet loss,
jitter, noise, reverberation, gain and clipping, each named by a short SPEC string.

    perturb(waveform, 16_000, "opus:12k", seed=0)               # one condition
    perturb(waveform, 16_000, "mulaw+noise:snr=20", seed=(0, 7)) # conditions chained left to right
    channel = parse_channel("reverb:rt60=0.6")                  # an `Augmentation`: (waveform, rate, rng) -> waveform

A SPEC is one or more conditions joined by `+`; a condition is `NAME`, `NAME:VALUE` (the condition's main
parameter) or `NAME:KEY=VALUE,KEY=VALUE`. Every condition returns float32 audio of the input's length at the
input's rate:

| name | parameters (default) | what it does |
|---|---|---|
| `mp3`, `aac`, `opus`, `vorbis` | `bitrate` (64k, 64k, 24k, 64k) | ffmpeg round trip through libmp3lame / aac / libopus / libvorbis |
| `mulaw`, `alaw` | `rate` (8000) | G.711 mu-law / A-law at `rate` Hz (ffmpeg pcm_mulaw / pcm_alaw) |
| `g722` | | G.722 ADPCM at 16 kHz (ffmpeg g722) |
| `gsm` | | GSM 06.10 full rate at 8 kHz (ffmpeg libgsm) |
| `bandpass` | `low` (300), `high` (3400) | 8th-order Butterworth band-pass, the telephone band by default |
| `packet-loss` | `rate` (0.1), `ms` (20) | each `ms` packet is lost (zeroed) with probability `rate` |
| `jitter` | `ms` (20), `packet-ms` (20) | each packet is played from a source position up to `ms` late |
| `noise` | `snr` (10), `kind` (white / pink), `folder` | noise at exactly `snr` dB over the whole waveform: generated, or from a folder of audio files |
| `reverb` | `rt60` (0.5), `room` (6x5x3), `folder` | a pyroomacoustics shoe-box room impulse response, or a measured one from a folder |
| `gain` | `db` (-20) | scales by `db` decibels (no clipping) |
| `clip` | `db` (-6) | hard clipping at `db` decibels below the waveform's peak |

Randomness (packet draws, noise, room geometry, which file of a folder) comes only from the generator passed in,
so `perturb` with the same seed returns the same samples; the codecs themselves are deterministic.
"""

from __future__ import annotations

import functools
import math
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.signal

from training.augmentation.noise_and_reverb import AdditiveNoise, Reverberation, apply_impulse_response
from training.augmentation.waveform import add_at_snr, as_waveform

class ChannelSpecError(ValueError):
    """A SPEC string that names no condition, or a parameter that condition does not take."""


# ----------------------------------------------------------------------------------------------- codecs (ffmpeg)


@dataclass(frozen=True)
class _Codec:
    encoder: str
    suffix: str
    """the container the encoded audio is written to: one whose decoder removes the encoder's delay"""
    rate: int | None = None
    """the codec's fixed sample rate (None: the input's)"""
    delay: int = 0
    """the decoder's output delay in samples at `rate` that the container does not remove"""


CODECS = {
    "mp3": _Codec("libmp3lame", ".mp3"),
    "aac": _Codec("aac", ".m4a"),
    "opus": _Codec("libopus", ".ogg"),
    "vorbis": _Codec("libvorbis", ".ogg"),
    "mulaw": _Codec("pcm_mulaw", ".wav"),
    "alaw": _Codec("pcm_alaw", ".wav"),
    "g722": _Codec("g722", ".wav", rate=16_000, delay=22),  # the QMF filter bank's delay
    "gsm": _Codec("libgsm", ".gsm", rate=8_000),
}


def _ffmpeg(arguments: list[str], data: bytes | None = None) -> bytes:
    executable = shutil.which("ffmpeg")
    if executable is None:
        raise RuntimeError("codec conditions need ffmpeg on PATH (apt-get install ffmpeg)")
    command = [executable, "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1", *arguments]
    completed = subprocess.run(command, input=data, capture_output=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({' '.join(command)}): {completed.stderr.decode(errors='replace').strip()}")
    return completed.stdout


def codec_round_trip(waveform: np.ndarray, sample_rate: int, codec: str, bitrate: str | None = None,
                     rate: int | None = None) -> np.ndarray:
    """Encode `waveform` `(samples,)` with one of `CODECS` through ffmpeg and decode it back to `sample_rate`.

    The audio is resampled to `rate` (or the codec's fixed rate) before encoding; the decoded audio, its codec delay
    removed (by the container, or by `_Codec.delay`), is cut or zero-padded to the input's length. Returns float32 `(samples,)`.
    """
    spec = CODECS[codec]
    rate = spec.rate or rate or sample_rate
    raw = ["-f", "f32le", "-ac", "1"]
    with tempfile.TemporaryDirectory(prefix="nes2net-codec.") as folder:
        encoded = str(Path(folder) / f"encoded{spec.suffix}")
        _ffmpeg([*raw, "-ar", str(sample_rate), "-i", "pipe:0", "-ar", str(rate), "-c:a", spec.encoder,
                 *(["-b:a", bitrate] if bitrate else []), encoded], np.asarray(waveform, dtype="<f4").tobytes())
        decoded = np.frombuffer(_ffmpeg(["-i", encoded, *raw, "-ar", str(sample_rate), "pipe:1"]), dtype="<f4")
    decoded = decoded[round(spec.delay * sample_rate / rate) :]
    output = np.zeros(len(waveform), dtype=np.float32)
    output[: min(len(decoded), len(output))] = decoded[: len(output)]
    return output


# ----------------------------------------------------------------------------------------------- the conditions


def _bandpass(x: np.ndarray, sample_rate: int, low: float, high: float) -> np.ndarray:
    high = min(high, 0.499 * sample_rate)
    if not 0 < low < high:
        raise ChannelSpecError(f"bandpass needs 0 < low < high < {sample_rate / 2:g} Hz, got low={low:g}, high={high:g}")
    sections = scipy.signal.butter(4, [low, high], btype="bandpass", fs=sample_rate, output="sos")
    return scipy.signal.sosfilt(sections, x)


def _packets(length: int, sample_rate: int, ms: float) -> int:
    size = round(sample_rate * ms / 1000)
    if size < 1:
        raise ChannelSpecError(f"a packet of {ms:g} ms holds no sample at {sample_rate} Hz")
    return size


def _packet_loss(x: np.ndarray, sample_rate: int, rng: np.random.Generator, rate: float, ms: float) -> np.ndarray:
    """Zero each `ms` packet with probability `rate` (no concealment; `_check_packet_loss` bounds both when parsed)."""
    size = _packets(len(x), sample_rate, ms)
    lost = rng.random(-(-len(x) // size)) < rate
    return np.where(np.repeat(lost, size)[: len(x)], 0.0, x)


def _jitter(x: np.ndarray, sample_rate: int, rng: np.random.Generator, ms: float, packet_ms: float) -> np.ndarray:
    """Packet `k` (of `packet_ms`) plays the source from `k * packet - d_k`, `d_k` uniform in [0, ms]: the stream
    stutters back by up to `ms` at packet boundaries, as a playout buffer does when packets arrive late."""
    size = _packets(len(x), sample_rate, packet_ms)
    delays = rng.integers(0, round(sample_rate * ms / 1000) + 1, size=-(-len(x) // size))
    starts = np.maximum(np.arange(len(delays)) * size - delays, 0)
    positions = (starts[:, None] + np.arange(size)[None, :]).reshape(-1)[: len(x)]
    return x[np.minimum(positions, len(x) - 1)]


def _generated_noise(length: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(length)
    if kind == "white":
        return white
    if kind == "pink":  # 1/f power: amplitude 1/sqrt(f) above the first bin
        spectrum = np.fft.rfft(white)
        frequencies = np.arange(len(spectrum), dtype=np.float64)
        spectrum /= np.sqrt(np.maximum(frequencies, 1.0))
        return np.fft.irfft(spectrum, n=length)
    raise ChannelSpecError(f"noise kind must be white or pink, got {kind!r}")


@functools.lru_cache(maxsize=8)
def _noise_folder(folder: str, snr: float) -> AdditiveNoise:
    return AdditiveNoise(folder, snr_range=(snr, snr))


@functools.lru_cache(maxsize=8)
def _rir_folder(folder: str) -> Reverberation:
    return Reverberation(folder)


def _noise(x: np.ndarray, sample_rate: int, rng: np.random.Generator, snr: float, kind: str,
           folder: str | None) -> np.ndarray:
    if folder is not None:
        return _noise_folder(folder, snr)(x, sample_rate, rng)
    return add_at_snr(x, _generated_noise(len(x), kind, rng), snr)


MAX_IMAGE_ORDER = 150  # image sources per wall of a simulated room: RT60 of about 1.1 s in the default 6x5x3 m room


def room_acoustics(rt60: float, room: Sequence[float], margin: float = 0.5) -> tuple[float, int]:
    """The wall absorption and image order that give `rt60` seconds (Sabine) in a shoe-box `room` (metres); a
    `ChannelSpecError` when the room cannot have that RT60 or would take over `MAX_IMAGE_ORDER` images to simulate."""
    import pyroomacoustics

    room = [float(side) for side in room]
    if len(room) != 3 or min(room) <= 2 * margin:
        raise ChannelSpecError(f"reverb room must be three sides longer than {2 * margin:g} m, got {room}")
    try:
        absorption, max_order = pyroomacoustics.inverse_sabine(rt60, room)
    except ValueError:
        raise ChannelSpecError(f"reverb rt60={rt60:g} s is too short for a {'x'.join(f'{side:g}' for side in room)} m "
                               "room (its walls cannot absorb that much)") from None
    if max_order > MAX_IMAGE_ORDER:
        raise ChannelSpecError(f"reverb rt60={rt60:g} s in a {'x'.join(f'{side:g}' for side in room)} m room needs "
                               f"{max_order} image orders to simulate, over the {MAX_IMAGE_ORDER} allowed")
    return float(absorption), int(max_order)


def simulated_room_response(sample_rate: int, rt60: float, room: Sequence[float], rng: np.random.Generator,
                            margin: float = 0.5) -> np.ndarray:
    """The impulse response `(taps,)` from a source to a microphone placed at random (at least `margin` metres from
    the walls) in a shoe-box `room` (metres) whose absorption and image order give `rt60` seconds (Sabine)."""
    import pyroomacoustics

    room = [float(side) for side in room]
    absorption, max_order = room_acoustics(rt60, room, margin)
    shoebox = pyroomacoustics.ShoeBox(room, fs=sample_rate, materials=pyroomacoustics.Material(absorption),
                                      max_order=max_order)
    low, high = np.full(3, margin), np.asarray(room) - margin
    shoebox.add_source(rng.uniform(low, high).tolist())
    shoebox.add_microphone(rng.uniform(low, high).tolist())
    shoebox.compute_rir()
    return np.asarray(shoebox.rir[0][0], dtype=np.float64)


def _room_sides(room: str) -> list[float]:
    try:
        return [float(side) for side in room.lower().split("x")]
    except ValueError:
        raise ChannelSpecError(f"reverb room must read LENGTHxWIDTHxHEIGHT in metres, got {room!r}") from None


def _check_reverb(rt60: float, room: str, folder: str | None) -> None:
    if folder is None:
        room_acoustics(rt60, _room_sides(room))


def _reverb(x: np.ndarray, sample_rate: int, rng: np.random.Generator, rt60: float, room: str,
            folder: str | None) -> np.ndarray:
    if folder is not None:
        return _rir_folder(folder)(x, sample_rate, rng)
    return apply_impulse_response(x, simulated_room_response(sample_rate, rt60, _room_sides(room), rng))


def _check_packet_loss(rate: float, ms: float) -> None:
    if not 0 <= rate <= 1 or ms <= 0:
        raise ChannelSpecError(f"packet-loss needs a rate in [0, 1] and ms > 0, got rate={rate:g}, ms={ms:g}")


def _check_bandpass(low: float, high: float) -> None:
    if not 0 < low < high:
        raise ChannelSpecError(f"bandpass needs 0 < low < high, got low={low:g}, high={high:g}")


def _clip(x: np.ndarray, db: float) -> np.ndarray:
    level = float(np.abs(x).max()) * 10.0 ** (-abs(db) / 20)
    return np.clip(x, -level, level)


@dataclass(frozen=True)
class _Condition:
    apply: Callable[..., np.ndarray]
    """`(x float64 (samples,), sample_rate, rng, **parameters) -> (samples,)`"""
    defaults: dict[str, object]
    """parameter -> default; the first is the condition's main parameter (`NAME:VALUE`)"""
    check: Callable[..., None] | None = None
    """`(**parameters) -> None`, raising `ChannelSpecError` for parameters it cannot apply: run when a SPEC is parsed,
    so a bad SPEC fails before any scoring"""


def _codec_condition(name: str, **defaults: object) -> _Condition:
    return _Condition(lambda x, sample_rate, rng, **options: codec_round_trip(x, sample_rate, name, **options),
                      defaults)


CONDITIONS: dict[str, _Condition] = {
    "mp3": _codec_condition("mp3", bitrate="64k"),
    "aac": _codec_condition("aac", bitrate="64k"),
    "opus": _codec_condition("opus", bitrate="24k"),
    "vorbis": _codec_condition("vorbis", bitrate="64k"),
    "mulaw": _codec_condition("mulaw", rate=8000),
    "alaw": _codec_condition("alaw", rate=8000),
    "g722": _codec_condition("g722"),
    "gsm": _codec_condition("gsm"),
    "bandpass": _Condition(lambda x, sample_rate, rng, low, high: _bandpass(x, sample_rate, low, high),
                           {"low": 300.0, "high": 3400.0}, _check_bandpass),
    "packet-loss": _Condition(_packet_loss, {"rate": 0.1, "ms": 20.0}, _check_packet_loss),
    "jitter": _Condition(lambda x, sample_rate, rng, ms, packet_ms: _jitter(x, sample_rate, rng, ms, packet_ms),
                         {"ms": 20.0, "packet-ms": 20.0}),
    "noise": _Condition(_noise, {"snr": 10.0, "kind": "white", "folder": None}),
    "reverb": _Condition(_reverb, {"rt60": 0.5, "room": "6x5x3", "folder": None}, _check_reverb),
    "gain": _Condition(lambda x, sample_rate, rng, db: x * 10.0 ** (db / 20), {"db": -20.0}),
    "clip": _Condition(lambda x, sample_rate, rng, db: _clip(x, db), {"db": -6.0}),
}

# ----------------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Step:
    """One condition of a channel and its parameters (defaults filled in)."""

    name: str
    parameters: dict[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        """`NAME:MAIN=VALUE[,KEY=VALUE...]`: the main parameter always, the others where they differ from the default."""
        defaults = CONDITIONS[self.name].defaults
        shown = [f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
                 for number, (key, value) in enumerate(self.parameters.items())
                 if number == 0 or value != defaults[key]]
        return self.name + (":" + ",".join(shown) if shown else "")


def _convert(value: str, default: object, name: str, key: str) -> object:
    if isinstance(default, float):
        try:
            number = float(value)
        except ValueError:
            raise ChannelSpecError(f"{name}: {key} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ChannelSpecError(f"{name}: {key} must be a finite number, got {value!r}")
        return number
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise ChannelSpecError(f"{name}: {key} must be an integer, got {value!r}") from None
    return value


def _parse_step(text: str) -> Step:
    name, _, arguments = text.strip().partition(":")
    name = name.strip().lower()
    if name not in CONDITIONS:
        raise ChannelSpecError(f"unknown channel condition {name!r} in {text!r}; known: {', '.join(CONDITIONS)}")
    defaults = CONDITIONS[name].defaults
    parameters = dict(defaults)
    for number, argument in enumerate(part for part in arguments.split(",") if part.strip()):
        key, separator, value = argument.partition("=")
        if not separator:
            if number or not defaults:
                raise ChannelSpecError(f"{name}: expected KEY=VALUE, got {argument!r}")
            key, value = next(iter(defaults)), argument
        key = key.strip().lower()
        if key not in defaults:
            known = ", ".join(defaults) or "no parameters"
            raise ChannelSpecError(f"{name} takes no parameter {key!r} (it takes {known})")
        parameters[key] = _convert(value.strip(), defaults[key], name, key)
    check = CONDITIONS[name].check
    if check is not None:
        check(**{key.replace("-", "_"): value for key, value in parameters.items()})
    return Step(name, parameters)


@dataclass(frozen=True)
class Channel:
    """A chain of conditions; calling it is an `Augmentation`: `(waveform (samples,), sample_rate, rng)` -> float32
    `(samples,)` of the same length."""

    steps: tuple[Step, ...]

    def __str__(self) -> str:
        return "+".join(str(step) for step in self.steps)

    def __call__(self, waveform: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        x = as_waveform(waveform)
        for step in self.steps:
            options = {key.replace("-", "_"): value for key, value in step.parameters.items()}
            x = np.asarray(CONDITIONS[step.name].apply(x, sample_rate, rng, **options), dtype=np.float64)
        return x.astype(np.float32)


def parse_channel(spec: str) -> Channel:
    """The `Channel` a SPEC string names (see the module docstring); raises `ChannelSpecError` naming the problem."""
    if not spec.strip():
        raise ChannelSpecError("empty channel SPEC")
    return Channel(tuple(_parse_step(part) for part in spec.split("+")))


def perturb(waveform: np.ndarray, sample_rate: int, spec: str, seed: int | Sequence[int]) -> np.ndarray:
    """`waveform` `(samples,)` through the channel `spec`, its randomness drawn from `numpy.random.default_rng(seed)`
    (an int, or a sequence such as `(seed, trial_index)`). Returns float32 `(samples,)` at `sample_rate`."""
    return parse_channel(spec)(waveform, sample_rate, np.random.default_rng(seed))


def condition_slug(spec: str) -> str:
    """A file-name-safe form of a SPEC (`noise:snr=5` -> `noise_snr=5`)."""
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", spec).strip("_")
