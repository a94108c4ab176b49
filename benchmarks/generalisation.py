"""Which detector generalises: leave-one-family-out cross-validation over mini-antispoof, antispoof-plus and
antispoof-modern together (`training.cross_validation`), every candidate next to the linear baseline in one run.

Each fold holds out one generator family (`training.data.families`) and a share of the genuine sources; a candidate
trains on the rest of the train splits (clean and channel-augmented states of the frozen Whisper tiny.en encoder),
is calibrated on the rest of the dev splits, and scores the held-out clips. The table: pooled EER over all folds
with its 95 % bootstrap interval, the share of held-out fakes passed and genuine clips flagged at the calibrated
threshold, the EER of each held-out family, and the minutes the candidate's cross-validation and test confirmation
took (each row its own: runs of some candidates merge into the JSON). The test confirmation scores each test split
as stored and through MP3 32 kbit/s, Opus 16 kbit/s and G.711 (`CODECS`, cached like the other states).

    python benchmarks/generalisation.py                      # every candidate; writes the JSON and docs/generalisation.md
    python benchmarks/generalisation.py --candidates logistic default
    python benchmarks/generalisation.py --render              # docs/generalisation.md from the JSON (the README's
                                                              # table: python benchmarks/render.py)
    python benchmarks/generalisation.py --device cuda         # encode, train and score on the GPU

It reuses the built corpora and cached states of `python -m training.default_model` (`--work-dir`), computing what
is missing. Each Nes2Net candidate is a recipe (the base recipe with the candidate's overrides) trained by `nes2net
train`'s loop on each fold's cached states (`training.cross_validation.nes2net_candidate`). `--device cuda` runs the
front-end, the training and the scoring on the GPU (the logistic baselines stay on the CPU); on a machine without CUDA
it prints one line and exits.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import math
import os
import platform
import re
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.render import GENERALISATION_BASELINES as BASELINES  # noqa: E402
from benchmarks.render import GENERALISATION_COMPARED as COMPARED  # noqa: E402
from benchmarks.render import worst_channel_loss  # noqa: E402
from benchmarks.results import add_device_argument, cuda_missing, synchronize, train_on  # noqa: E402
from hub_cards.generalisation import weights_digest  # noqa: E402
from modeling_nes2net.atomic import write_text_atomic  # noqa: E402
from modeling_nes2net import Nes2NetForAudioClassification  # noqa: E402
from modeling_nes2net.protocols import SAMPLING_RATE  # noqa: E402
from training.cross_validation import (  # noqa: E402
    Candidate,
    cross_validate,
    fused,
    logistic_probe,
    nes2net_candidate,
    plan_folds,
    test_report,
    trained_on,
)
from training.corpus_sources import build_corpora  # noqa: E402
from training.data.families import family_of  # noqa: E402
from training.default_model import DEFAULT_WORK_DIR, NUM_THREADS, load_default_recipe, make_deterministic  # noqa: E402
from training.frozen_frontend import score_cache  # noqa: E402
from training.recipe import DataSpec, Recipe  # noqa: E402
from training.state_cache import cache_conditions, cache_corpora, load_states, training_states  # noqa: E402
from training.top_layers import tuned_top_layers  # noqa: E402
from training.train import build_model  # noqa: E402
from training.whisper_weights import BASE_WHEELS, WHISPER_WHEELS  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_suffix(".json")
RECIPE = REPO_ROOT / "training" / "recipes" / "frozen_frontend" / "generalisation.yaml"
MARKDOWN = REPO_ROOT / "docs" / "generalisation.md"

ATTM_UNMASKED = {"config": {"normalize_layers": True, "pooling": "mean", "layer_merge": "attm"},
                 "data": {"mask_channels": 0, "mask_frames": 0}}
"""The overrides of `attm-normalized-mean-unmasked`, which the later candidates build on."""


BASE_CORPORA = ("mini-antispoof", "antispoof-plus", "antispoof-modern")
"""The base recipe's real-audio corpora."""

CODECS = {"mp3-32k": "mp3:bitrate=32k", "opus-16k": "opus:bitrate=16k", "g711": "mulaw:rate=8000"}
"""The channels each test split is confirmed under as well (`training.channel` specs): MP3 at 32 kbit/s, Opus at
16 kbit/s and G.711 mu-law at 8 kHz, the losses a detector must bound against its clean EER."""


def vocoded_copies(suffix: str, vocoders: list[str]) -> dict[str, dict]:
    """Extra training corpora: the copy-synthesis by `vocoders` of the train-split genuine clips of each base corpus,
    named `<corpus>-<suffix>` (`training.corpus_sources`)."""
    return {f"{name}-{suffix}": {"vocoded": name, "vocoders": vocoders} for name in BASE_CORPORA}


CLEAN_PROBE = {"inverse_strength": 0.01, "views": ["clean"]}
"""The `logistic-clean` baseline's probe: L2 strength and training views (`training.statistics_head.fit_probe`)."""
LOGISTIC_CLEAN = functools.partial(logistic_probe, **CLEAN_PROBE)

CANDIDATES: dict[str, dict] = {
    "recipe-3-epochs": {"description": "Nes2Net-X, the former default's recipe (weighted merge of all layers, ASTP) "
                                       "at 3 epochs on 2 s windows", "data": {"mask_channels": 0, "mask_frames": 0}},
    "masked": {"description": "the same + one band of up to 40 channels and one span of up to 20 frames of the "
                              "states zeroed per window (the base recipe as it is)"},
    "masked-mean-low-lr": {"description": "masked, mean pooling, lr 3e-4, weight decay 1e-2",
                           "config": {"pooling": "mean"}, "training": {"lr": 3.0e-4, "weight_decay": 1.0e-2}},
    "masked-1-epoch": {"description": "masked, one epoch", "training": {"epochs": 1, "average_best": 1}},
    "normalized": {"description": "masked, every layer's states layer-normalised before the merge",
                   "config": {"normalize_layers": True}},
    "normalized-mean": {"description": "normalized, mean pooling", "config": {"normalize_layers": True,
                                                                             "pooling": "mean"}},
    "attm-normalized-mean": {"description": "normalized-mean with the attentive merge (gated layers concatenated per "
                                            "frame, projected back to 384 channels) instead of the weighted sum",
                             "config": {"normalize_layers": True, "pooling": "mean", "layer_merge": "attm"}},
    "attm-normalized-mean-unmasked": {"description": "attm-normalized-mean without masking the states",
                                      **ATTM_UNMASKED},
    "attm-normalized-mean-4s-windows": {"description": "attm-normalized-mean-unmasked trained on random 4 s windows "
                                                       "of the states (the windows protocol's length) instead of 2 s",
                                        "config": ATTM_UNMASKED["config"],
                                        "data": {**ATTM_UNMASKED["data"], "crop_frames": 200}},
    "vocoded-pairs": {"description": "attm-normalized-mean-unmasked + the HiFi-GAN and WORLD copy-synthesis of every "
                                     "train-split genuine clip as extra fakes (a copy leaves training with its clip's "
                                     "genuine source or its vocoder's family)",
                      **ATTM_UNMASKED, "corpora": vocoded_copies("vocoded", ["hifigan", "world"])},
    "vocoded-hifigan": {"description": "vocoded-pairs with the HiFi-GAN copies alone (no WORLD copies)",
                        **ATTM_UNMASKED, "corpora": vocoded_copies("hifigan", ["hifigan"])},
    "vocoded-hifigan-clean": {"description": "vocoded-hifigan trained on the clean view alone (no channel view: no "
                                             "codecs and no shortcut removal), as logistic-clean is",
                              "config": ATTM_UNMASKED["config"], "corpora": vocoded_copies("hifigan", ["hifigan"]),
                              "data": {**ATTM_UNMASKED["data"], "views": ["clean"]}},
    "vocoded-hifigan-seed-1": {"description": "vocoded-hifigan with training seed 1 instead of 0: the distance "
                                              "between the two rows is the seed noise of one candidate",
                               **ATTM_UNMASKED, "corpora": vocoded_copies("hifigan", ["hifigan"]),
                               "training": {"seed": 1}},
    "vocoded-hifigan-statistics": {"description": "vocoded-hifigan with a statistics head: logistic-clean's probe of "
                                                  "every layer (fitted, as logistic-clean is, on the real-audio "
                                                  "corpora's clean view) fused into the model on the calibration "
                                                  "split (training.statistics_head)",
                                   **ATTM_UNMASKED, "corpora": vocoded_copies("hifigan", ["hifigan"]),
                                   "training": {"statistics_head": {**CLEAN_PROBE, "corpora": list(BASE_CORPORA)}}},
    "vocoded-hifigan-statistics-windows": {"description": "vocoded-hifigan-statistics with logistic-clean-windows' "
                                                          "probe (fitted on 0.5 s windows, Nes2NetConfig."
                                                          "layer_statistics_window) as its statistics head",
                                           **ATTM_UNMASKED, "corpora": vocoded_copies("hifigan", ["hifigan"]),
                                           "training": {"statistics_head": {**CLEAN_PROBE, "window": 25,
                                                                            "corpora": list(BASE_CORPORA)}}},
    "logistic-clean-hifigan": {"description": "logistic-clean trained with the HiFi-GAN copies too (the copies' "
                                              "effect on the linear probe)",
                               "probe": LOGISTIC_CLEAN, "corpora": vocoded_copies("hifigan", ["hifigan"])},
    "base-logistic-clean": {"description": "logistic-clean on the states of the Whisper base encoder (6 layers x 512, "
                                           "multilingual) instead of tiny.en's (4 x 384)",
                            "probe": LOGISTIC_CLEAN, "model": {"frontend_weights": BASE_WHEELS},
                            "data": {"views": ["clean"]}},
    "logistic-c-1e-2": {"description": "logistic (trained on both views, clean and channel) with logistic-clean's "
                                       "L2 prior, C = 0.01: which of the baselines' two differences sets the clean "
                                       "EER and which the loss under codecs",
                        "probe": functools.partial(logistic_probe, inverse_strength=CLEAN_PROBE["inverse_strength"])},
    "logistic-clean-c-1e-3": {"description": "logistic-clean with a stronger L2 prior, C = 1e-3 (the frame head's "
                                             "probe generalised best at 1e-4)",
                              "probe": functools.partial(logistic_probe, **{**CLEAN_PROBE, "inverse_strength": 1e-3})},
    "logistic-clean-c-1e-4": {"description": "logistic-clean with a stronger L2 prior, C = 1e-4",
                              "probe": functools.partial(logistic_probe, **{**CLEAN_PROBE, "inverse_strength": 1e-4})},
    "logistic-clean-c-1e-5": {"description": "logistic-clean with a stronger L2 prior, C = 1e-5",
                              "probe": functools.partial(logistic_probe, **{**CLEAN_PROBE, "inverse_strength": 1e-5})},
    "logistic-clean-windows": {"description": "logistic-clean fitted on 0.5 s windows of the states instead of whole "
                                              "clips (the mean and std of every layer over 25 frames, at every 10th "
                                              "frame, each window labelled as its clip), scoring a clip by the mean "
                                              "of its windows' log-odds",
                               "probe": functools.partial(logistic_probe, **CLEAN_PROBE, window=25)},
    "logistic-clean-paired": {"description": "logistic-clean with a paired term: each train-split genuine clip's "
                                             "statistics minus its HiFi-GAN copy's are a bona fide row and the "
                                             "reverse a spoofed one (fit_probe's paired_weight, 1), the copies "
                                             "entering as pairs alone",
                              "probe": functools.partial(logistic_probe, **CLEAN_PROBE, corpora=list(BASE_CORPORA),
                                                         paired_weight=1.0),
                              "corpora": vocoded_copies("hifigan", ["hifigan"])},
    "tuned-top-2": {"description": "logistic-clean's probe as the head of the encoder's top 2 layers, both fine-tuned "
                                   "(one epoch, Adam lr 2e-5, 8 clips a step) on the cached states below them "
                                   "(training.top_layers)",
                    "tune_top_layers": {"layers": 2, "epochs": 1, "lr": 2.0e-5, **CLEAN_PROBE}},
    "tuned-all-4": {"description": "tuned-top-2 with all 4 of the encoder's layers fine-tuned (only the convolutional "
                                   "stem stays frozen)",
                    "tune_top_layers": {"layers": 4, "epochs": 1, "lr": 2.0e-5, **CLEAN_PROBE}},
    "normalized-mean-heavy-mask": {"description": "normalized-mean with bands of up to 128 channels and spans of up "
                                                  "to 40 frames masked, weight decay 1e-2",
                                   "config": {"normalize_layers": True, "pooling": "mean"},
                                   "data": {"mask_channels": 128, "mask_frames": 40},
                                   "training": {"weight_decay": 1.0e-2}},
}
"""Nes2Net candidates: overrides of the base recipe's (`RECIPE`) `model.config`, `data` and `training` sections, and
training corpora added to its `data.corpora` (`corpora`); a `probe` candidate (`training.cross_validation`) trains
instead of Nes2Net, on the recipe's corpora with those added; a `tune_top_layers` candidate fine-tunes the
front-end's top layers with a probe head (`training.top_layers.tuned_top_layers`, these arguments). `model` overrides
other fields of the recipe's model (`frontend_weights`: another front-end, whose states are cached in their own
folder)."""


BASELINE_PROBES = {
    "logistic": ("logistic regression on mean + std pooled states of every layer", logistic_probe),
    "logistic-clean": ("logistic on the clean view only (no channel view), L2 C = 0.01 (the best of C = 1, 0.01 and "
                       "the stronger priors below on these folds)",
                       LOGISTIC_CLEAN),
}
"""The linear baselines, one per name of `BASELINES`: description and `training.cross_validation` candidate."""

FUSIONS: dict[str, tuple[str, list[str]]] = {
    "vocoded-hifigan+logistic-clean": ("vocoded-hifigan and logistic-clean fused: one logistic regression on their "
                                       "two scores, fitted on the calibration split",
                                       ["vocoded-hifigan", "logistic-clean"]),
}
"""Score fusions of other rows (`training.cross_validation.fused`): description and the names fused."""


def candidate_recipe(recipe: Recipe, spec: dict) -> Recipe:
    """`recipe` with a `CANDIDATES` entry's overrides (and its extra training `corpora` added to the recipe's)."""
    return dataclasses.replace(
        recipe, model=dataclasses.replace(recipe.model, config={**recipe.model.config, **spec.get("config", {})},
                                          **spec.get("model", {})),
        data=dataclasses.replace(recipe.data, corpora={**recipe.data.corpora, **spec.get("corpora", {})},
                                 **spec.get("data", {})),
        training=dataclasses.replace(recipe.training, **spec.get("training", {})))


def build_candidates(names: list[str], recipe: Recipe, frontend: Nes2NetForAudioClassification,
                     device: str = "cpu") -> dict:
    """name -> `training.cross_validation` candidate, for the baselines and `CANDIDATES` (scoring on `device`; a
    `tune_top_layers` candidate copies the layers of `frontend`'s encoder), each trained on its own recipe's corpora."""
    def candidate(name: str) -> Candidate:
        if name in BASELINE_PROBES:
            return trained_on(recipe.data.corpora, BASELINE_PROBES[name][1])
        if name in FUSIONS:
            return fused(candidate(part) for part in FUSIONS[name][1])
        spec = CANDIDATES[name]
        own = candidate_recipe(recipe, spec)
        if "tune_top_layers" in spec:
            return trained_on(own.data.corpora,
                              tuned_top_layers(frontend.nes2net.frontend.encoder, **spec["tune_top_layers"],
                                               device=device))
        return trained_on(own.data.corpora, spec.get("probe") or nes2net_candidate(own, device))

    return {name: candidate(name) for name in names}


def with_training_corpora(names: list[str], recipe: Recipe) -> DataSpec:
    """`recipe`'s data section with every extra training corpus of the `CANDIDATES` among `names` (or fused by
    them) added."""
    names = [part for name in names for part in FUSIONS.get(name, ("", [name]))[1]]
    extra = {corpus: spec for name in names for corpus, spec in CANDIDATES.get(name, {}).get("corpora", {}).items()}
    return dataclasses.replace(recipe.data, corpora={**recipe.data.corpora, **extra})


def frontend_of(name: str, recipe: Recipe) -> str:
    """The front-end weights candidate `name` encodes with (`model.frontend_weights`)."""
    return CANDIDATES.get(name, {}).get("model", {}).get("frontend_weights", recipe.model.frontend_weights)


def encoder_name(frontend: str) -> str:
    """The encoder front-end weights hold: its `WHISPER_WHEELS` name, or the weights as named."""
    return WHISPER_WHEELS[frontend].encoder if frontend in WHISPER_WHEELS else frontend


def states_folder(work_dir: Path, frontend: str, recipe: Recipe) -> Path:
    """Where the states of `frontend` are cached: `states` for the recipe's own, `states-<encoder>` for another."""
    if frontend == recipe.model.frontend_weights:
        return work_dir / "states"
    return work_dir / ("states-" + re.sub(r"[^a-z0-9.]+", "-", encoder_name(frontend).lower()).strip("-"))


def frontend_cost(model: Nes2NetForAudioClassification, seconds: float = 60.0, device: str = "cpu") -> float:
    """Seconds `model` takes per second of audio to encode noise as the state cache does (whole pieces as long as the
    front-end's chunks, every hidden state kept), `seconds` of it after one warm-up piece: nearly all of it is the
    front-end."""
    samples = model.nes2net.frontend.state_chunking().samples
    piece = torch.randn(1, samples, generator=torch.Generator().manual_seed(0)).to(device)
    pieces = math.ceil(seconds * SAMPLING_RATE / samples)
    with torch.inference_mode():
        model.nes2net(piece, output_hidden_states=True)
        synchronize(device)
        started = time.perf_counter()
        for _ in range(pieces):
            model.nes2net(piece, output_hidden_states=True)
        synchronize(device)
    return (time.perf_counter() - started) / (pieces * samples / SAMPLING_RATE)


def run(work_dir: Path, names: list[str], recipe_path: Path, threads: int, compared: Path,
        device: str = "cpu") -> dict:
    """Cross-validate `names`, then confirm each trained on every train split on each corpus' test split, next to
    the `compared` model folder (scored on the same cached states), models on `device`; returns the JSON written, each
    candidate's row with the `minutes` of its cross-validation and test confirmation and the front-end it encodes
    with (`frontends`: each one's encoder sizes and cost per audio second, measured in this run)."""
    train_on(device)
    make_deterministic(threads)
    recipe = load_default_recipe(recipe_path, work_dir)
    evaluated = list(recipe.data.corpora)  # folds and tests: the base recipe's corpora, whatever a candidate adds
    compared_model = Nes2NetForAudioClassification.from_pretrained(compared).eval().to(device)
    rows, test, frontends, folds = {}, {}, {}, None
    for frontend in dict.fromkeys(frontend_of(name, recipe) for name in names):
        group = [name for name in names if frontend_of(name, recipe) == frontend]
        own = candidate_recipe(recipe, {"model": {"frontend_weights": frontend}})
        data = with_training_corpora(group, own)
        if frontend != recipe.model.frontend_weights:  # another front-end caches the views its candidates train on
            data = dataclasses.replace(data, views=sorted({view for name in group for view in
                                                           candidate_recipe(own, CANDIDATES[name]).data.views}))
        corpora = build_corpora(data.corpora, work_dir / "data")
        model = build_model(own.model, work_dir / "weights").to(device)
        states_dir = states_folder(work_dir, frontend, recipe)
        paths = cache_corpora(model, corpora, states_dir, data)
        train, dev = training_states(paths, corpora, views=data.views)
        held_out = load_states(paths, [(name, split, "clean") for name in evaluated for split in ("train", "dev")])
        tests = {name: load_states(paths, [(name, "test", "clean")]) for name in evaluated}
        codec_paths = cache_conditions(model, {name: corpora[name] for name in evaluated}, states_dir, CODECS,
                                       seed=data.channel_seed)
        codecs = {name: {codec: load_states(codec_paths, [(name, "test", codec)]) for codec in CODECS}
                  for name in evaluated}
        folds = folds or plan_folds(held_out, family_of)
        encoder = model.config.frontend_config
        frontends[frontend] = {"layers": encoder.encoder_layers, "width": encoder.d_model,
                               "seconds_per_audio_second": frontend_cost(model, device=device)}
        if frontend == recipe.model.frontend_weights:  # the compared model encodes with the recipe's front-end
            test[COMPARED] = {corpus: test_report(lambda cache: score_cache(compared_model, cache), split,
                                                  codecs[corpus]) for corpus, split in tests.items()}
        for name, candidate in build_candidates(group, own, model, device).items():
            started = time.perf_counter()
            report = cross_validate({name: candidate}, train, dev, held_out, folds, family_of)[name]
            scorer = candidate(train, dev)
            test[name] = {corpus: test_report(scorer, split, codecs[corpus]) for corpus, split in tests.items()}
            rows[name] = {**report, "description": describe(name), "frontend": frontend,
                          "minutes": (time.perf_counter() - started) / 60}
        del train, dev, held_out, tests, codecs  # one front-end's states in memory at a time
    return {
        "corpora": evaluated,
        "folds": [{"family": fold.family, "genuine_sources": list(fold.genuine_sources)} for fold in folds],
        "candidates": rows,
        "test": test,
        "frontends": frontends,
        "recipe_frontend": recipe.model.frontend_weights,
        "compared": {"path": os.path.relpath(compared, REPO_ROOT), "weights_sha256": weights_digest(compared),
                     "training_data": compared_model.config.training_data.split(". ")[0]},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {threads} torch thread(s), {device}",
    }


def merged(results: dict, path: Path) -> dict:
    """`results` with the rows of candidates it did not run kept from the JSON at `path` (same corpora and folds), so
    candidates can be measured in separate runs (each row keeps its own `minutes`); the order is baselines, then
    `CANDIDATES`."""
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous["folds"] == results["folds"] and previous["corpora"] == results["corpora"]:
            for section in ("candidates", "test", "frontends"):
                results[section] = {**previous.get(section, {}), **results.get(section, {})}
    order = [COMPARED, *BASELINES, *CANDIDATES, *FUSIONS]
    for section in ("candidates", "test"):
        results[section] = {name: results[section][name] for name in order if name in results[section]}
    return results


def describe(name: str) -> str:
    if name in BASELINE_PROBES or name in FUSIONS:
        return {**BASELINE_PROBES, **FUSIONS}[name][0]
    return CANDIDATES[name]["description"]


def channels_section(results: dict) -> list[str]:
    """The test EER of each row measured under `CODECS` (rows of runs that did not measure them are left out): clean,
    then each channel with the points it adds, and the worst loss over splits and channels."""
    worst = {name: worst_channel_loss(row) for name, row in results["test"].items()}
    rows = {name: row for name, row in results["test"].items() if worst[name] is not None}
    if not rows:
        return []
    corpora = results["corpora"]
    channels = list(dict.fromkeys(channel for row in rows.values() for report in row.values()
                                  for channel in report.get("channels", {})))
    lines = ["", "## Under codecs", "",
             "EER % of each whole test split as stored (clean) and encoded through each channel (in brackets: the "
             "points it adds to the clean EER), and the most points a row loses; rows measured before the channels "
             "were are left out.", "",
             "| model | most points lost | " + " | ".join(f"{corpus} {channel}" for corpus in corpora
                                                         for channel in ("clean", *channels)) + " |",
             "|---|---|" + "---|" * (len(corpora) * (1 + len(channels)))]
    for name, row in rows.items():
        points, channel, corpus = worst[name]
        cells = [f"{points:+.1f} ({channel}, {corpus})"]
        for corpus in corpora:
            clean = row[corpus]["all"]["eer"]
            cells.append(f"{clean:.1f}")
            measured = row[corpus].get("channels", {})
            cells += [f"{measured[channel]['eer']:.1f} ({measured[channel]['eer'] - clean:+.1f})"
                      if channel in measured else "-" for channel in channels]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def frontends_section(results: dict) -> list[str]:
    """The front-ends the rows encode with: sizes, cost per audio second (measured in the run that cached their
    states) and the rows on each (a row without a `frontend` is on the base recipe's)."""
    if not results.get("frontends"):
        return []
    lines = ["", "## Front-ends", "",
             "Seconds each front-end takes per second of audio (whole 30 s pieces, every hidden state kept, as the "
             "state cache encodes) on the machine below.", "",
             "| front-end | weights | layers x width | seconds per audio second | rows |", "|---|---|---|---|---|"]
    for frontend, measured in results["frontends"].items():
        names = [name for name, row in results["candidates"].items()
                 if row.get("frontend", results.get("recipe_frontend")) == frontend]
        rows = (f"every other row ({len(names)})" if frontend == results.get("recipe_frontend")
                else ", ".join(names))
        lines.append(f"| {encoder_name(frontend)} | `{frontend}` | {measured['layers']} x {measured['width']} | "
                     f"{measured['seconds_per_audio_second']:.3f} | {rows} |")
    return lines


def render(results: dict) -> str:
    """docs/generalisation.md from the JSON `run` wrote."""
    families = [fold["family"] for fold in results["folds"]]
    lines = [
        "# Leave-one-family-out cross-validation",
        "",
        "Rendered by `python benchmarks/generalisation.py --render` from `benchmarks/generalisation.json`; do not "
        "edit by hand.",
        "",
        f"Corpora: {', '.join(results['corpora'])} (train and dev splits). Each fold holds out one generator family "
        "and a share of the genuine sources; EER % pooled over the held-out scores of all folds (95 % bootstrap "
        "interval), % of held-out fakes passed and of genuine clips flagged at the calibrated threshold, then the EER "
        "% of each held-out family, and the minutes the candidate's cross-validation and test confirmation took (-: "
        "not recorded by the run that measured it).",
        "",
        "| candidate | pooled EER | fakes passed | genuine flagged | " + " | ".join(families) + " | minutes |",
        "|---|---|---|---|" + "---|" * len(families) + "---|",
    ]
    for name, row in results["candidates"].items():
        pooled = row["pooled"]
        lines.append(
            f"| {name}: {row['description']} | {pooled['eer']:.1f} ({pooled['eer_low']:.1f}-{pooled['eer_high']:.1f})"
            f" | {pooled['spoof_passed']:.0f} % | {pooled['bonafide_flagged']:.0f} % | "
            + " | ".join(f"{row['folds'][family]['eer']:.1f}" for family in families)
            + (f" | {row['minutes']:.0f} |" if "minutes" in row else " | - |"))
    corpora = results["corpora"]
    lines += [
        "", "## Confirmed on the test splits", "",
        "Each candidate trained on every train split (both views) and calibrated on the dev splits; "
        f"`{COMPARED}`: {results['compared']['path']} ({results['compared']['training_data']}). EER % (95 % bootstrap interval) "
        "of each test split, whole and on the spoofs of its `unseen_in_train` generators (against every genuine clip "
        "of the split); then % of fakes passed / genuine "
        "flagged at the calibrated threshold on the whole split.", "",
        "| model | " + " | ".join(f"{corpus} {part}" for corpus in corpora for part in ("all", "unseen", "errors"))
        + " |",
        "|---|" + "---|" * (3 * len(corpora)),
    ]
    for name, row in results["test"].items():
        cells = []
        for corpus in corpora:
            report = row[corpus]
            for part in ("all", "unseen"):
                rates = report.get(part)
                cells.append(f"{rates['eer']:.1f} ({rates['eer_low']:.1f}-{rates['eer_high']:.1f})" if rates else "-")
            cells.append(f"{report['all']['spoof_passed']:.0f} / {report['all']['bonafide_flagged']:.0f} %")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += channels_section(results)
    lines += frontends_section(results)
    lines += ["", f"Machine: {results['machine']}.", "",
              "Held-out genuine sources per fold:", ""]
    lines += [f"- {fold['family']}: {', '.join(fold['genuine_sources'])}" for fold in results["folds"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="the candidates' base recipe")
    parser.add_argument("--candidates", nargs="+", default=[*BASELINES, *CANDIDATES, *FUSIONS],
                        choices=[*BASELINES, *CANDIDATES, *FUSIONS])
    parser.add_argument("--threads", type=int, default=NUM_THREADS, help="torch threads (1 on a busy machine)")
    parser.add_argument("--compared", type=Path, default=REPO_ROOT / "modeling_nes2net" / "default_model",
                        help="a model folder scored on the test splits next to the candidates")
    parser.add_argument("--output", type=Path, default=RESULTS,
                        help="the JSON written (docs/generalisation.md is rendered only from the default)")
    parser.add_argument("--render", action="store_true", help="only render docs/generalisation.md from --output")
    add_device_argument(parser)
    args = parser.parse_args(argv)
    if not args.render and cuda_missing(args.device):
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.render:
        results = run(args.work_dir, args.candidates, args.recipe, args.threads, args.compared, args.device)
        write_text_atomic(args.output, json.dumps(merged(results, args.output), indent=1))
    markdown = render(json.loads(args.output.read_text(encoding="utf-8")))
    if args.output.resolve() == RESULTS.resolve():  # a trial run written elsewhere leaves the docs alone
        write_text_atomic(MARKDOWN, markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
