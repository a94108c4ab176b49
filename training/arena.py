"""The leaderboards' own file formats, written from one `nes2net evaluate` run (`--arena sasa`, `--arena dfarena`).

**Speech Anti-Spoofing Arena** (`sasa`, Hub organisation `SpeechAntiSpoofingBenchmarks`): under OUT,

    .eval_results/<dataset org>/<dataset name>/scores.txt   one `<utterance_id> <score>` line per scored trial, the
                                                           score to 6 decimals, higher = more bona fide
    .eval_results/<dataset org>/<dataset name>/result.yaml  the badge file (`RESULT_SCHEMA`, schema_version 1)
    submissions/<slug>.yaml                                 the submission (`SUBMISSION_SCHEMA`, schema_version 4)

`.eval_results/` mirrors the model repository the scores go to, `submissions/` the data set repository the submission
is a pull request to. Both YAML files point at `scores.txt` by a Hub `resolve/<commit>/` URL, so a first run writes
`scores.txt` only; after it is uploaded, a second run with `--arena-scores-commit` (which rescores nothing: the part
files are resumed) writes the YAML files. Their numbers are checked as the Arena's own check does
(`submission_problems`): each file against its JSON Schema, the SHA-256 of `scores.txt`, `len(scores) + n_skipped ==
n_trials` over the data set's whole split, and `eer_percent` recomputed from `scores.txt` (`arena_eer_percent`, the
Arena's rule) within `EER_TOLERANCE`. More than `SKIP_LIMIT` of the split unscored (e.g. left out by `--where`) is
refused. The system's description, code and checkpoint URLs and the submitter come from a YAML file
(`--arena-system`, `SYSTEM_FILE_SCHEMA`); the data set's commit from `--dataset-revision` or the local copy's Hub
metadata (`local_copy_revision`).

**Speech DF Arena** (`dfarena`): `dfarena/<protocol>.csv`, the protocol file (`file_name,label`, labels `spoof` /
`bonafide`), and `dfarena/<protocol>.txt`, its score file (`<file_name> <score>`), with the trial ids as file names.

Either also writes `model-index.yaml`, the Hub card's `model-index` of the same results.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import torch
import yaml

from hub_cards.model_card import PAPER_ARXIV, model_index
from modeling_nes2net.atomic import write_text_atomic
from training.data import load_built_dataset
from training.data.schema import BONAFIDE, LABEL_NAMES
from hub_cards.results import EvaluationResult
from training.score_files import ScoreTable, read_scores, write_scores

logger = logging.getLogger(__name__)

FORMATS = ("sasa", "dfarena")
ARENA_URL = "https://huggingface.co/spaces/SpeechAntiSpoofingBenchmarks/SpeechAntiSpoofingArena"
RESULTS_DIR = ".eval_results"
SUBMISSIONS_DIR = "submissions"
DFARENA_DIR = "dfarena"
SKIP_LIMIT = 0.05
"""The largest fraction of a split's trials the Arena accepts unscored."""
EER_TOLERANCE = 1e-6
"""How far (in EER percentage points) the Arena's check lets a claimed EER be from the one it recomputes."""
PAPER = {
    "arxiv_id": PAPER_ARXIV,
    "url": f"https://arxiv.org/abs/{PAPER_ARXIV}",
    "bibtex": "@article{liu2025nes2net,\n  title={Nes2Net: A Lightweight Nested Architecture for Foundation Model "
              "Driven Speech Anti-spoofing},\n  author={Liu, Tianchi and Truong, Duc-Tuan and Das, Rohan Kumar and "
              "Lee, Kong Aik and Li, Haizhou},\n  journal={IEEE Transactions on Information Forensics and Security},"
              "\n  year={2025}\n}",
}

_TEXT = {"type": "string", "minLength": 1}
_HTTPS = {"type": "string", "pattern": "^https://"}
_COMMIT = {"type": "string", "pattern": "^[0-9a-f]{7,40}$"}
_COUNT = {"type": "integer", "minimum": 0}
_DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}


def _object(properties: dict[str, Any], optional: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON Schema object with exactly `properties`, all required but `optional`, no other key."""
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "required": [name for name in properties if name not in optional]}


_SLUG = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"}
_DATASET = _object({"id": {"type": "string", "pattern": "^[^/]+/[^/]+$"}, "revision": _COMMIT, "split": _TEXT})
_SCORES = _object({"n_trials": {"type": "integer", "minimum": 1}, "n_skipped": _COUNT,
                   "eer_percent": {"type": "number", "minimum": 0, "maximum": 100}})
_SCORES_URL = {"type": "string", "pattern": r"^https://huggingface\.co/[^/]+/[^/]+/resolve/[0-9a-f]{7,40}/\S+$"}
_SUBMITTER = _object({"hf_username": _TEXT, "contact": _TEXT})

RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Speech Anti-Spoofing Arena result.yaml (badge file)",
    **_object({
        "schema_version": {"const": 1},
        "system": _object({"name": _TEXT, "slug": _SLUG, "paper": _object({"arxiv_id": _TEXT})}, optional=["paper"]),
        "dataset": _DATASET,
        "scores": _SCORES,
        "arena": _object({"url": _HTTPS, "system_url": _HTTPS}),
        "artifact": _object({"scores_url": _SCORES_URL}),
    }),
}
SUBMISSION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Speech Anti-Spoofing Arena submission",
    **_object({
        "schema_version": {"const": 4},
        "system": _object({
            "name": _TEXT, "slug": _SLUG, "description": _TEXT, "code": _HTTPS, "checkpoint": _HTTPS,
            "paper": _object({"arxiv_id": _TEXT, "url": _HTTPS, "bibtex": _TEXT}),
            "params_millions": {"type": "number", "exclusiveMinimum": 0},
        }, optional=["paper", "params_millions"]),
        "dataset": _DATASET,
        "scores": _SCORES,
        "artifact": _object({"scores_url": _SCORES_URL, "scores_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                             "bench_version": _TEXT}),
        "submitter": _SUBMITTER,
        "submitted_at": _DATE,
        "reproduction": {"oneOf": [
            _object({}),
            _object({"reproduced_by": _TEXT, "reproduced_at": _DATE, "reproduced_bench_version": _TEXT,
                     "match": {"enum": ["scoring", "inference"]}}),
        ]},
        "notes": {"type": "string"},
    }, optional=["reproduction", "notes"]),
}
SYSTEM_FILE_SCHEMA: dict[str, Any] = _object({
    "system": _object({"name": _TEXT, "slug": _SLUG, "description": _TEXT, "code": _HTTPS, "checkpoint": _HTTPS,
                       "paper": {"oneOf": [{"type": "null"}, SUBMISSION_SCHEMA["properties"]["system"]["properties"]
                                           ["paper"]]}}, optional=["paper"]),
    "submitter": _SUBMITTER,
    "scores_repo": {"type": "string", "pattern": "^[^/]+/[^/]+$"},
    "notes": {"type": "string"},
}, optional=["notes"])
"""`--arena-system FILE`: what only the submitter knows. `paper` defaults to the Nes2Net paper; `null` leaves it out
(an unpublished system). `scores_repo` is the model repository `scores.txt` is uploaded to."""


def schema_problems(document: Any, schema: dict[str, Any]) -> list[str]:
    """Every way `document` breaks `schema`, one line each (`where: what`); empty when it conforms."""
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in sorted(validator.iter_errors(document), key=lambda error: list(map(str, error.path)))]


# ----------------------------------------------------------------------------------------------- scores and EER


def read_arena_scores(path: str | os.PathLike) -> dict[str, float]:
    """utterance id -> score of a score file in the Arena's format; a malformed line or a repeated id is an error."""
    table = read_scores(path, "arena")
    scores = dict(zip(table.utt_ids, table.scores.tolist()))
    if len(scores) != len(table.utt_ids):
        raise ValueError(f"{path}: an utterance id is scored twice")
    return scores


def arena_eer_percent(bonafide: np.ndarray, spoof: np.ndarray) -> float:
    """The Arena's `eer_percent` of `(n_bonafide,)` and `(n_spoof,)` scores (higher = more bona fide).

    Over the distinct scores `t` (ascending), `P_fa(t) = #(spoof >= t) / N_spoof` and `P_miss(t) = #(bonafide < t) /
    N_bonafide`; the EER is the mean of both, linearly interpolated between the two thresholds where `P_fa - P_miss`
    first changes sign (at the smallest `|P_fa - P_miss|` when it never does). `training.metrics.compute_eer` takes
    the nearest curve point instead: both agree when the difference reaches 0 exactly (equal class sizes, no ties).
    """
    bonafide, spoof = np.sort(np.asarray(bonafide, dtype=np.float64)), np.sort(np.asarray(spoof, dtype=np.float64))
    if not len(bonafide) or not len(spoof):
        raise ValueError("the EER needs at least one bona fide and one spoof score")
    thresholds = np.unique(np.concatenate([bonafide, spoof]))
    p_fa = (len(spoof) - np.searchsorted(spoof, thresholds, side="left")) / len(spoof)
    p_miss = np.searchsorted(bonafide, thresholds, side="left") / len(bonafide)
    gap = p_fa - p_miss
    changes = np.flatnonzero(np.diff(np.sign(gap)))
    if not len(changes):
        index = int(np.argmin(np.abs(gap)))
        return 100 * float(p_fa[index] + p_miss[index]) / 2
    index = int(changes[0])
    step = gap[index] - gap[index + 1]
    weight = 0.0 if step == 0 else gap[index] / step
    at_crossing = [rate[index] + weight * (rate[index + 1] - rate[index]) for rate in (p_fa, p_miss)]
    return 100 * float(sum(at_crossing)) / 2


def labelled_eer_percent(scores: dict[str, float], labels: dict[str, int]) -> float:
    """`arena_eer_percent` of scores by utterance id, split by `labels` (utterance id -> our id, 1 = bona fide)."""
    values = np.array(list(scores.values()))
    is_bonafide = np.array([labels[utt_id] == BONAFIDE for utt_id in scores])
    return arena_eer_percent(values[is_bonafide], values[~is_bonafide])


def sha256_of(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------------- checking


def submission_problems(
    submission: dict[str, Any], result: dict[str, Any] | None, scores_path: str | os.PathLike, labels: dict[str, int]
) -> list[str]:
    """Every reason the Arena would refuse `submission` (and the badge file `result`, when given), one line each.

    `labels` maps each trial of the data set's split to our label id (1 = bona fide); `scores_path` is the score file
    the submission's URL points at. Checks the schemas, the SHA-256, the counts, the skipped fraction and the EER
    recomputed from the file within `EER_TOLERANCE`; empty when all hold."""
    problems = [f"submission: {line}" for line in schema_problems(submission, SUBMISSION_SCHEMA)]
    if result is not None:
        problems += [f"result.yaml: {line}" for line in schema_problems(result, RESULT_SCHEMA)]
        for key in ("dataset", "scores"):
            if result.get(key) != submission.get(key):
                problems.append(f"result.yaml: {key} differs from the submission's")
        if result.get("artifact", {}).get("scores_url") != submission.get("artifact", {}).get("scores_url"):
            problems.append("result.yaml: artifact.scores_url differs from the submission's")
    if problems:
        return problems
    if sha256_of(scores_path) != submission["artifact"]["scores_sha256"]:
        problems.append(f"artifact.scores_sha256 is not the SHA-256 of {scores_path}")
    scores = read_arena_scores(scores_path)
    counts = submission["scores"]
    unknown = sorted(set(scores) - set(labels))
    if unknown:
        problems.append(f"{len(unknown)} scored ids are not trials of the data set, e.g. {unknown[0]!r}")
    if len(scores) + counts["n_skipped"] != counts["n_trials"] or counts["n_trials"] != len(labels):
        problems.append(f"{len(scores)} scores + n_skipped {counts['n_skipped']} must equal n_trials "
                        f"{counts['n_trials']}, the split's {len(labels)} trials")
    if counts["n_skipped"] > SKIP_LIMIT * counts["n_trials"]:
        problems.append(f"n_skipped {counts['n_skipped']} is over {SKIP_LIMIT:.0%} of {counts['n_trials']} trials")
    if not problems:
        recomputed = labelled_eer_percent(scores, labels)
        if abs(recomputed - counts["eer_percent"]) > EER_TOLERANCE:
            problems.append(f"eer_percent {counts['eer_percent']!r} is not the {recomputed!r} recomputed from "
                            f"{scores_path}")
    return problems


# ----------------------------------------------------------------------------------------------- the request


class ArenaError(ValueError):
    """Leaderboard files that cannot be written as asked (one line naming the option or input to change)."""


@dataclass(frozen=True)
class ArenaRequest:
    """What `nes2net evaluate --arena` writes (made by `arena_request`): `formats` (of `FORMATS`), and for `sasa`
    the parsed `--arena-system` file, the data set's `org/name` id and commit, and the commit of the uploaded
    `scores.txt` (None: write `scores.txt` only)."""

    formats: tuple[str, ...]
    system: dict[str, Any] | None = None
    dataset_id: str | None = None
    dataset_revision: str | None = None
    scores_commit: str | None = None


def arena_request(
    formats: Sequence[str],
    dataset: str,
    *,
    system_file: str | os.PathLike | None = None,
    dataset_id: str | None = None,
    dataset_revision: str | None = None,
    scores_commit: str | None = None,
) -> ArenaRequest:
    """Checks what the leaderboard files of `formats` need before anything is scored; an `ArenaError` naming the
    option otherwise. `dataset` is the folder or Hub id scored; `dataset_id` (`--dataset-id`) its Hub id when
    `dataset` is a local copy not in the Hub cache; `dataset_revision` its commit when the copy does not record it."""
    formats = tuple(dict.fromkeys(formats))
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ArenaError(f"--arena: expected {' or '.join(FORMATS)}, got {', '.join(unknown) or 'nothing'}")
    for option, commit in (("--arena-scores-commit", scores_commit), ("--dataset-revision", dataset_revision)):
        if commit is not None and not re.fullmatch(r"[0-9a-f]{7,40}", commit):
            raise ArenaError(f"{option}: expected a commit (7 to 40 hex digits), got {commit!r}")
    if "sasa" not in formats:
        return ArenaRequest(formats)
    if system_file is None:
        raise ArenaError("--arena sasa needs --arena-system FILE (system, submitter and scores_repo)")
    try:
        system = yaml.safe_load(Path(system_file).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ArenaError(f"--arena-system: cannot read {system_file}: {' '.join(str(error).split())}") from None
    problems = schema_problems(system, SYSTEM_FILE_SCHEMA)
    if problems:
        raise ArenaError(f"--arena-system {system_file}: {problems[0]}")
    hub_id = None if Path(dataset).is_dir() else dataset
    dataset_id = next((name for name in (dataset_id, hub_id, _hub_copy_id(dataset))
                       if name and re.fullmatch(r"[^/]+/[^/]+", name)), None)
    if dataset_id is None:
        raise ArenaError(f"--arena sasa: {dataset} has no Hub id org/name: pass --dataset-id "
                         "(e.g. SpeechAntiSpoofingBenchmarks/InTheWild)")
    dataset_revision = dataset_revision or local_copy_revision(dataset)
    if scores_commit is not None and dataset_revision is None:
        raise ArenaError(f"--arena sasa: the commit of {dataset} is unknown: pass --dataset-revision (its commit on "
                         "the Hub) or score a copy made by `hf download`")
    return ArenaRequest(formats, system, dataset_id, dataset_revision, scores_commit)


def local_copy_revision(dataset: str | os.PathLike) -> str | None:
    """The Hub commit a local copy of a data set was downloaded at: the folder name of a Hub cache snapshot
    (`.../snapshots/<commit>`), or the metadata `hf download --local-dir` keeps of its shards; None otherwise."""
    from huggingface_hub._local_folder import read_download_metadata

    folder = Path(dataset).resolve()
    if folder.parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", folder.name):
        return folder.name
    for shard in sorted(folder.glob("data/*.parquet")) if folder.is_dir() else ():
        metadata = read_download_metadata(folder, shard.relative_to(folder).as_posix())
        if metadata is not None:
            return metadata.commit_hash
    return None


def _hub_copy_id(dataset: str | os.PathLike) -> str | None:
    """`org/name` of a Hub cache snapshot folder (`datasets--org--name/snapshots/<commit>`)."""
    folder = Path(dataset).resolve()
    repo = folder.parent.parent.name.split("--") if folder.parent.name == "snapshots" else []
    return f"{repo[1]}/{repo[2]}" if len(repo) == 3 and repo[0] == "datasets" else None


# ----------------------------------------------------------------------------------------------- writing


def write_leaderboard_files(
    request: ArenaRequest,
    table: ScoreTable,
    result: EvaluationResult,
    model: torch.nn.Module,
    dataset: str,
    output_dir: str | os.PathLike,
) -> list[Path]:
    """Writes the files of `request.formats` for the scores `table` of `result` (split `result.dataset_split` of
    `dataset`, scored by `model`) and `model-index.yaml` under `output_dir`; returns the paths written."""
    output_dir = Path(output_dir)
    written = []
    if "sasa" in request.formats:
        written += write_sasa_files(request, table, result, model, dataset, output_dir)
    if "dfarena" in request.formats:
        written += write_dfarena_files(table, result, output_dir)
    name = (result.model or "model").rstrip("/").rsplit("/", 1)[-1]
    scores_repo = request.system["scores_repo"] if request.system else None
    index = yaml.safe_dump({"model-index": model_index(name, [result], scores_repo)}, sort_keys=False)
    written.append(write_text_atomic(output_dir / "model-index.yaml", index))
    return written


def write_sasa_files(
    request: ArenaRequest,
    table: ScoreTable,
    result: EvaluationResult,
    model: torch.nn.Module,
    dataset: str,
    output_dir: Path,
) -> list[Path]:
    """`scores.txt`, then (with `request.scores_commit`) `result.yaml` and `submissions/<slug>.yaml`, both checked
    by `submission_problems` before either is written (see the module docstring)."""
    split = result.dataset_split
    results_dir = output_dir / RESULTS_DIR / request.dataset_id
    split_labels = load_built_dataset(dataset, split).select_columns(["utt_id", "label"]).to_dict()
    labels = dict(zip(map(str, split_labels["utt_id"]), split_labels["label"], strict=True))
    n_skipped = len(labels) - len(table.utt_ids)
    if n_skipped > SKIP_LIMIT * len(labels):
        raise ArenaError(f"--arena sasa: {len(table.utt_ids)} of the {len(labels)} trials of {dataset} {split} were "
                         f"scored; the Arena refuses more than {SKIP_LIMIT:.0%} skipped (drop --where)")
    scores_path = write_scores(results_dir / "scores.txt", table, fmt="arena")
    if request.scores_commit is None:
        logger.info("Arena scores: %s. Upload it to the model repository %s as %s, then run again with "
                    "--arena-scores-commit COMMIT (nothing is scored again) for result.yaml and the submission",
                    scores_path, request.system["scores_repo"], scores_path.relative_to(output_dir))
        return [scores_path]
    counts = {"n_trials": len(labels), "n_skipped": n_skipped,
              "eer_percent": labelled_eer_percent(read_arena_scores(scores_path), labels)}  # the scores as written
    system, paper = request.system["system"], request.system["system"].get("paper", PAPER)
    scores_url = (f"https://huggingface.co/{request.system['scores_repo']}/resolve/{request.scores_commit}/"
                  f"{scores_path.relative_to(output_dir).as_posix()}")
    dataset_block = {"id": request.dataset_id, "revision": request.dataset_revision, "split": split}
    submission = {
        "schema_version": 4,
        "system": {**{key: system[key] for key in ("name", "slug", "description", "code", "checkpoint")},
                   **({} if paper is None else {"paper": paper}),
                   "params_millions": round(sum(p.numel() for p in model.parameters()) / 1e6, 2)},
        "dataset": dataset_block,
        "scores": counts,
        "artifact": {"scores_url": scores_url, "scores_sha256": sha256_of(scores_path),
                     "bench_version": f"nes2net=={version('nes2net')}"},
        "submitter": request.system["submitter"],
        "submitted_at": datetime.date.today().isoformat(),
        **({"notes": request.system["notes"]} if "notes" in request.system else {}),
    }
    badge = {
        "schema_version": 1,
        "system": {"name": system["name"], "slug": system["slug"],
                   **({} if paper is None else {"paper": {"arxiv_id": paper["arxiv_id"]}})},
        "dataset": dataset_block,
        "scores": counts,
        "arena": {"url": ARENA_URL, "system_url": f"{ARENA_URL}?system={system['slug']}"},
        "artifact": {"scores_url": scores_url},
    }
    problems = submission_problems(submission, badge, scores_path, labels)
    if problems:
        raise ArenaError(f"--arena sasa: refusing to write files the Arena would refuse: {problems[0]}")
    return [write_text_atomic(results_dir / "result.yaml", yaml.safe_dump(badge, sort_keys=False)),
            write_text_atomic(output_dir / SUBMISSIONS_DIR / f"{system['slug']}.yaml",
                              yaml.safe_dump(submission, sort_keys=False))]


def write_dfarena_files(table: ScoreTable, result: EvaluationResult, output_dir: Path) -> list[Path]:
    """The Speech DF Arena's protocol file `dfarena/<protocol>.csv` (`file_name,label`) and score file
    `dfarena/<protocol>.txt` (`<file_name> <score>`) of the scored trials; `<protocol>` is the data set's name."""
    protocol = re.sub(r"[^a-z0-9]+", "_", result.dataset_name.lower()).strip("_") or "dataset"
    rows = "".join(f"{utt_id},{LABEL_NAMES[label]}\n" for utt_id, label in zip(table.utt_ids, table.labels))
    return [write_text_atomic(output_dir / DFARENA_DIR / f"{protocol}.csv", f"file_name,label\n{rows}"),
            write_scores(output_dir / DFARENA_DIR / f"{protocol}.txt", table, fmt="cm")]


# ----------------------------------------------------------------------------------------------- the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `nes2net evaluate` that ask for leaderboard files."""
    parser.add_argument("--arena", action="append", choices=FORMATS, default=[],
                        help="also write a leaderboard's files (repeatable): sasa (Speech Anti-Spoofing Arena: "
                             ".eval_results/ORG/NAME/scores.txt, result.yaml, submissions/SLUG.yaml) or dfarena "
                             "(Speech DF Arena: protocol CSV and score file); both add model-index.yaml")
    parser.add_argument("--arena-system", metavar="FILE",
                        help="YAML: system {name, slug, description, code, checkpoint[, paper]}, submitter "
                             "{hf_username, contact}, scores_repo (the model repo scores.txt goes to)[, notes]")
    parser.add_argument("--arena-scores-commit", metavar="COMMIT",
                        help="the commit of scores_repo holding the uploaded scores.txt (the YAML files need it)")
    parser.add_argument("--dataset-revision", metavar="COMMIT",
                        help="the data set's Hub commit (default: read from a local copy made by `hf download`)")


def request_from_arguments(args: argparse.Namespace) -> ArenaRequest | None:
    """The `ArenaRequest` of parsed `nes2net evaluate` arguments (None without `--arena`)."""
    if not args.arena:
        return None
    return arena_request(args.arena, args.dataset, system_file=args.arena_system, dataset_id=args.dataset_id,
                         dataset_revision=args.dataset_revision, scores_commit=args.arena_scores_commit)
