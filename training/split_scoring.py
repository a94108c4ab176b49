"""Scoring one split of a built dataset with a model, sharded across processes and resumable: what `nes2net
evaluate` and training's dev evaluation run.

Every trial is scored as `nes2net detect` scores a file under the same protocol and aggregation: its stored bytes
decoded by `modeling_nes2net.audio.AudioStream` (soundfile and soxr, or ffmpeg) and cut by
`modeling_nes2net.protocols.protocol_segments` (`full`, `4sec` or `windows`), both through a `scorer.Segmenter`, its
segments' logits combined by `modeling_nes2net.scorer.aggregate`; under `windows` with `use_state_windows` (as `detect
--state-windows`; by default as the model's `config.state_windows` says), a trial longer than one window is scored
from its front-end states where the front-end allows it (`modeling_nes2net.state_windows`).

`score_split` scales to every trial of ASVspoof 5 and survives crashes:
- the trials not scored yet are cut into one contiguous shard per process;
- a process decodes and cuts its shard (in DataLoader workers) in pools of `POOL_BATCHES` batches of trials and
  scores their segments through `modeling_nes2net.scorer` (the batching and model call `nes2net detect` uses:
  similar lengths under a sample budget, attention masks), and after each batch appends `index<TAB>score` lines for
  the trials whose segments are all scored to its own part file `part-<rank>.tsv` and flushes it;
- a new run first cuts any half-written last line, reads every part file and scores only what is missing (with any
  number of processes); a manifest with a fingerprint of the model's weights refuses to mix scores of another
  model, split, protocol or aggregation;
- at the end every process reads all part files, so each holds the scores in trial order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from modeling_nes2net import Nes2NetForAudioClassification
from modeling_nes2net.atomic import write_text_atomic
from modeling_nes2net.audio import AudioInputError, printable
from modeling_nes2net.protocols import Protocol
from modeling_nes2net.scorer import (
    AGGREGATIONS,
    FULL_PROTOCOL_MAX_SECONDS,
    POOL_BATCHES,
    Aggregation,
    SegmentPool,
    Segmenter,
    aggregate,
    min_samples_of,
)
from modeling_nes2net.model_calls import TorchModelCall
from modeling_nes2net.decision import odds_probability
from modeling_nes2net.state_windows import StateWindows
from training.batching import Trials
from training.channel_trials import ChannelTrials
from hub_cards.results import SCORE_SCALES

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def model_fingerprint(model: torch.nn.Module) -> str:
    """sha1 of every parameter and buffer: the identity of the weights that produced a set of scores."""
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _repair_part(path: Path) -> None:
    """Cut a half-written last line (a process killed mid-write) so appending continues on a line boundary."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


def _read_parts(parts_dir: Path) -> tuple[dict[int, float], dict[int, str]]:
    """Scores by trial index, and the one-line errors of trials that could not be scored (and have no score)."""
    scores: dict[int, float] = {}
    errors: dict[int, str] = {}
    for part in sorted(parts_dir.glob("part-*.tsv")):
        for line in part.read_text(encoding="utf-8").splitlines():
            index, value, *message = line.split("\t")
            if message:
                errors[int(index)] = message[0]
            else:
                scores[int(index)] = float(value)
    return scores, {index: error for index, error in errors.items() if index not in scores}


def _prepare_parts(parts_dir: Path, manifest: dict[str, Any], resume: bool) -> None:
    """Main process: start an empty folder, or check the manifest of the one being resumed and repair its parts."""
    manifest_path = parts_dir / MANIFEST
    if resume and manifest_path.is_file():
        found = json.loads(manifest_path.read_text(encoding="utf-8"))
        if found != manifest:
            differing = sorted(key for key in {*found, *manifest} if found.get(key) != manifest.get(key))
            raise ValueError(
                f"{parts_dir} holds scores of another run (different {', '.join(differing)}): "
                "use another output folder or delete it"
            )
        for part in parts_dir.glob("part-*.tsv"):
            _repair_part(part)
        return
    for stale in parts_dir.glob("part-*.tsv") if parts_dir.is_dir() else ():
        stale.unlink()
    parts_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(parts_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")


class SegmentedTrials(torch.utils.data.Dataset):
    """Items `{"index", "segments": [(start, (samples,) float32), ...]}`: each trial of `trials` (`Trials` or
    `ChannelTrials`) cut by `segmenter`, or `{"index", "error": one line naming it}` when it cannot be scored."""

    def __init__(self, trials: Trials | ChannelTrials, segmenter: Segmenter):
        self.trials, self.segmenter = trials, segmenter

    def __len__(self) -> int:
        return len(self.trials)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        try:
            return {"index": index, "segments": self.segmenter.cut(self.trials.source(index))}
        except AudioInputError as error:
            return {"index": index, "error": str(error)}


def trial_score(logits: np.ndarray, aggregation: Aggregation, score: str) -> float:
    """One trial's `score` (one of `SCORE_SCALES`) from its segments' `(segments, num_labels)` logits, as `nes2net
    detect` reports it (`DetectionResult.score`, `.log_odds`, `.bonafide_probability`): `scorer.aggregate`."""
    bonafide_logit, odds = aggregate(logits, aggregation)
    return {"bonafide_logit": bonafide_logit, "log_odds": odds, "bonafide_probability": odds_probability(odds)}[score]


@torch.inference_mode()
def score_split(
    model: Nes2NetForAudioClassification,
    trials: Trials | ChannelTrials,
    parts_dir: str | os.PathLike,
    accelerator: Accelerator,
    *,
    protocol: Protocol,
    aggregation: Aggregation = "mean",
    batch_size: int = 16,
    num_workers: int = 0,
    score: str = "bonafide_logit",
    manifest: dict[str, Any] | None = None,
    resume: bool = True,
    max_batches: int | None = None,
    max_batch_samples: int | None = None,
    max_full_seconds: float = FULL_PROTOCOL_MAX_SECONDS,
    progress: bool = True,
    use_state_windows: bool | None = None,
) -> np.ndarray | None:
    """Score every trial of `trials` with `model` across all processes (see the module docstring), each as `nes2net
    detect --protocol PROTOCOL --aggregation AGGREGATION` scores a file: decoded and cut by a `scorer.Segmenter`,
    its segments' logits aggregated by `trial_score`.

    Every process must call this. `manifest` identifies the run (model, data); with `resume`, scores already in
    `parts_dir` under the same manifest, protocol, aggregation and score are kept. `max_batches` stops each process
    after that many batches (a time-limited session; the next call resumes) and then returns None. Batches are
    chosen by `scorer.SegmentPool` (similar lengths, at most `batch_size` segments and `max_batch_samples` padded
    samples, by default `batch_size` windows), the batching `nes2net detect` uses.

    Returns `(n_trials,)` float64 scores in trial order, on every process.
    """
    if score not in SCORE_SCALES:
        raise ValueError(f"score must be one of {', '.join(SCORE_SCALES)}, got {score!r}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
    segmenter = Segmenter(sampling_rate=model.config.sampling_rate, min_samples=min_samples_of(model),
                          protocol=protocol, max_full_seconds=max_full_seconds)
    parts_dir = Path(parts_dir)
    model_call = TorchModelCall(model, accelerator.device, autocast=accelerator.autocast)
    state_windows = StateWindows.for_model(model_call, segmenter.window, segmenter.hop, batch_size,
                                           protocol=protocol, requested=use_state_windows)
    manifest = {"score": score, "protocol": protocol, "aggregation": aggregation, "n_trials": len(trials),
                **({"state_windows": True} if state_windows is not None else {}), **(manifest or {})}
    if accelerator.is_main_process:
        _prepare_parts(parts_dir, manifest, resume)
    accelerator.wait_for_everyone()
    done, _ = _read_parts(parts_dir)
    accelerator.wait_for_everyone()  # nobody appends before everyone has read
    remaining = np.setdiff1d(np.arange(len(trials)), np.fromiter(done, dtype=np.int64, count=len(done)))
    shard = np.array_split(remaining, accelerator.num_processes)[accelerator.process_index].tolist()
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(SegmentedTrials(trials, segmenter), shard),
                                         batch_size=POOL_BATCHES * batch_size, collate_fn=list,
                                         num_workers=num_workers)
    was_training = model.training
    model.eval()
    pool = SegmentPool(batch_size, max_batch_samples or batch_size * segmenter.window)
    segment_logits: dict[int, list[np.ndarray | None]] = {}  # trial -> its segments' logits, None until scored
    bar = tqdm(total=len(shard), desc="scoring", unit="trial",
               disable=not (progress and accelerator.is_local_main_process))
    batches_done = 0
    part = parts_dir / f"part-{accelerator.process_index:05d}.tsv"
    with open(part, "a", encoding="utf-8") as handle, bar:
        for items in loader:
            for item in items:
                if "error" in item:
                    handle.write(f"{item['index']}\terror\t{item['error']}\n")
                    bar.update()
                    continue
                if state_windows is not None and len(item["segments"]) > 1:  # as detect: the windows of its states
                    scored = sorted(state_windows.score_segments(item["segments"]), key=lambda row: row[0])
                    handle.write(_part_line(trials, item["index"], np.stack([row[1] for row in scored]), aggregation,
                                            score))
                    bar.update()
                    continue
                segment_logits[item["index"]] = [None] * len(item["segments"])
                for position, (_, waveform) in enumerate(item["segments"]):
                    pool.add((item["index"], position), waveform)
            while len(pool) and batches_done != max_batches:
                finished = []
                for (index, position), logits, _ in pool.score_batch(model_call):
                    segment_logits[index][position] = logits
                    if all(row is not None for row in segment_logits[index]):
                        finished.append(index)
                handle.writelines(_part_line(trials, index, np.stack(segment_logits.pop(index)), aggregation, score)
                                  for index in finished)
                handle.flush()
                batches_done += 1
                bar.update(len(finished))
            if batches_done == max_batches:
                break
    model.train(was_training)
    logger.debug("process %d scored %d batches (%d trials were already scored)", accelerator.process_index,
                 batches_done, len(done))
    accelerator.wait_for_everyone()
    scores, errors = _read_parts(parts_dir)
    accelerator.wait_for_everyone()  # everyone has read the parts before anyone may delete them
    if errors:
        first = errors[min(errors)]
        raise UnscoredTrialsError(f"{len(errors)} of {len(trials)} trials cannot be scored (the other trials' scores "
                                  f"are kept in {parts_dir}; a rerun retries these): {first}")
    if len(scores) < len(trials):
        if max_batches is not None:
            return None
        raise RuntimeError(f"{len(trials) - len(scores)} of {len(trials)} trials have no score in {parts_dir}")
    return np.array([scores[index] for index in range(len(trials))], dtype=np.float64)


def _part_line(trials: Trials | ChannelTrials, index: int, logits: np.ndarray, aggregation: Aggregation,
               score: str) -> str:
    """A part file's line for one scored trial: `index<TAB>score`, or `index<TAB>error<TAB>why` for non-finite
    logits."""
    if np.isfinite(logits).all():
        return f"{index}\t{trial_score(logits, aggregation, score)!r}\n"
    return (f"{index}\terror\t{printable(trials.name(index))}: the model gave non-finite scores (NaN or infinite "
            "logits); no score\n")


class UnscoredTrialsError(ValueError):
    """Trials that could not be scored; the others are scored and kept in the part files (a rerun retries these)."""
