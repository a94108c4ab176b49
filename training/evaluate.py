"""`nes2net evaluate`: score one split of a built dataset and measure it as the ASVspoof tools do.

    nes2net evaluate MODEL DATASET --split eval --protocol 4sec --output-dir OUT [--where subset=eval]
    accelerate launch --multi_gpu --num_processes 8 -m nes2net evaluate MODEL DATASET ...

OUT receives `scores.csv` (utt_id, score, label and the grouping columns), the score file in an ASVspoof format when
`--score-format` asks for one, `results.json` (the `hub_cards.results` schema that model cards are rendered from),
`det_curve.png` and `score_histogram.png`. With `--arena sasa|dfarena`, also the leaderboards' own files and
`model-index.yaml`, the Hub card's `model-index` from the same results (`training.arena`).

Every trial is scored as `nes2net detect` scores a file under the same `--protocol` and `--aggregation`: its stored
bytes decoded by `modeling_nes2net.audio.AudioStream` (soundfile and soxr, or ffmpeg), cut by
`modeling_nes2net.protocols.protocol_segments` (`full`, `4sec` or `windows`), its segments' logits combined by
`modeling_nes2net.scorer.aggregate`. One run scores one protocol; a model card states the figures of each results
file it is given, so run `--protocol windows` (what `detect` and the Space score) next to `--protocol full`.

Channel robustness (`--perturb SPEC`, repeatable, conditions of `training.channel`): the same trials are scored again
under each condition, every recording decoded once, whole, into `clean-decode/` and passed through the condition
with the generator `default_rng((seed, trial index))` before the protocol cuts it. `results.json` then also holds
`conditions` (metrics per condition), each condition's scores go to `conditions/<condition>/scores.csv`, and
`robustness.md` / `robustness.png` show the EER per condition next to clean.

The trials are `training.evaluation_trials`, scoring is `training.split_scoring` (sharded across processes,
resumable), the decode cache of the conditions `training.channel_trials`, the metrics `training.measure` and the
files `training.evaluation_outputs`; this module runs them in order and is the command's argument parsing.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from accelerate import Accelerator

from modeling_nes2net import Nes2NetForAudioClassification, save_model_folder
from modeling_nes2net.model_loading import ModelNotFoundError, load_model
from modeling_nes2net.protocols import PROTOCOLS, Protocol
from modeling_nes2net.scorer import AGGREGATIONS, FULL_PROTOCOL_MAX_SECONDS, Aggregation
from modeling_nes2net.weight_checks import ModelLoadError
from training.arena import ArenaError, ArenaRequest, request_from_arguments, write_leaderboard_files
from training.arena import add_arguments as add_arena_arguments
from training.llr_fitting import calibrate_model
from training.channel import ChannelSpecError, condition_slug, parse_channel
from training.channel_trials import ChannelTrials
from training.data import load_built_dataset
from training.evaluation_outputs import CONDITIONS_DIR, SCORE_FILE_NAMES, write_evaluation
from training.evaluation_trials import attack_groups, dataset_identity, default_split, load_trials
from training.measure import measure, measure_conditions, read_asv_scores
from hub_cards.results import SCHEMA_VERSION, SCORE_SCALES, EvaluationResult
from training.runtime import create_accelerator
from training.score_files import ScoreTable
from training.split_scoring import UnscoredTrialsError, model_fingerprint, score_split

logger = logging.getLogger(__name__)

CALIBRATED_MODEL_DIR = "calibrated-model"
PARTS_DIR = "parts"
DECODE_CACHE = "clean-decode"


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
    state_windows: bool | None = None,
) -> dict[str, Any] | None:
    """Score `split` of `dataset` (None: `default_split`) and write scores, metrics, plots and `results.json` to
    `output_dir`. Each trial is scored as `nes2net detect --protocol PROTOCOL --aggregation AGGREGATION` scores its
    file (see `training.split_scoring.score_split`). When the build names no generator in `attack` but keeps it in a
    `system` column (generic builds), `attack` groups use `system`.

    `perturb` adds channel conditions (`training.channel` SPECs) scored on the same trials (see the module
    docstring); `bootstrap` resamples for 95 % EER intervals (0: none); `arena` names the leaderboard files to write.
    `calibrate` (with `score="log_odds"`): also fit the model's score calibration on the clean scores
    (`training.llr_fitting`) and write the calibrated model folder to `output_dir / "calibrated-model"`.

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
                   score=score, max_batches=max_batches, max_full_seconds=max_full_seconds, progress=progress,
                   use_state_windows=state_windows)
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
        result.update(conditions=measure_conditions(condition_scores, labels, bootstrap), channel_seed=channel_seed)
    table = ScoreTable(utt_ids, scores, labels, columns)
    write_evaluation(output_dir, result, table,
                     {name: ScoreTable(utt_ids, values, labels, columns) for name, values in condition_scores.items()},
                     score_format, str(model_name or "model"))
    if arena is not None:
        write_leaderboard_files(arena, table, EvaluationResult.from_dict(result), model, dataset, output_dir)
    shutil.rmtree(cache, ignore_errors=True)
    logger.info("%s %s (%s): EER %.3f%% on %d trials; outputs in %s", result["dataset"]["name"], split, protocol,
                100 * result["metrics"]["eer"], len(scores), output_dir)
    if calibrate:
        scale, offset = calibrate_model(model, scores, labels)
        save_model_folder(model, output_dir / CALIBRATED_MODEL_DIR)
        logger.info("calibration fitted on %d trials (scale %.4f, offset %.4f): %s", len(scores), scale, offset,
                    output_dir / CALIBRATED_MODEL_DIR)
    return result


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
    parser.add_argument("--state-windows", action=argparse.BooleanOptionalAction, default=None,
                        help="--protocol windows: score long trials from their front-end states, encoded once (or "
                             "not), as `nes2net detect --state-windows` does; default: as the model's config says")
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
            max_full_seconds=args.max_full_seconds, state_windows=args.state_windows, where=dict(args.where),
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
