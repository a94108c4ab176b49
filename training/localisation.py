"""Training and scoring a frame-level localiser (`Nes2NetForAudioFrameClassification`) on a built dataset with
10 ms segment labels (the splices or PartialSpoof builders' `segment_labels_10ms`).

    model = Nes2NetForAudioFrameClassification.from_pretrained("modeling_nes2net/default_model",
                                                               allow_new_weights=True)  # the frame head is new
    train_localiser(model, "splices/", LocaliserTraining(epochs=4))
    scored = score_localiser(model, "splices/", "eval")        # [LocalisedUtterance], see training.segment_metrics

Training reads random crops of `crop_seconds` on the 10 ms grid; each frame is labelled by the 10 ms cell its centre
falls in, and the crop by its cells (spoof when any is), so the utterance head and the frame head learn together
(or the frame head alone with `freeze_utterance_model`). Crops, order and initialisation follow `seed`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from typing import Literal, get_args

import numpy as np
import torch

from modeling_nes2net import Nes2NetForAudioFrameClassification
from modeling_nes2net.detection import DetectionResult, Nes2NetDetector
from modeling_nes2net.localisation import CELL_SECONDS, frame_cell_scores
from modeling_nes2net.decision import log_odds
from training.data import collate_waveforms, load_training_dataset
from training.data.schema import SAMPLING_RATE
from training.divergence import refuse_non_finite_loss
from training.segment_metrics import LocalisedUtterance

logger = logging.getLogger(__name__)

LABEL_COLUMN = "segment_labels_10ms"
CELL_SAMPLES = round(CELL_SECONDS * SAMPLING_RATE)
UtteranceAggregation = Literal["head", "min", "mean"]
"""How a frame model's utterance score is made: the utterance head's log-odds, or the min / mean of its cells (not the
windows-to-recording `Aggregation` of `modeling_nes2net.scorer`)."""
UTTERANCE_AGGREGATIONS: tuple[str, ...] = get_args(UtteranceAggregation)


@dataclass(frozen=True)
class LocaliserTraining:
    epochs: int = 4
    batch_size: int = 16
    learning_rate: float = 1e-3
    crop_seconds: float = 4.0
    freeze_utterance_model: bool = False
    max_utterances: int | None = None
    """Train on a random subset of this many utterances (all when None)."""
    seed: int = 0


def frame_targets(cell_labels: np.ndarray, frame_times: np.ndarray) -> np.ndarray:
    """The label of the 10 ms cell holding each frame centre, -100 past the labelled cells: `(frames,)` int64."""
    cells = np.floor(np.asarray(frame_times) / CELL_SECONDS).astype(np.int64)
    inside = cells < len(cell_labels)
    return np.where(inside, np.asarray(cell_labels, np.int64)[np.minimum(cells, len(cell_labels) - 1)], -100)


def _crop(item: dict, crop_cells: int, rng: np.random.Generator) -> dict:
    waveform, labels = np.asarray(item["input_values"]), np.asarray(item[LABEL_COLUMN], np.int64)
    labels = labels[: len(waveform) // CELL_SAMPLES]
    start = int(rng.integers(0, max(1, len(labels) - crop_cells + 1)))
    labels = labels[start : start + crop_cells]
    waveform = waveform[start * CELL_SAMPLES : (start + len(labels)) * CELL_SAMPLES]
    return {"input_values": waveform, "label": int(labels.min()), LABEL_COLUMN: labels}


def train_localiser(
    model: Nes2NetForAudioFrameClassification,
    dataset: str | os.PathLike,
    training: LocaliserTraining = LocaliserTraining(),
    split: str = "train",
) -> Nes2NetForAudioFrameClassification:
    """Train `model` in place on `split` of the built dataset at `dataset`; returns it in eval mode. Raises
    `TrainingDivergedError` naming the step at the first NaN or infinite loss, before it is applied."""
    torch.manual_seed(training.seed)
    rng = np.random.default_rng(training.seed)
    rows = load_training_dataset(dataset, split, crop="full", columns=("label", LABEL_COLUMN))
    if training.max_utterances is not None and training.max_utterances < len(rows):
        rows = rows.select(np.sort(rng.choice(len(rows), training.max_utterances, replace=False)))
    if training.freeze_utterance_model:
        model.freeze_utterance_model()
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=training.learning_rate)
    crop_cells = round(training.crop_seconds / CELL_SECONDS)
    model.train()
    for epoch in range(training.epochs):
        began = time.perf_counter()
        order = rng.permutation(len(rows))
        losses = []
        for first in range(0, len(order), training.batch_size):
            items = [_crop(rows[int(index)], crop_cells, rng) for index in order[first : first + training.batch_size]]
            batch = collate_waveforms([{k: v for k, v in item.items() if k != LABEL_COLUMN} for item in items])
            frames = int(model.frame_lengths(torch.tensor(batch["input_values"].shape[1])))
            times = model.frame_times(frames).numpy()
            frame_labels = torch.from_numpy(np.stack([frame_targets(item[LABEL_COLUMN], times) for item in items]))
            output = model(
                input_values=batch["input_values"],
                attention_mask=batch["attention_mask"],
                labels=batch["labels"],
                frame_labels=frame_labels,
            )
            refuse_non_finite_loss(output.loss.item(), f"epoch {epoch + 1}, step {len(losses) + 1}")
            optimizer.zero_grad()
            output.loss.backward()
            optimizer.step()
            losses.append(output.loss.item())
        seconds = time.perf_counter() - began
        logger.info("localiser epoch %d: mean loss %.4f (%.0f s)", epoch + 1, float(np.mean(losses)), seconds)
    return model.eval()


def _utterances(dataset: str | os.PathLike, split: str, max_utterances: int | None, seed: int):
    """The whole utterances of `split` with their labels (a random subset of `max_utterances` when given)."""
    rows = load_training_dataset(dataset, split, crop="full", columns=("label", LABEL_COLUMN))
    if max_utterances is not None and max_utterances < len(rows):
        rows = rows.select(np.sort(np.random.default_rng(seed).choice(len(rows), max_utterances, replace=False)))
    return rows


@torch.inference_mode()
def score_localiser(
    model: Nes2NetForAudioFrameClassification,
    dataset: str | os.PathLike,
    split: str,
    max_utterances: int | None = None,
    seed: int = 0,
) -> list[LocalisedUtterance]:
    """Score the utterances of `split` (a random subset of `max_utterances` when given) whole: 10 ms cell scores from
    the frame head's log-odds, the utterance score from the utterance head (see `aggregate_utterances` for the
    others)."""
    model.eval()
    scored = []
    for item in _utterances(dataset, split, max_utterances, seed):
        waveform = torch.as_tensor(np.asarray(item["input_values"]))[None]
        output = model(input_values=waveform)
        frame_scores = log_odds(output.frame_logits[0]).numpy()
        labels = np.asarray(item[LABEL_COLUMN], np.int8)
        cells = frame_cell_scores(frame_scores, model.frame_times(len(frame_scores)).numpy(), len(labels))
        scored.append(LocalisedUtterance(cells, labels, float(log_odds(output.logits)[0]), int(item["label"])))
    return scored


def aggregate_utterances(
    utterances: list[LocalisedUtterance], aggregation: UtteranceAggregation
) -> list[LocalisedUtterance]:
    """The utterances with their score made by `aggregation` (one of `UTTERANCE_AGGREGATIONS`); `head` keeps the
    utterance head's score that `score_localiser` gives."""
    if aggregation not in UTTERANCE_AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; choose from {UTTERANCE_AGGREGATIONS}")
    if aggregation == "head":
        return list(utterances)
    reduce = np.min if aggregation == "min" else np.mean
    return [replace(u, score=float(reduce(u.cell_scores))) for u in utterances]


def score_detections(
    detector: Nes2NetDetector, dataset: str | os.PathLike, split: str, max_utterances: int | None = None, seed: int = 0
) -> list[tuple[LocalisedUtterance, DetectionResult]]:
    """Every utterance of `split` (a random subset of `max_utterances` when given) through `detector`, as
    `nes2net detect --segments` scores a file: its 10 ms
    `timeline` (the frame head's log-odds, or the mean of the windows covering each cell; a single window's log-odds
    everywhere when it has none) on the label grid, its utterance log-odds, and the `DetectionResult` itself (verdict
    and flagged stretches)."""
    scored = []
    for item in _utterances(dataset, split, max_utterances, seed):
        result = detector.detect(np.asarray(item["input_values"], np.float32), sampling_rate=SAMPLING_RATE)
        labels = np.asarray(item[LABEL_COLUMN], np.int8)
        timeline = np.full(len(labels), result.log_odds) if result.timeline is None else result.timeline
        cells = np.pad(timeline[: len(labels)], (0, max(0, len(labels) - len(timeline))), mode="edge")
        scored.append((LocalisedUtterance(cells, labels, float(result.log_odds), int(item["label"])), result))
    return scored
