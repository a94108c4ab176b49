"""Reading every audio file of a corpus before it is built: damaged files, and clips shared between splits or labels.

A held-out split that shares a clip with another split measures memory, not generalisation, and a clip labelled both
bona fide and spoof teaches nothing but noise: both are found by the SHA-256 of the file bytes, so a copy under
another name counts as the same clip. A file is damaged when it holds NaN or infinite samples (a float WAV), only
zeros, or fewer samples than its WAV header promises (`modeling_nes2net.audio.check_header`): each would train on
garbage (loss = nan) or stop a training run midway. Every problem is a `LayoutProblem` naming the file, so a build
lists them all at once and writes nothing.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

from modeling_nes2net.audio import (
    AudioInputError,
    check_complete,
    check_file,
    check_header,
    declared_frames,
    truncation,
)

from .layout import CorpusLayoutError, LayoutProblem
from .schema import LABEL_NAMES, Utterance

BLOCK_FRAMES = 1 << 16


@dataclass(frozen=True)
class AudioFacts:
    """What a build records of one readable file: its own sampling rate and duration."""

    sampling_rate: int
    seconds: float


@dataclass(frozen=True)
class _Listing:
    """Where a clip was first seen."""

    split: str
    utterance: Utterance

    def __str__(self) -> str:
        return f"{LABEL_NAMES[self.utterance.label]} as {self.utterance.utt_id} in {self.split}"


@dataclass
class CorpusAudit:
    """Reads the files of a corpus one at a time (`read`) and keeps the problems found (`problems`)."""

    problems: list[LayoutProblem] = field(default_factory=list)
    _first_listing: dict[str, _Listing] = field(default_factory=dict)

    def read(self, split: str, utterance: Utterance) -> tuple[bytes, AudioFacts] | None:
        """The file's bytes and facts, or None (its problem recorded) when it cannot go into a build."""
        path = utterance.audio_path
        try:
            check_file(path, str(path))
        except AudioInputError as error:
            self.problems.append(LayoutProblem("unreadable", path, error.problem))
            return None
        audio_bytes = path.read_bytes()
        self._compare(_Listing(split, utterance), hashlib.sha256(audio_bytes).hexdigest())
        try:
            sound_file = soundfile.SoundFile(io.BytesIO(audio_bytes))
        except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
            reason = str(error).rpartition(": ")[2].rstrip(".")  # without libsndfile's "Error opening <BytesIO ...>"
            self.problems.append(LayoutProblem("unreadable", path, f"not a readable audio file ({reason})"))
            return None
        with sound_file:
            problem = _damage(sound_file, audio_bytes, str(path))
        if problem is not None:
            self.problems.append(LayoutProblem("damaged", path, problem))
            return None
        return audio_bytes, AudioFacts(sound_file.samplerate, sound_file.frames / sound_file.samplerate)

    def raise_problems(self, corpus: str, root: Path) -> None:
        """Raise CorpusLayoutError listing the problems found, if any."""
        if self.problems:
            raise CorpusLayoutError(corpus, root, self.problems)

    def _compare(self, listing: _Listing, digest: str) -> None:
        """Record a conflicting label or a leak between splits when the same bytes were listed before."""
        first = self._first_listing.setdefault(digest, listing)
        if first is listing:
            return
        path, first_path = listing.utterance.audio_path, first.utterance.audio_path
        where = "" if first_path == path else f" ({first_path})"
        if first.utterance.label != listing.utterance.label:
            message = f"the same audio is labelled {listing} and {first}{where}"
            self.problems.append(LayoutProblem("conflicting-label", path, message))
        elif first.split != listing.split:
            message = (f"the same audio is in {listing.split} and in {first.split}{where}: a clip shared between "
                       "splits inflates held-out results")
            self.problems.append(LayoutProblem("leak", path, message))


def _damage(sound_file: soundfile.SoundFile, audio_bytes: bytes, name: str) -> str | None:
    """Why an open file cannot be trained on (truncated, no samples, NaN / infinite or only zero samples), or None."""
    try:
        check_header(sound_file, audio_bytes, name)
        check_complete(audio_bytes, name)
    except AudioInputError as error:
        return error.problem
    if declared_frames(sound_file) is None:  # detect decodes it (with ffmpeg); training reads lengths from headers
        return "its header declares no length (a stream written to a pipe); re-encode it to a file to train on it"
    if sound_file.frames == 0:
        return "no audio samples (zero duration)"
    frames, heard = 0, False
    try:
        while len(block := sound_file.read(BLOCK_FRAMES, dtype="float32")):  # not `blocks`: it pads short reads
            if not np.isfinite(block).all():
                return "contains NaN or infinite samples"
            frames += len(block)
            heard = heard or bool(np.any(block))
    except (soundfile.LibsndfileError, RuntimeError) as error:
        return f"decoding failed mid-stream ({error})"
    rate = sound_file.samplerate
    if frames < sound_file.frames:  # an MP3's Xing header, say, counts frames that are not there
        return truncation(sound_file.frames / rate, frames / rate)
    return None if heard else "no sample is non-zero (digital silence)"
