"""Partially spoofed utterances made from real audio: genuine speech with machine-made stretches spliced in.

From any generic-layout corpus (`bonafide/` + `spoof/` folders or a metadata table, see `generic.py`), every bona fide
clip of a split hosts `splices_per_host` spliced versions of itself (and is kept once as is, as a bona fide row):
`1..max_segments` spoofed pieces, each cut from a spoof clip of the same split at word-like boundaries, either
inserted at a pause of the host or substituted for one of its word-like stretches. Boundaries are found by an energy
detector on 10 ms frames (`word_boundaries`); every piece is loudness-matched to the host's speech (RMS over the
frames the detector calls speech) and joined either hard or with a 10 ms raised-cosine cross-fade.

From a paired vocoded corpus (`nes2net data build vocoded`: every genuine clip next to its copy-synthesis by each
vocoder, sharing a `pair_id`), a host's splices are paired instead (`make_paired_splice`): stretches of the host are
replaced by the same stretches of one of its own copies, so speaker, room, words and timing stay the host's and only
the vocoder's trace is left to find (the hardest and most realistic splice).

Every boundary and length lies on the 10 ms grid, so the labels are exact: a 10 ms frame is spoof when any of its
samples comes from a spoof clip (a cross-fade's mixed frame included), and a segment of a coarser resolution
(20 ... 640 ms, PartialSpoof's) is spoof when any of its frames is. Labels use the corpus convention, 1 = bona fide.

The result is written in the PartialSpoof layout (`write_splice_corpus`), so the PartialSpoof builder reads it with
its segment labels at every resolution; `SplicesBuilder` (`nes2net data build splices ROOT OUT`) does both in one go.
Splits keep their sources apart: a split only ever mixes clips of that split, and where the source table has an
`unseen_in_train` column the test split only uses clips flagged true there (generators and speakers held out of
training). Everything is drawn from one `numpy` generator seeded by `seed`: the same source gives the same corpus.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from modeling_nes2net.audio import load_audio
from modeling_nes2net.localisation import pool_segments, true_runs

from .generic import GenericBuilder
from .layout import CorpusBuilder, CorpusScan
from .partialspoof import PartialSpoofBuilder
from .schema import ATTACK_UNKNOWN, BONAFIDE, SAMPLING_RATE, SPOOF, Utterance

FRAME_SAMPLES = SAMPLING_RATE // 100  # the 10 ms label grid
RESOLUTIONS_MS = (10, 20, 40, 80, 160, 320, 640)
"""The label resolutions written: PartialSpoof's 20-640 ms, and the 10 ms frames they are made from."""
SPLIT_NAMES = {"train": "train", "dev": "dev", "validation": "dev", "test": "eval", "eval": "eval"}
"""Source split -> PartialSpoof split."""
HELD_OUT_SPLIT = "eval"
UNSEEN_COLUMN = "unseen_in_train"
PAIR_COLUMN = "pair_id"
"""The paired vocoded corpus' column naming the genuine clip a row was made from (see `make_paired_splice`)."""
SPEECH_DB_BELOW_PEAK = 35.0


@dataclass(frozen=True)
class SpliceOptions:
    """How splices are drawn. Lengths in seconds; they are rounded to the 10 ms grid."""

    splices_per_host: int = 2
    max_segments: int = 3
    min_segment_seconds: float = 0.2
    max_segment_seconds: float = 1.6
    crossfade_probability: float = 0.5
    substitute_probability: float = 0.5
    seed: int = 0


@dataclass(frozen=True)
class Splice:
    """One spliced utterance: `waveform` `(samples,)` float32 at 16 kHz and `frame_labels` `(samples // 160,)` int8
    (1 bona fide, 0 spoof) per 10 ms frame; `generators` names the spoof sources used, in order."""

    waveform: np.ndarray
    frame_labels: np.ndarray
    generators: tuple[str, ...]


def frame_energy_db(waveform: np.ndarray) -> np.ndarray:
    """Energy in dB of each whole 10 ms frame: `(samples,)` -> `(samples // 160,)`."""
    frames = waveform[: len(waveform) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-10)


def speech_frames(waveform: np.ndarray) -> np.ndarray:
    """Bool per 10 ms frame: within `SPEECH_DB_BELOW_PEAK` dB of the loudest frame (a plain energy detector)."""
    energy = frame_energy_db(waveform)
    return energy > energy.max() - SPEECH_DB_BELOW_PEAK if len(energy) else energy.astype(bool)


def word_boundaries(waveform: np.ndarray) -> np.ndarray:
    """Word-like boundaries, as 10 ms frame indices (ascending, within `(0, frames)`): the quietest frame of every
    pause the energy detector finds, and every local energy minimum (over +-50 ms) below the median energy, the dips
    between words of connected speech."""
    energy = frame_energy_db(waveform)
    if len(energy) < 3:
        return np.zeros(0, np.int64)
    smooth = np.convolve(energy, np.ones(3) / 3, mode="same")
    padded = np.pad(smooth, 5, mode="edge")
    neighbourhood = np.lib.stride_tricks.sliding_window_view(padded, 11).min(axis=1)
    dips = np.flatnonzero((smooth <= neighbourhood) & (smooth < np.median(smooth)))
    speech = speech_frames(waveform)
    pauses = []
    for start, end in true_runs(~speech):
        pauses.append(start + int(np.argmin(smooth[start:end])))
    boundaries = np.unique(np.concatenate([dips, np.asarray(pauses, np.int64)]))
    return boundaries[(boundaries > 0) & (boundaries < len(energy))]


def speech_rms(waveform: np.ndarray) -> float:
    """RMS over the frames the energy detector calls speech (the loudness that is matched)."""
    frames = waveform[: len(waveform) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    speech = frames[speech_frames(waveform)] if len(frames) else frames
    return float(np.sqrt(np.mean(speech.astype(np.float64) ** 2))) if speech.size else 0.0


def cut_piece(waveform: np.ndarray, frames: int, min_frames: int, rng: np.random.Generator) -> np.ndarray:
    """About `frames` (at least `min_frames`) 10 ms frames of `waveform`, from one word-like boundary to another where
    the clip has them (the end boundary nearest to the wanted length), else from a random frame.
    Returns `(frames' * 160,)`."""
    total = len(waveform) // FRAME_SAMPLES
    frames = min(frames, total)
    boundaries = np.concatenate([[0], word_boundaries(waveform)])
    starts = boundaries[boundaries + frames <= total]
    start = int(rng.choice(starts)) if len(starts) else 0
    ends = boundaries[boundaries > start]
    if len(ends):
        nearest = int(ends[np.argmin(np.abs(ends - (start + frames)))])
        if abs(nearest - start - frames) <= frames // 2 and nearest - start >= min(min_frames, frames):
            frames = nearest - start
    return waveform[start * FRAME_SAMPLES : (start + frames) * FRAME_SAMPLES]


def _raised_cosine(length: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(length) + 0.5) / length)).astype(np.float32)


def join(parts: list[tuple[np.ndarray, int]], crossfade: bool) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate `(waveform, label)` parts (lengths multiples of 160 samples, each longer than 10 ms); with
    `crossfade`, consecutive parts of different labels overlap by one 10 ms frame under a raised-cosine fade, and that
    mixed frame is labelled spoof. Returns the waveform and its 10 ms frame labels."""
    fade = _raised_cosine(FRAME_SAMPLES)
    waveform, labels = parts[0][0].astype(np.float32), [np.full(len(parts[0][0]) // FRAME_SAMPLES, parts[0][1])]
    previous_label = parts[0][1]
    for part, label in parts[1:]:
        part = part.astype(np.float32)
        part_labels = np.full(len(part) // FRAME_SAMPLES, label)
        if crossfade and label != previous_label:
            mixed = waveform[-FRAME_SAMPLES:] * fade[::-1] + part[:FRAME_SAMPLES] * fade
            waveform = np.concatenate([waveform[:-FRAME_SAMPLES], mixed, part[FRAME_SAMPLES:]])
            labels[-1] = labels[-1][:-1]
            part_labels[0] = SPOOF
        else:
            waveform = np.concatenate([waveform, part])
        labels.append(part_labels)
        previous_label = label
    return waveform, np.concatenate(labels).astype(np.int8)


def make_splice(
    host: np.ndarray,
    spoof_sources: list[tuple[str, np.ndarray]],
    rng: np.random.Generator,
    options: SpliceOptions = SpliceOptions(),
) -> Splice:
    """Splice `1..max_segments` pieces of the `(generator, waveform)` spoof sources into the bona fide `host`, each
    inserted at a word-like boundary or substituted for the stretch up to a later one."""
    host = host[: len(host) // FRAME_SAMPLES * FRAME_SAMPLES]
    min_frames = round(options.min_segment_seconds * 100)
    max_frames = max(min_frames, round(options.max_segment_seconds * 100))
    boundaries = word_boundaries(host)
    boundaries = boundaries[(boundaries >= 2) & (boundaries <= len(host) // FRAME_SAMPLES - 2)]
    if not len(boundaries):
        boundaries = np.asarray([len(host) // FRAME_SAMPLES // 2])
    count = int(rng.integers(1, options.max_segments + 1))
    chosen = np.sort(rng.choice(boundaries, size=min(count, len(boundaries)), replace=False))
    target = speech_rms(host)
    parts: list[tuple[np.ndarray, int]] = []
    generators, position = [], 0
    for index, boundary in enumerate(chosen):
        if boundary < position + 2:  # keep at least 20 ms of the host between two pieces
            continue
        parts.append((host[position * FRAME_SAMPLES : boundary * FRAME_SAMPLES], BONAFIDE))
        generator, source = spoof_sources[int(rng.integers(len(spoof_sources)))]
        piece = cut_piece(source, int(rng.integers(min_frames, max_frames + 1)), min_frames, rng)
        loudness = speech_rms(piece)
        parts.append((piece * (target / loudness if loudness > 0 else 1.0), SPOOF))
        generators.append(generator)
        position = int(boundary)
        if rng.random() < options.substitute_probability:
            limit = chosen[index + 1] - 2 if index + 1 < len(chosen) else len(host) // FRAME_SAMPLES - 2
            reach = min(limit, boundary + max_frames)
            later = boundaries[(boundaries >= boundary + min_frames) & (boundaries <= reach)]
            if len(later):
                position = int(rng.choice(later))
    parts.append((host[position * FRAME_SAMPLES :], BONAFIDE))
    waveform, labels = join(parts, crossfade=rng.random() < options.crossfade_probability)
    peak = float(np.abs(waveform).max())
    if peak > 0.99:  # loudness matching may clip a quiet piece pushed up: scale the whole utterance instead
        waveform = waveform * (0.99 / peak)
    return Splice(waveform.astype(np.float32), labels, tuple(generators))


def make_paired_splice(
    host: np.ndarray, copy: tuple[str, np.ndarray], rng: np.random.Generator, options: SpliceOptions = SpliceOptions()
) -> Splice:
    """Replace `1..max_segments` stretches of the bona fide `host` by the same stretches of `copy`, a
    `(vocoder, waveform)` copy-synthesis of it (same length): each from a word-like boundary to a later one,
    `min_segment_seconds`..`max_segment_seconds` long, at least 20 ms of the host between two."""
    vocoder, synthesised = copy
    if len(synthesised) != len(host):
        raise ValueError(f"the {vocoder} copy has {len(synthesised)} samples, its host {len(host)}: not a paired copy")
    frames = len(host) // FRAME_SAMPLES
    host, synthesised = host[: frames * FRAME_SAMPLES], synthesised[: frames * FRAME_SAMPLES]
    min_frames = round(options.min_segment_seconds * 100)
    max_frames = max(min_frames, round(options.max_segment_seconds * 100))
    cuts = word_boundaries(host)
    boundaries = cuts[(cuts >= 2) & (cuts <= frames - 2 - min_frames)]
    if not len(boundaries):
        boundaries = np.asarray([max(2, (frames - min_frames) // 2)])
    count = int(rng.integers(1, options.max_segments + 1))
    starts = np.sort(rng.choice(boundaries, size=min(count, len(boundaries)), replace=False))
    parts: list[tuple[np.ndarray, int]] = []
    position = 0
    for index, start in enumerate(starts):
        limit = starts[index + 1] - 2 if index + 1 < len(starts) else frames - 2
        if start < position + 2 or limit - start < min_frames:
            continue
        ends = cuts[(cuts >= start + min_frames) & (cuts <= min(limit, start + max_frames))]
        end = int(rng.choice(ends)) if len(ends) else int(start + min(max_frames, limit - start))
        parts += [(host[position * FRAME_SAMPLES : start * FRAME_SAMPLES], BONAFIDE),
                  (synthesised[start * FRAME_SAMPLES : end * FRAME_SAMPLES], SPOOF)]
        position = end
    if not parts:  # too short for a stretch between boundaries: the copy from the third frame on
        parts, position = [(host[: 2 * FRAME_SAMPLES], BONAFIDE), (synthesised[2 * FRAME_SAMPLES :], SPOOF)], frames
    if position < frames:
        parts.append((host[position * FRAME_SAMPLES :], BONAFIDE))
    waveform, labels = join(parts, crossfade=rng.random() < options.crossfade_probability)
    return Splice(waveform.astype(np.float32), labels, (vocoder,))


def audibly_differs(waveform: np.ndarray, original: np.ndarray) -> bool:
    """Whether `waveform` differs from `original` once both are written as 16-bit PCM (a paired splice whose copy
    stretches equal the host's there, as a vocoder's digital silence can, is the genuine clip again)."""
    return len(waveform) != len(original) or bool(np.abs(waveform - original).max(initial=0.0) >= 1 / 32768)


def segment_labels(frame_labels: np.ndarray, resolution_ms: int) -> np.ndarray:
    """10 ms frame labels -> labels of `resolution_ms` segments: a segment is spoof (0) when any of its frames is;
    the last, partial segment counts too. `(frames,)` -> `(ceil(frames / (resolution_ms / 10)),)` int8."""
    return pool_segments(frame_labels, resolution_ms).astype(np.int8)


def write_splice_corpus(
    source_root: str | Path,
    output_root: str | Path,
    options: SpliceOptions = SpliceOptions(),
    metadata: str | None = None,
) -> list[str]:
    """Write a PartialSpoof-layout corpus of splices made from the generic-layout corpus at `source_root`.

    Layout written: `protocols/PartialSpoof_LA_cm_protocols/PartialSpoof.LA.cm.{split}.trl.txt`
    (`SPEAKER FILE - SYSTEM KEY`), `{split}/con_wav/FILE.wav` and `segment_labels/{split}_seglab_{seconds}.npy` (dicts
    utterance -> array of '1' / '0' strings) for every resolution of `RESOLUTIONS_MS`. Returns the splits written
    (a split needs bona fide and spoof clips).
    """
    source_root, output_root = Path(source_root), Path(output_root)
    builder = GenericBuilder(metadata=metadata)
    scan = builder.scan(source_root)
    errors = scan.errors()
    if errors:
        raise ValueError(f"{source_root}: not a generic-layout corpus ({errors[0]})")
    rng = np.random.default_rng(options.seed)
    written = []
    for source_split, utterances in scan.splits.items():
        split = SPLIT_NAMES.get(source_split, source_split)
        if split == HELD_OUT_SPLIT and any(UNSEEN_COLUMN in u.metadata for u in utterances):
            utterances = [u for u in utterances if str(u.metadata.get(UNSEEN_COLUMN)).lower() == "true"]
        hosts = [u for u in utterances if u.label == BONAFIDE]
        spoofs = [(_generator(u), load_audio(u.audio_path)) for u in utterances if u.label == SPOOF]
        if not hosts or not spoofs:
            continue
        copies: dict[str, list[tuple[str, np.ndarray]]] = {}
        for utterance, spoof in zip([u for u in utterances if u.label == SPOOF], spoofs):
            if utterance.metadata.get(PAIR_COLUMN):
                copies.setdefault(utterance.metadata[PAIR_COLUMN], []).append(spoof)
        _write_split(output_root, split, hosts, spoofs, rng, options, copies)
        written.append(split)
    return written


def _generator(utterance: Utterance) -> str:
    """The spoof clip's `attack`, or its `system` column where the table names the generator there."""
    name = utterance.attack
    if name == ATTACK_UNKNOWN:
        name = utterance.metadata.get("system") or ATTACK_UNKNOWN
    return str(name).replace(" ", "_")


def _write_split(
    root: Path,
    split: str,
    hosts: list[Utterance],
    spoofs: list[tuple[str, np.ndarray]],
    rng: np.random.Generator,
    options: SpliceOptions,
    copies: dict[str, list[tuple[str, np.ndarray]]],
) -> None:
    """Write one split; a host with copies in `copies` (by its `pair_id`) gets paired splices of one of them drawn
    for each splice, any other host pieces of `spoofs`."""
    audio_dir = root / split / "con_wav"
    audio_dir.mkdir(parents=True, exist_ok=True)
    protocol_lines, labels = [], {resolution: {} for resolution in RESOLUTIONS_MS}
    for host_index, host in enumerate(hosts):
        waveform = load_audio(host.audio_path)
        waveform = waveform[: len(waveform) // FRAME_SAMPLES * FRAME_SAMPLES]
        speaker = (host.speaker or host.metadata.get("system") or "unknown").replace(" ", "_")
        versions = [(waveform, np.full(len(waveform) // FRAME_SAMPLES, BONAFIDE, np.int8), ())]
        own_copies = copies.get(host.metadata.get(PAIR_COLUMN) or "", [])
        for _ in range(options.splices_per_host):
            if own_copies:
                vocoder, copy = own_copies[int(rng.integers(len(own_copies)))]
                splice = make_paired_splice(waveform, (vocoder, copy[: len(waveform)]), rng, options)
                if not audibly_differs(splice.waveform, waveform):  # the copy matched the host where it went in
                    continue
            else:
                splice = make_splice(waveform, spoofs, rng, options)
            versions.append((splice.waveform, splice.frame_labels, splice.generators))
        for version, (audio, frame_labels, generators) in enumerate(versions):
            utt_id = f"SPL_{split[0].upper()}_{host_index:05d}_{version}"
            soundfile.write(audio_dir / f"{utt_id}.wav", audio, SAMPLING_RATE, subtype="PCM_16")
            system, key = ("+".join(dict.fromkeys(generators)), "spoof") if generators else ("-", "bonafide")
            protocol_lines.append(f"{speaker} {utt_id} - {system} {key}")
            for resolution in RESOLUTIONS_MS:
                labels[resolution][utt_id] = segment_labels(frame_labels, resolution).astype(str)
    protocols = root / "protocols" / "PartialSpoof_LA_cm_protocols"
    protocols.mkdir(parents=True, exist_ok=True)
    (protocols / f"PartialSpoof.LA.cm.{split}.trl.txt").write_text("\n".join(protocol_lines) + "\n", encoding="utf-8")
    (root / "segment_labels").mkdir(exist_ok=True)
    for resolution, by_utterance in labels.items():
        np.save(root / "segment_labels" / f"{split}_seglab_{resolution / 1000:g}.npy", by_utterance)


class SplicesBuilder(CorpusBuilder):
    """`nes2net data build splices ROOT OUT`: splices of a generic-layout corpus, built as PartialSpoof is.

    The corpus is made rather than found, so `scan` writes the splices (into a folder that lives as long as the
    builder) and returns the PartialSpoof scan of them."""

    name = "splices"
    title = "Spliced partial spoofs"
    description = (
        "Partially spoofed utterances: real bona fide speech with machine-made pieces (0.2-1.6 s, 1-3 per file) "
        "inserted or substituted at word-like boundaries, loudness-matched, with and without cross-fades, with "
        "segment labels at 10-640 ms; the test split uses only sources unseen in training."
    )
    layout = f"ROOT = a generic-layout corpus ({GenericBuilder.layout}); splits train, dev/validation, test/eval"

    def __init__(self, metadata: str | None = None, options: SpliceOptions = SpliceOptions()):
        self.metadata = metadata
        self.options = options
        self._workdir: tempfile.TemporaryDirectory | None = None

    def scan(self, root: Path) -> CorpusScan:
        self._workdir = tempfile.TemporaryDirectory(prefix="nes2net-splices-")
        splits = write_splice_corpus(root, self._workdir.name, self.options, self.metadata)
        reader = PartialSpoofBuilder()
        reader.sources = {split: source for split, source in reader.sources.items() if split in splits}
        return reader.scan(Path(self._workdir.name))
