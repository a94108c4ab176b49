"""What the Space accepts: uploads decoded by `modeling_nes2net.audio` under size and duration limits, and batches
of them scored with `Nes2NetDetector.detect_many`."""

from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modeling_nes2net.atomic import atomic_output
from modeling_nes2net.audio import AudioInputError, AudioSource, AudioStream
from modeling_nes2net.detection import RESULT_COLUMNS, DetectionResult, Nes2NetDetector
from modeling_nes2net.scorer import DetectionFailure

BATCH_COLUMNS = (*RESULT_COLUMNS, "error")


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask of the server.

    Args:
        max_seconds: longest recording scored, in seconds (decoding stops as soon as it is passed).
        max_file_mb: largest upload in MiB (Gradio refuses bigger uploads; checked again here).
        max_batch_files: most files in one batch.
        max_batch_seconds: most audio, in seconds, in one batch.
    """

    max_seconds: float = 300.0
    max_file_mb: float = 50.0
    max_batch_files: int = 20
    max_batch_seconds: float = 900.0


class InputLimitError(ValueError):
    """A request beyond `Limits`; the message is one line for the user."""


def read_recording(path: str | os.PathLike, limits: Limits, sampling_rate: int) -> AudioSource:
    """Decode an uploaded file to a `(samples,)` mono waveform at `sampling_rate`, named by its file name.

    Raises `AudioInputError` (one line: the file name and the problem) for empty, undecodable or too long input.
    """
    path = Path(path)
    name = path.name
    if path.is_file() and path.stat().st_size > limits.max_file_mb * 2**20:
        raise AudioInputError(name, f"larger than the {limits.max_file_mb:g} MB upload limit of this demo")
    max_samples = limits.max_seconds * sampling_rate
    blocks, total = [], 0
    stream = iter(AudioStream(AudioSource(path, name=name), target_rate=sampling_rate))
    try:
        for block in stream:
            total += len(block)
            if total > max_samples:
                raise AudioInputError(
                    name,
                    f"longer than the {limits.max_seconds:g} s limit of this demo; cut it, or score it on your own "
                    "machine with `nes2net detect` (no limit)",
                )
            blocks.append(block)
    finally:
        stream.close()
    return AudioSource(np.concatenate(blocks), sampling_rate, name=name)


def score_batch(
    detector: Nes2NetDetector, paths: Sequence[str | os.PathLike], limits: Limits
) -> list[DetectionResult | DetectionFailure]:
    """One outcome per path, in order: files are decoded under `limits`, then scored together in batches."""
    if len(paths) > limits.max_batch_files:
        raise InputLimitError(
            f"{len(paths)} files given; this demo scores at most {limits.max_batch_files} per batch"
        )
    rate = detector.sampling_rate
    decoded: list[AudioSource | DetectionFailure] = []
    seconds_left = limits.max_batch_seconds
    for path in paths:
        name = Path(path).name
        try:
            source = read_recording(path, limits, rate)
        except AudioInputError as error:
            decoded.append(DetectionFailure(name, str(error)))
            continue
        seconds = len(source.data) / rate
        if seconds > seconds_left:
            decoded.append(DetectionFailure(
                name, f"{name}: over the batch's total limit of {limits.max_batch_seconds:g} s of audio; "
                      "score it in another batch",
            ))
            continue
        seconds_left -= seconds
        decoded.append(source)
    scored = iter(detector.detect_many([item for item in decoded if isinstance(item, AudioSource)]))
    return [item if isinstance(item, DetectionFailure) else next(scored) for item in decoded]


def batch_rows(outcomes: Sequence[DetectionResult | DetectionFailure]) -> list[list]:
    """Table rows in `BATCH_COLUMNS` order: a result fills the score columns, a failure only `file` and `error`."""
    rows = []
    for outcome in outcomes:
        if isinstance(outcome, DetectionFailure):
            rows.append([outcome.source] + [""] * (len(BATCH_COLUMNS) - 2) + [outcome.error])
        else:
            values = outcome.to_dict(include_segments=False)
            rows.append(["" if values[column] is None else values[column] for column in RESULT_COLUMNS] + [""])
    return rows


def write_batch_csv(rows: Sequence[Sequence], directory: str | os.PathLike) -> Path:
    """Write `rows` under a `BATCH_COLUMNS` header to a new, uniquely named CSV file in `directory`, atomically."""
    target = Path(directory) / f"nes2net-scores-{uuid.uuid4().hex[:12]}.csv"
    with atomic_output(target) as temporary, temporary.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(BATCH_COLUMNS)
        writer.writerows(rows)
    return target
