"""`nes2net evaluate`: score one split of a built dataset and measure it as the ASVspoof tools do.

    nes2net evaluate MODEL DATASET --split eval --protocol 4sec --output-dir OUT [--where subset=eval]
    accelerate launch --multi_gpu --num_processes 8 -m nes2net evaluate MODEL DATASET ...

OUT receives `scores.csv` (utt_id, score, label and the grouping columns), the score file in an ASVspoof format when
`--score-format` asks for one, `results.json` (the `training.results` schema that model cards are rendered from),
`det_curve.png` and `score_histogram.png`. With `--arena sasa|dfarena`, also the leaderboards' own files and
`model-index.yaml`, the Hub card's `model-index` from the same results (`training.arena`).

Every trial is scored as `nes2net detect` scores a file under the same `--protocol` and `--aggregation`: its stored
bytes decoded by `modeling_nes2net.audio.AudioStream` (soundfile and soxr, or ffmpeg), cut by
`modeling_nes2net.protocols.protocol_segments` (`full`, `4sec` or `windows`), its segments' logits combined by
`modeling_nes2net.scorer.aggregate`. One run scores one protocol; a model card states the figures of each results
file it is given, so run `--protocol windows` (what `detect` and the Space score) next to `--protocol full`.

Channel robustness (`--perturb SPEC`, repeatable, conditions of `training.channel`): the same trials are scored again
under each condition, every recording decoded once, whole, into `clean-decode/` and passed through the condition
with the generator `default_rng((seed, trial index))` before the protocol cuts it. `results.json` then also holds `conditions`
(metrics per condition), each condition's scores go to `conditions/<condition>/scores.csv`, and `robustness.md` /
`robustness.png` show the EER per condition next to clean.

Scoring a split (`score_split`) scales to every trial of ASVspoof 5 and survives crashes:
- the trials not scored yet are cut into one contiguous shard per process;
- a process decodes and cuts its shard (`scorer.Segmenter`, in DataLoader workers) in pools of `POOL_BATCHES`
  batches of trials and scores their segments through `modeling_nes2net.scorer` (the batching and model call
  `nes2net detect` uses: similar lengths under a sample budget, attention masks), and after each batch appends
  `index<TAB>score` lines for the trials whose segments are all scored to its own part file `parts/part-<rank>.tsv`
  and flushes it;
- a new run first cuts any half-written last line, reads every part file and scores only what is missing (with any
  number of processes); a manifest with a fingerprint of the model's weights refuses to mix scores of another
  model, split, protocol or aggregation;
- at the end every process reads all part files, so each holds the scores in trial order.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from modeling_nes2net import Nes2NetForAudioClassification, save_model_folder
from training.results import (
    CLEAN_CONDITION,
    SCHEMA_VERSION,
    SCORE_SCALES,
    EvaluationResult,
    robustness_rows,
    robustness_table,
    write_result,
)
from modeling_nes2net.atomic import write_text_atomic
from modeling_nes2net.detection import ModelLoadError, ModelNotFoundError, load_model
from modeling_nes2net.audio import AudioInputError, AudioSource, load_audio, printable
from modeling_nes2net.protocols import PROTOCOLS, SAMPLING_RATE, Protocol
from modeling_nes2net.scorer import (
    AGGREGATIONS,
    FULL_PROTOCOL_MAX_SECONDS,
    POOL_BATCHES,
    Aggregation,
    SegmentPool,
    Segmenter,
    TorchModelCall,
    aggregate,
    min_samples_of,
)
from modeling_nes2net.scoring import odds_probability
from training.batching import Trials
from training.arena import ArenaError, ArenaRequest, request_from_arguments, write_leaderboard_files
from training.arena import add_arguments as add_arena_arguments
from training.calibration import calibrate_model
from training.channel import Channel, ChannelSpecError, condition_slug, parse_channel
from training.data import load_built_dataset, read_build_info
from training.data.schema import ATTACK_UNKNOWN, SPOOF, attack_name
from training.metrics import (
    asv_error_rates,
    bootstrap_eer_interval,
    breakdown,
    compute_metrics,
    compute_min_tandem_a_dcf,
    compute_min_tdcf_2019,
    compute_min_tdcf_2021,
    split_by_label,
)
from training.plots import plot_condition_eers, plot_det_curves, plot_score_histogram
from training.runtime import create_accelerator
from training.scores import ScoreTable, write_scores

logger = logging.getLogger(__name__)

CALIBRATED_MODEL_DIR = "calibrated-model"
SCORE_FILE_NAMES = {"cm": "scores.txt", "cm-keyed": "scores.txt", "asvspoof5": "scores.tsv"}
PARTS_DIR = "parts"
MANIFEST = "manifest.json"
ASV_KEYS = ("target", "nontarget", "spoof")
DECODE_CACHE = "clean-decode"
CONDITIONS_DIR = "conditions"


# ----------------------------------------------------------------------------------------------- scoring a split


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


class ChannelTrials:
    """`trials` passed through `channel` (None: clean) with the generator `default_rng((seed, index))`. Each trial is
    decoded once for every condition: its whole waveform at `SAMPLING_RATE` is cached in `cache_dir` (one `.npy`,
    written by whichever process decodes it first), and the protocol cuts the perturbed recording."""

    def __init__(self, trials: Trials, cache_dir: str | os.PathLike, channel: Channel | None = None, seed: int = 0):
        self.trials, self.cache_dir, self.channel, self.seed = trials, Path(cache_dir), channel, seed
        self.cache_dir.mkdir(parents=True, exist_ok=True)

    def __len__(self) -> int:
        return len(self.trials)

    def column(self, name: str) -> list:
        return self.trials.column(name)

    def name(self, index: int) -> str:
        return self.trials.name(index)

    def _clean(self, index: int) -> np.ndarray:
        path = self.cache_dir / f"{index}.npy"
        if path.is_file():
            return np.load(path)
        waveform = load_audio(self.trials.source(index), target_rate=SAMPLING_RATE)
        temporary = path.with_name(f".{path.stem}.{os.getpid()}.npy")
        np.save(temporary, waveform)
        os.replace(temporary, path)
        return waveform

    def source(self, index: int) -> AudioSource:
        index = int(index)
        waveform = self._clean(index)
        if self.channel is not None:
            waveform = self.channel(waveform, SAMPLING_RATE, np.random.default_rng((self.seed, index)))
        return AudioSource(waveform, SAMPLING_RATE, self.trials.name(index))


class SegmentedTrials(torch.utils.data.Dataset):
    """Items `{"index", "segments": [(samples,) float32, ...]}`: each trial of `trials` (`Trials` or
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
    manifest = {"score": score, "protocol": protocol, "aggregation": aggregation, "n_trials": len(trials),
                **(manifest or {})}
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
    model_call = TorchModelCall(model, accelerator.device, autocast=accelerator.autocast)
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
                segment_logits[item["index"]] = [None] * len(item["segments"])
                for position, waveform in enumerate(item["segments"]):
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
    """A part file's line for one scored trial: `index<TAB>score`, or `index<TAB>error<TAB>why` for non-finite logits."""
    if np.isfinite(logits).all():
        return f"{index}\t{trial_score(logits, aggregation, score)!r}\n"
    return f"{index}\terror\t{printable(trials.name(index))}: the model gave non-finite scores (NaN or infinite logits); no score\n"


class UnscoredTrialsError(ValueError):
    """Trials that could not be scored; the others are scored and kept in the part files (a rerun retries these)."""


# ----------------------------------------------------------------------------------------------- measuring scores


def read_asv_scores(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """ASV scores for the t-DCF, one trial per line: any whitespace-separated fields, one of them the key
    `target` / `nontarget` / `spoof`, the last one the score (the ASVspoof 2019 `SOURCE KEY SCORE` layout among
    others). Returns key -> `(n,)` scores."""
    scores: dict[str, list[float]] = {key: [] for key in ASV_KEYS}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        keys = [field for field in fields[:-1] if field in scores]
        if len(keys) != 1:
            raise ValueError(f"{path}:{number}: expected one of {'/'.join(ASV_KEYS)} and a score, got {line!r}")
        try:
            score = float(fields[-1])
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise ValueError(f"{path}:{number}: the score must be a finite number, got {fields[-1]!r}")
        scores[keys[0]].append(score)
    missing = [key for key, values in scores.items() if not values]
    if missing:
        raise ValueError(f"{path}: no {'/'.join(missing)} trials; the t-DCF needs target, nontarget and spoof ASV "
                         "scores")
    return {key: np.asarray(values) for key, values in scores.items()}


def measure(
    scores: np.ndarray,
    labels: np.ndarray,
    groups: dict[str, Sequence[str]] | None = None,
    asv_scores: dict[str, np.ndarray] | None = None,
    tdcf: str = "2019",
    n_resamples: int = 0,
) -> dict[str, Any]:
    """The `metrics`, counts and `per_group` of a results file, from `(n,)` scores and labels (1 = bona fide).

    `groups` maps a column name to each trial's value (`attack` groups pool all bona fide trials, as ASVspoof
    does; other columns compare each group's own bona fide and spoofed trials). `asv_scores` adds `min_tdcf` and
    the tandem `min_a_dcf`; `n_resamples > 0` adds 95 % bootstrap EER intervals (`eer_ci`) overall and per group.
    """
    measured = compute_metrics(scores, labels)
    metrics = {"eer": measured["eer"], "threshold": measured["eer_threshold"]}
    metrics.update({name: measured[name] for name in ("min_dcf", "act_dcf", "cllr")})
    bonafide, spoof = split_by_label(scores, labels)
    if n_resamples > 0:
        metrics["eer_ci"] = list(bootstrap_eer_interval(bonafide, spoof, n_resamples))
    if asv_scores is not None:
        asv = asv_error_rates(asv_scores["target"], asv_scores["nontarget"], asv_scores["spoof"])
        min_tdcf = compute_min_tdcf_2019 if tdcf == "2019" else compute_min_tdcf_2021
        metrics["min_tdcf"] = min_tdcf(bonafide, spoof, asv).cost
        metrics["min_a_dcf"] = compute_min_tandem_a_dcf(bonafide, spoof, asv).cost
    n_bonafide = int(np.count_nonzero(labels == 1))
    result: dict[str, Any] = {
        "metrics": metrics, "n_trials": len(scores), "n_bonafide": n_bonafide, "n_spoof": len(scores) - n_bonafide
    }
    per_group = {}
    for column, values in (groups or {}).items():
        rows = breakdown(scores, labels, values, pool_bonafide=column == "attack", n_resamples=n_resamples)
        per_group[column] = {
            name: {"eer": row.eer, "threshold": row.threshold, "n_trials": row.n_bonafide + row.n_spoof,
                   "n_bonafide": row.n_bonafide, "n_spoof": row.n_spoof,
                   **({} if row.eer_ci is None else {"eer_ci": list(row.eer_ci)})}
            for name, row in rows.items()
        }
    if per_group:
        result["per_group"] = per_group
    return result


# ----------------------------------------------------------------------------------------------- the command


def load_trials(
    dataset: str, split: str, where: dict[str, str] | None = None, columns: Sequence[str] = (),
    optional: Sequence[str] = (),
) -> Trials:
    """The trials of `split` of a built dataset (folder or Hub id), filtered by `where` (column -> value), carrying
    `label`, `utt_id`, `columns` and those of `optional` the build has."""
    rows = load_built_dataset(dataset, split)
    unknown = sorted(set(where or {}) - set(rows.column_names))
    if unknown:
        raise ValueError(f"--where: no column(s) {unknown} in {dataset}; columns: {rows.column_names}")
    if where:
        rows = rows.filter(lambda *values: all(str(v) == str(w) for v, w in zip(values, where.values())),
                           input_columns=list(where))
        if len(rows) == 0:
            raise ValueError(f"no trial of {dataset} {split} matches {where}")
    columns = [*columns, *(column for column in optional if column in rows.column_names)]
    extra = [column for column in dict.fromkeys(columns) if column not in ("label", "utt_id")]
    return Trials(rows, columns=("label", "utt_id", *extra))


def default_split(dataset: str) -> str:
    """The split `evaluate` scores unless told: `eval`, else `test`, of a built folder; `eval` for a Hub id. A
    `ValueError` naming the folder and its splits when it has neither."""
    folder = Path(dataset)
    if not folder.is_dir():
        return "eval"
    splits = list(load_built_dataset(folder))
    for split in ("eval", "test"):
        if split in splits:
            return split
    raise ValueError(f"{folder} has no eval or test split to evaluate; choose one with --split "
                     f"(splits: {', '.join(splits)})")


def attack_groups(trials: Trials, labels: np.ndarray, attacks: list[str]) -> list[str]:
    """The `attack` of each trial for breakdowns: the build's own, or, when it names no spoof's generator
    (`unknown` for all) and the trials carry a `system` column, `system` for the spoofed trials."""
    spoofed = [attack for attack, label in zip(attacks, labels) if label == SPOOF]
    if any(attack != ATTACK_UNKNOWN for attack in spoofed) or "system" not in trials.columns:
        return attacks
    systems = [str(system) for system in trials.column("system")]
    logger.info("the build names no attack; grouping spoofed trials by their `system` column instead")
    return [attack_name(system, int(label)) for system, label in zip(systems, labels)]


def dataset_identity(dataset: str) -> tuple[str, str]:
    """(name, id) of a dataset for results files: a built folder's title and folder name, or the Hub id."""
    folder = Path(dataset)
    if folder.is_dir():
        try:
            title = read_build_info(folder)["title"]
        except (FileNotFoundError, KeyError):
            title = folder.name
        return title, folder.resolve().name
    return dataset, dataset


def evaluate_model(
    model: str | os.PathLike | Nes2NetForAudioClassification,
    dataset: str,
    output_dir: str | os.PathLike,
    *,
    split: str | None = None,
    protocol: Protocol = "4sec",
    aggregation: Aggregation = "mean",
    where: dict[str, str] | None = None,
    group_by: Sequence[str] = ("attack",),
    batch_size: int = 16,
    num_workers: int = 2,
    score: str = "bonafide_logit",
    score_format: str | None = None,
    asv_scores: str | os.PathLike | None = None,
    tdcf: str = "2019",
    dataset_name: str | None = None,
    dataset_id: str | None = None,
    max_batches: int | None = None,
    accelerator: Accelerator | None = None,
    progress: bool = True,
    perturb: Sequence[str] = (),
    channel_seed: int = 0,
    bootstrap: int = 0,
    arena: ArenaRequest | None = None,
    calibrate: bool = False,
    max_full_seconds: float = FULL_PROTOCOL_MAX_SECONDS,
) -> dict[str, Any] | None:
    """Score `split` of `dataset` (None: `default_split`) and write scores, metrics, plots and `results.json` to
    `output_dir`. Each trial is scored as `nes2net detect --protocol PROTOCOL --aggregation AGGREGATION` scores its
    file (see `score_split`). When the build names no generator in `attack` but keeps it in a `system` column (generic
    builds), `attack` groups use `system`.

    `perturb` adds channel conditions (`training.channel` SPECs) scored on the same trials (see the module
    docstring); `bootstrap` resamples for 95 % EER intervals (0: none); `arena` names the leaderboard files to write.
    `calibrate` (with `score="log_odds"`): also fit the model's score calibration on the clean scores
    (`training.calibration`) and write the calibrated model folder to `output_dir / "calibrated-model"`.

    Every process must call this (with `accelerate launch`); the main process writes the outputs and returns the
    results dict, the others return None (as does every process when `max_batches` stopped the scoring early).
    """
    if calibrate and score != "log_odds":
        raise ValueError(f"calibration is fitted to the log-odds: score must be 'log_odds', got {score!r}")
    channels = {str(channel): channel for channel in map(parse_channel, perturb)}  # a bad SPEC fails first
    asv = read_asv_scores(asv_scores) if asv_scores is not None else None  # and bad ASV scores
    accelerator = accelerator or create_accelerator()
    output_dir = Path(output_dir)
    model_name = model if isinstance(model, (str, os.PathLike)) else getattr(model, "name_or_path", None)
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    model.to(accelerator.device)
    split = split or default_split(dataset)
    trials = load_trials(dataset, split, where, columns=["attack", *group_by], optional=["system"])
    manifest = {"model_sha1": model_fingerprint(model), "dataset": str(dataset), "split": split,
                "where": dict(where or {})}
    options = dict(protocol=protocol, aggregation=aggregation, batch_size=batch_size, num_workers=num_workers,
                   score=score, max_batches=max_batches, max_full_seconds=max_full_seconds, progress=progress)
    cache = output_dir / DECODE_CACHE
    scores = score_split(model, ChannelTrials(trials, cache) if channels else trials, output_dir / PARTS_DIR,
                         accelerator, manifest=manifest, **options)
    condition_scores = {}
    for name, channel in channels.items() if scores is not None else ():
        condition_scores[name] = score_split(
            model, ChannelTrials(trials, cache, channel, channel_seed),
            output_dir / CONDITIONS_DIR / condition_slug(name) / PARTS_DIR, accelerator,
            manifest={**manifest, "channel": name, "channel_seed": channel_seed}, **options)
    if scores is None or not accelerator.is_main_process or any(s is None for s in condition_scores.values()):
        return None
    labels = np.asarray(trials.column("label"), dtype=np.int64)
    columns = {column: [str(value) for value in trials.column(column)] for column in ["attack", *group_by]}
    columns["attack"] = attack_groups(trials, labels, columns["attack"])
    name, identifier = dataset_identity(dataset)
    result = {
        "schema_version": SCHEMA_VERSION,
        "model": None if model_name is None else str(model_name),
        "dataset": {"name": dataset_name or name, "id": dataset_id or identifier, "config": "default",
                    "split": split, "revision": None},
        "protocol": protocol,
        "score": score,
        **measure(scores, labels, {column: columns[column] for column in group_by}, asv, tdcf, bootstrap),
    }
    utt_ids = trials.column("utt_id")
    if condition_scores:
        result["conditions"] = {}
        for name, values in condition_scores.items():
            measured = measure(values, labels, n_resamples=bootstrap)
            result["conditions"][name] = {**measured["metrics"], **{key: measured[key] for key in
                                                                    ("n_trials", "n_bonafide", "n_spoof")}}
            write_scores(output_dir / CONDITIONS_DIR / condition_slug(name) / "scores.csv",
                         ScoreTable(utt_ids, values, labels, columns))
        result["channel_seed"] = channel_seed
    table = ScoreTable(utt_ids, scores, labels, columns)
    write_scores(output_dir / "scores.csv", table)
    if score_format is not None:
        write_scores(output_dir / SCORE_FILE_NAMES[score_format], table, fmt=score_format)
    write_result(output_dir / "results.json", result)
    if arena is not None:
        write_leaderboard_files(arena, table, EvaluationResult.from_dict(result), model, dataset, output_dir)
    bonafide, spoof = split_by_label(scores, labels)
    plot_det_curves({str(model_name or "model"): (bonafide, spoof)}, output_dir / "det_curve.png",
                    title=f"{result['dataset']['name']} {split} ({protocol})")
    plot_score_histogram(bonafide, spoof, output_dir / "score_histogram.png")
    if condition_scores:
        write_robustness_report(EvaluationResult.from_dict(result), output_dir)
        shutil.rmtree(cache, ignore_errors=True)
    logger.info("%s %s (%s): EER %.3f%% on %d trials; outputs in %s", result["dataset"]["name"], split, protocol,
                100 * result["metrics"]["eer"], len(scores), output_dir)
    if calibrate:
        scale, offset = calibrate_model(model, scores, labels)
        save_model_folder(model, output_dir / CALIBRATED_MODEL_DIR)
        logger.info("calibration fitted on %d trials (scale %.4f, offset %.4f): %s", len(scores), scale, offset,
                    output_dir / CALIBRATED_MODEL_DIR)
    return result


def write_robustness_report(result: EvaluationResult, output_dir: str | os.PathLike) -> None:
    """`robustness.md` (the table of `training.results.robustness_table`) and `robustness.png` (EER per condition
    next to clean) of a result holding `conditions`."""
    output_dir = Path(output_dir)
    title = f"{result.dataset_name} {result.dataset_split} ({result.protocol})"
    write_text_atomic(output_dir / "robustness.md", f"EER per channel condition: {title}, channel seed "
                                                    f"{result.channel_seed}.\n\n{robustness_table(result)}")
    rows = {row["condition"]: (row["eer"], row["eer_ci"]) for row in robustness_rows(result)}
    plot_condition_eers(rows, output_dir / "robustness.png", reference=CLEAN_CONDITION, title=title)


def _channel_spec(text: str) -> str:
    try:
        parse_channel(text)
    except ChannelSpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _key_value(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected COLUMN=VALUE, got {text!r}")
    return key, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a model folder (from `nes2net train` or `nes2net convert`) or a Hub id")
    parser.add_argument("dataset", help="a folder built by `nes2net data build`, or a Hub dataset id")
    parser.add_argument("--split", default=None, help="the split to score (default: eval, else test)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="4sec",
                        help="4sec (default here, the paper's ASVspoof protocol): first 64,600 samples, tiled if "
                             "shorter; full: whole utterances (what pipeline() does); windows: 4.04 s windows every "
                             "2.02 s (the default of `nes2net detect` and the Space). Each trial is scored as "
                             "`nes2net detect` scores its file under the same protocol")
    parser.add_argument("--aggregation", choices=AGGREGATIONS, default="mean",
                        help="windows into one score, as `nes2net detect`: mean (default) or any (the most "
                             "spoof-like window)")
    parser.add_argument("--max-full-seconds", type=float, default=FULL_PROTOCOL_MAX_SECONDS, metavar="SECONDS",
                        help="--protocol full refuses longer trials, which it would hold whole "
                             f"(default {FULL_PROTOCOL_MAX_SECONDS:g})")
    parser.add_argument("--output-dir", required=True, help="folder for scores, results.json and plots")
    parser.add_argument("--where", type=_key_value, action="append", default=[], metavar="COLUMN=VALUE",
                        help="keep only trials with this metadata value, e.g. subset=eval (repeatable)")
    parser.add_argument("--group-by", nargs="*", default=["attack"], metavar="COLUMN",
                        help="metadata columns to break the EER down by (default: attack)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=2, help="audio decoding processes per process")
    parser.add_argument("--score", choices=SCORE_SCALES, default="bonafide_logit",
                        help="the score written and measured (default: the bona fide logit, as the paper)")
    parser.add_argument("--score-format", choices=list(SCORE_FILE_NAMES),
                        help="also write the scores in this ASVspoof format")
    parser.add_argument("--asv-scores", help="ASV scores (lines with target/nontarget/spoof and a score) for min t-DCF")
    parser.add_argument("--tdcf", choices=["2019", "2021"], default="2019", help="t-DCF cost model (default: 2019)")
    parser.add_argument("--dataset-name", help="dataset name in results.json (default: the build's title)")
    parser.add_argument("--dataset-id", help="dataset id in results.json (default: Hub id or folder name)")
    parser.add_argument("--max-batches", type=int,
                        help="stop each process after this many batches; run again to resume")
    parser.add_argument("--calibrate", action="store_true",
                        help="fit the model's score calibration on this split's log-odds (logistic regression; implies "
                             "--score log_odds) and write the calibrated model to OUTPUT_DIR/calibrated-model")
    parser.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"],
                        help="autocast the model (default: Accelerate's configuration)")
    parser.add_argument("--perturb", type=_channel_spec, action="append", default=[], metavar="SPEC",
                        help="also score the trials through this channel condition, e.g. opus:12k, mulaw, "
                             "noise:snr=10, reverb:rt60=0.6, packet-loss:rate=0.1 (repeatable; see training.channel)")
    add_arena_arguments(parser)
    parser.add_argument("--channel-seed", type=int, default=0, help="seed of the conditions' random draws")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="bootstrap resamples for 95%% EER intervals overall, per group and per condition "
                             "(0: none; default: 1000)")


def run(args: argparse.Namespace) -> int:
    try:
        model = load_model(args.model)
    except (ModelNotFoundError, ModelLoadError) as error:
        print(f"nes2net evaluate: error: {error}", file=sys.stderr)
        return 2
    try:
        split = args.split or default_split(args.dataset)
        load_built_dataset(args.dataset, split)
        if args.asv_scores is not None:
            read_asv_scores(args.asv_scores)
    except FileNotFoundError as error:
        print(f"nes2net evaluate: error: {error}: is it a raw corpus? Build it first with `nes2net data build`",
              file=sys.stderr)
        return 2
    except (ValueError, OSError) as error:
        print(f"nes2net evaluate: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    try:
        arena = request_from_arguments(args)
    except ArenaError as error:
        print(f"nes2net evaluate: error: {error}", file=sys.stderr)
        return 2
    accelerator = create_accelerator(mixed_precision=args.mixed_precision)
    try:
        evaluate_model(
            model, args.dataset, args.output_dir, split=split, protocol=args.protocol, aggregation=args.aggregation,
            max_full_seconds=args.max_full_seconds, where=dict(args.where),
            group_by=args.group_by, batch_size=args.batch_size, num_workers=args.num_workers,
            score="log_odds" if args.calibrate else args.score, calibrate=args.calibrate,
            score_format=args.score_format, asv_scores=args.asv_scores, tdcf=args.tdcf,
            dataset_name=args.dataset_name, dataset_id=args.dataset_id, max_batches=args.max_batches,
            accelerator=accelerator, perturb=args.perturb, channel_seed=args.channel_seed, bootstrap=args.bootstrap,
            arena=arena,
        )
    except (UnscoredTrialsError, ArenaError) as error:
        print(f"nes2net evaluate: error: {error}", file=sys.stderr)
        return 1
    return 0
