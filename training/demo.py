"""The embedded default model: build the mini real-audio set, train the `demo` recipe, pick the threshold on dev,
export a complete model folder into the package.

    python -m training.demo                      # everything, on CPU; writes modeling_nes2net/default_model
    python -m training.demo --output-dir /tmp/demo-model --work-dir /tmp/demo-run   # elsewhere
    python -m training.demo --evaluate-only      # the shipped weights evaluated again and the card re-rendered

Steps, each a function here or in the training library:
1. `build_demo_dataset`: the mini set (`../shared/data/mini-antispoof`) built with the generic builder from a derived
   copy of its `metadata.csv` in which a dev split is carved out of `train` (`carve_dev_split`) and each spoofed
   clip's `attack` is its `system` (so the test EER breaks down per spoofing system).
2. `training.train.train` on `training/recipes/demo.yaml`: the final model is the mean of the last 3 epochs' weights.
3. `training.evaluate.evaluate_model` scores dev and test with the log-odds `log p(bonafide) / p(spoof)`; the
   calibration offset (`config.calibration_offset`) moves the dev EER operating point to 0; the test split is
   measured pooled and per spoofing system, under the `full` (whole utterance, what `pipeline` does) and `4sec`
   protocols; the test `full` trials also under the channel conditions `ROBUSTNESS_CONDITIONS` (the card's
   robustness table), with 95 % bootstrap EER intervals.
4. `export_demo_model`: the final weights with that threshold and the training-data note, the feature extractor,
   the evaluation outputs and a model card rendered from them, moved into place atomically (no copy of the model
   code: `nes2net push` exports the folder with it).

Determinism: the data plan, crops and RawBoost draws are fixed by the recipe's seed (`training.batching`); this
module also pins torch to one intra-op thread and deterministic algorithms, because float reductions on CPU may round
differently with another thread count (one thread also keeps OpenMP from spinning when other processes share the
cores; the DataLoader worker decoding and augmenting audio takes the second core). Same torch version and CPU
kernels -> bit-identical safetensors.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from hub_cards.model_card import ModelCardSpec, write_model_card
from hub_cards.render import measure_efficiency
from training.results import load_result
from modeling_nes2net import Nes2NetForAudioClassification, save_model_folder
from modeling_nes2net.atomic import atomic_folder
from modeling_nes2net.folder import remote_code_files
from training.data import build_dataset
from training.data.generic import GENERIC_KEYS
from training.data.schema import BONAFIDE, SPOOF
from training.recipe import load_recipe

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data" / "mini-antispoof"
DEFAULT_DATASET = REPO_ROOT / "runs" / "mini-antispoof-demo"
DEFAULT_WORK_DIR = REPO_ROOT / "runs" / "demo"
DEFAULT_MODEL_DIR = REPO_ROOT / "modeling_nes2net" / "default_model"
ROBUSTNESS_PLOT = REPO_ROOT / "docs" / "robustness-demo.png"
RECIPE = "demo"
DEV_FRACTION = 0.15
NUM_THREADS = 1
TEST_PROTOCOLS = ("full", "4sec")
CARD_REPO_ID = "nes2net/nes2net-x-spectrogram-demo"
CARD_DATASET_ID = "nes2net/mini-antispoof"
ROBUSTNESS_CONDITIONS = ("mp3:32k", "opus:12k", "mulaw", "g722", "gsm", "packet-loss:rate=0.1", "noise:snr=10",
                         "reverb:rt60=0.6")
"""`training.channel` SPECs the test split is scored under for the card: codecs, telephone, network, noise, room."""
BOOTSTRAP_RESAMPLES = 1000


# ----------------------------------------------------------------------------------------------- data


def carve_dev_split(rows: list[dict[str, str]], fraction: float = DEV_FRACTION) -> list[dict[str, str]]:
    """Move `fraction` of the `train` rows to a `dev` split, stratified by (label, system), without randomness.

    Within each (label, system) group of the train split, rows are ordered by the SHA-256 of their `file_name` and the
    first `floor(n * fraction + 0.5)` go to dev (so groups of 1-3 clips stay in train at 15 %). The same table always
    gives the same dev split, on any machine. Returns new rows; the input is not modified.
    """
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        if row["split"] == "train":
            groups[(row["label"], row["system"])].append(row)
    dev = set()
    for members in groups.values():
        ordered = sorted(members, key=lambda row: hashlib.sha256(row["file_name"].encode("utf-8")).hexdigest())
        dev.update(row["file_name"] for row in ordered[: int(len(ordered) * fraction + 0.5)])
    return [{**row, "split": "dev" if row["file_name"] in dev else row["split"]} for row in rows]


def _with_attack_names(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """`attack` = the `system` of each spoofed row (bona fide rows get the builder's `bonafide`)."""
    return [
        {**row, "attack": row["system"] if GENERIC_KEYS[row["label"].strip().lower()] == SPOOF else ""}
        for row in rows
    ]


def build_demo_dataset(source: str | os.PathLike, output_dir: str | os.PathLike, overwrite: bool = False) -> dict[str, Any]:
    """Build a real-audio set at `source` (mini-antispoof, antispoof-plus) into `output_dir` (Parquet shards: train,
    dev, test) with the generic builder.

    The builder reads a derived `metadata.csv` (`attack` from `system`; a dev split carved by `carve_dev_split` when
    the table has none) in a staging
    folder whose other entries link to `source`'s, so the audio is read in place. Returns the build info.
    """
    source = Path(source).resolve()
    table = source / "metadata.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found: point --source at the mini-antispoof folder")
    with open(table, encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        fieldnames, rows = list(reader.fieldnames or []), list(reader)
    missing = {"file_name", "label", "split", "system"} - set(fieldnames)
    if missing:
        raise ValueError(f"{table} lacks the column(s) {', '.join(sorted(missing))}")
    has_dev = any(row["split"] == "dev" for row in rows)
    rows = _with_attack_names(rows if has_dev else carve_dev_split(rows))
    with tempfile.TemporaryDirectory(prefix="mini-antispoof-demo.") as staging:
        staging = Path(staging)
        for entry in source.iterdir():
            if entry.name != table.name:
                (staging / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        with open(staging / table.name, "w", encoding="utf-8", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=[*fieldnames, "attack"], lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        command = (f"python -m training.demo ({source.name}/metadata.csv"
                   + (")" if has_dev else f", carve_dev_split fraction {DEV_FRACTION})"))
        return build_dataset("generic", staging, output_dir, overwrite=overwrite, build_command=command, progress=False,
                             allow_outside_root=True)  # the staging folder's links lead to `source` on purpose


# ----------------------------------------------------------------------------------------------- training and export


def make_deterministic(num_threads: int = NUM_THREADS) -> None:
    """Same thread count and deterministic kernels for every run of the demo recipe (see the module docstring)."""
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True)


def evaluate_demo(final_dir: Path, dataset: Path, eval_dir: Path) -> dict[str, Path]:
    """Score dev (`full`) and test (every `TEST_PROTOCOLS`) with the log-odds; returns name -> results.json."""
    from accelerate import Accelerator

    from training.evaluate import evaluate_model

    accelerator = Accelerator(cpu=True)
    model = Nes2NetForAudioClassification.from_pretrained(final_dir)
    model.name_or_path = CARD_REPO_ID  # the name the results files record, instead of a local path
    runs = {"dev-full": ("dev", "full"), **{f"test-{protocol}": ("test", protocol) for protocol in TEST_PROTOCOLS}}
    outputs = {}
    for name, (split, protocol) in runs.items():
        evaluate_model(model, str(dataset), eval_dir / name, split=split, protocol=protocol, group_by=["attack"],
                       batch_size=8, num_workers=0, score="log_odds", dataset_name="mini-antispoof",
                       dataset_id=CARD_DATASET_ID, accelerator=accelerator, progress=False,
                       perturb=ROBUSTNESS_CONDITIONS if name == "test-full" else (), bootstrap=BOOTSTRAP_RESAMPLES)
        outputs[name] = eval_dir / name / "results.json"
    return outputs


def training_data_note(build_info: dict[str, Any]) -> str:
    """The `config.training_data` text: what the weights saw, in numbers read from the build info."""
    splits = build_info["splits"]
    train, dev = splits["train"], splits["dev"]
    total_minutes = sum(split["duration_hours"] for split in splits.values()) * 60
    return (
        f"A demo trained on the mini-antispoof set ({total_minutes:.0f} minutes of real 16 kHz speech in all): "
        f"{train['num_rows']} training clips ({train['duration_hours'] * 60:.0f} min; "
        f"{train['label_counts']['bonafide']} bona fide from LibriSpeech, VCTK, LJSpeech and others, "
        f"{train['label_counts']['spoof']} spoofed by neural vocoders, Tacotron-style TTS, voice conversion and "
        f"formant/diphone/HTS synthesis), {dev['num_rows']} dev clips for the decision threshold, "
        f"evaluated on its {splits['test']['num_rows']}-clip test split. Not a production detector."
    )


def card_spec(results: list, recipe: dict[str, Any], training_data: str, minutes: float | None) -> ModelCardSpec:
    """The model card's publisher-side facts; every number on the card comes from `results` or the config."""
    training = recipe["training"]
    augmentation = recipe["data"]["augmentation"]["rawboost"]
    settings = {
        "front-end": "log-magnitude STFT, n_fft 2046 (1024 bins), hop 320 (20 ms), no trainable weights",
        "training crops": f"{recipe['data']['crop_samples']} samples (random window, shorter clips tiled)",
        "augmentation": f"RawBoost algorithm {augmentation['algorithm']}",
        "loss": "weighted cross-entropy, class weights spoof 0.1 / bona fide 0.9",
        "optimiser": f"{training['optimizer']}, lr {training['lr']} ({training['schedule']} to {training['min_lr']}), "
                     f"weight decay {training['weight_decay']}",
        "batch / epochs": f"{training['batch_size']} / {training['epochs']}, seed {training['seed']}",
        "checkpoint": f"mean of the weights of the last {training['average_best']} epochs",
        "threshold": "the dev split's EER operating point on the log-odds scale",
    }
    if minutes is not None:
        settings["training time"] = f"{minutes:.0f} minutes on 2 CPU cores (`python -m training.demo`)"
    note = (
        f"{training_data}\n\nThis is a demonstration model, shipped so that `nes2net detect`, the Space and the "
        "examples work offline out of the box. It is not a production deepfake detector: "
        "its errors on speech unlike the mini set (other corpora, microphones, codecs, recent generators) are "
        "unknown and likely large. For the paper's models, convert the authors' released checkpoints with "
        "`nes2net convert` (see docs/checkpoints.md)."
    )
    return ModelCardSpec(
        repo_id=CARD_REPO_ID, kind="demo", license="mit", datasets=[CARD_DATASET_ID], results=results,
        training_data=note, title="Nes2Net-X spectrogram demo", recipe=settings,
        recipe_file="training/recipes/demo.yaml", efficiency=None,
    )


def export_demo_model(
    final_dir: Path, output_dir: Path, results: dict[str, Path], training_data: str, recipe: dict[str, Any],
    minutes: float | None = None,
) -> Path:
    """Write the shipped folder: the final weights with the dev EER point as calibration offset and `training_data`
    in the config, the feature extractor, the evaluation outputs (`evaluation/`) and the card; replaced atomically.

    The card describes the published repository, which `export_model_folder` (run by `nes2net push`) completes with
    the model code; the shipped folder itself is package data, loaded by the package's classes, and holds no copy of
    the code.
    """
    dev_threshold = json.loads(results["dev-full"].read_text(encoding="utf-8"))["metrics"]["threshold"]
    model = Nes2NetForAudioClassification.from_pretrained(final_dir)
    model.config.calibration_offset = -float(dev_threshold)  # the dev EER point becomes log-odds 0
    model.config.training_data = training_data
    with atomic_folder(output_dir) as folder:
        save_model_folder(model, folder)
        ordered = [results[f"test-{protocol}"] for protocol in TEST_PROTOCOLS] + [results["dev-full"]]
        spec = card_spec([load_result(path) for path in ordered], recipe, training_data, minutes)
        spec = ModelCardSpec(**{**spec.__dict__, "efficiency": measure_efficiency(folder)})
        write_model_card(folder, spec)
        for name in remote_code_files():
            (folder / name).unlink()
    logger.info("demo model (threshold %.4f) written to %s", dev_threshold, output_dir)
    return output_dir


def run_demo(source: Path, dataset: Path, work_dir: Path, output_dir: Path, overrides: list[str] = ()) -> Path:
    """The whole pipeline (see the module docstring); returns the exported folder."""
    from training.train import train

    make_deterministic()
    if not (dataset / "build_info.json").is_file():
        build_demo_dataset(source, dataset)
    build_info = json.loads((dataset / "build_info.json").read_text(encoding="utf-8"))
    recipe = load_recipe(RECIPE, [*overrides, f"data.dataset={dataset}", f"training.output_dir={work_dir}"])
    started = time.perf_counter()
    final_dir = train(recipe, resume=False)
    minutes = (time.perf_counter() - started) / 60
    logger.info("trained in %.1f minutes", minutes)
    results = evaluate_demo(final_dir, dataset, work_dir / "demo-eval")
    return export_demo_model(final_dir, output_dir, results, training_data_note(build_info), recipe.to_dict(), minutes)


def reevaluate_shipped_model(source: Path, dataset: Path, work_dir: Path, output_dir: Path) -> Path:
    """Evaluate the weights in `output_dir` again (step 3, resuming any scores already in `work_dir`) and re-export
    the folder with a card rendered from the new evaluation files, without training. The card keeps the training
    time stated by the card it replaces."""
    make_deterministic()
    if not (dataset / "build_info.json").is_file():
        build_demo_dataset(source, dataset)
    build_info = json.loads((dataset / "build_info.json").read_text(encoding="utf-8"))
    card = (output_dir / "README.md").read_text(encoding="utf-8") if (output_dir / "README.md").is_file() else ""
    minutes = re.search(r"\| training time \| (\d+) minutes", card)
    results = evaluate_demo(output_dir, dataset, work_dir / "demo-eval")
    return export_demo_model(output_dir, output_dir, results, training_data_note(build_info),
                             load_recipe(RECIPE).to_dict(), float(minutes.group(1)) if minutes else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="the mini-antispoof folder")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="where the built set goes (reused)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="training run folder (must be new)")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_MODEL_DIR, help="the exported model folder")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override a recipe field (the shipped model uses none)")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="no training: evaluate the weights in --output-dir again and re-render its card")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.evaluate_only:
        reevaluate_shipped_model(args.source, args.dataset, args.work_dir, args.output_dir)
    else:
        run_demo(args.source, args.dataset, args.work_dir, args.output_dir, args.overrides)
    if args.output_dir.resolve() == DEFAULT_MODEL_DIR.resolve():  # the README shows the shipped model's plot
        shutil.copyfile(args.work_dir / "demo-eval" / "test-full" / "robustness.png", ROBUSTNESS_PLOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
