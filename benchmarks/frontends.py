"""Which front-end generalises to unseen generators: the same Nes2Net-X back-end trained on the same clean training
crops of mini-antispoof + antispoof-plus after each front-end, scored on whole test clips.

Front-ends: the log-magnitude STFT of the spectrogram front-end (1024 bins), LFCC (32 linear-filter cepstra with
deltas and double deltas, the classic anti-spoofing front-end), a multi-resolution log-mel (80 bands at 16, 32 and
64 ms windows) and the frozen Whisper tiny.en encoder (its 5 hidden states merged by learned weights), all at the
20 ms frame rate. Each row: dev EER, antispoof-plus test EER pooled, on generators seen in training and on the
`unseen_in_train` subset (95 % bootstrap interval), the mini-antispoof test EER, and the cost (front-end seconds
per audio second on this machine, back-end MACs per 4 s). A per-system table follows. No augmentation and one seed:
this ranks front-ends; `python -m training.default_model` trains the candidate default with the channel augmentation.

Run after `python -m training.default_model` (it reuses the built corpora and the cached Whisper states of its
work folder):
`python benchmarks/frontends.py [--work-dir runs/demo] [--epochs 20] [--markdown docs/frontends.md] [--device cuda]`.
`--device cuda` runs the Whisper encoder, the training and the scoring on the GPU (the spectral features are numpy, on
the CPU); on a machine without CUDA it prints one line and exits.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.signal
import torch
import yaml
from datasets import concatenate_datasets
from transformers.audio_utils import mel_filter_bank

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import add_device_argument, cuda_missing, synchronize, train_on  # noqa: E402
from modeling_nes2net import Nes2NetConfig, Nes2NetForAudioClassification  # noqa: E402
from modeling_nes2net.complexity import backend_complexity  # noqa: E402
from training.batching import WaveformDataset, build_augmentation, build_preprocessing  # noqa: E402
from training.data import load_built_dataset  # noqa: E402
from training.frozen_frontend import (  # noqa: E402
    CORPUS_COLUMN,
    FrontendCache,
    cache_frontend_states,
    cache_states,
    mix_corpora,
    score_cache,
)
from training.corpus_sources import build_corpora  # noqa: E402
from training.default_model import DEFAULT_WORK_DIR, NUM_THREADS, REPO_ROOT, make_deterministic  # noqa: E402
from training.recipe import ModelSpec, Recipe, states_recipe  # noqa: E402
from training.train import build_model, train_on_states  # noqa: E402
from training.whisper_weights import WHEEL_REQUIREMENT  # noqa: E402
from training.metrics import bootstrap_eer_interval, breakdown, compute_eer  # noqa: E402

RATE, HOP = 16_000, 320
RECIPE = REPO_ROOT / "training" / "recipes" / "frozen_frontend" / "frontends.yaml"
CACHE_COLUMNS = ("label", "utt_id", "attack")
Features = Callable[[np.ndarray], np.ndarray]
"""waveform `(samples,)` float32 -> features `(frames, D)` float32 at the 20 ms frame rate."""


@dataclass
class FrontendsRecipe:
    """`RECIPE`: `model.config` (a `Nes2NetConfig`), `corpora` (name -> `{source, weight}`), `data` (mix and crop
    seeds, `crop`, `crop_samples`, `views`, `preprocess`, `augmentation` as in `training.batching`, and the windows:
    `crop_frames`) and `training` (`nes2net train`'s); `backend` is the recipe each back-end is trained by."""

    model_config: dict
    corpora: dict[str, dict]
    data: dict
    backend: Recipe

    @classmethod
    def load(cls, path: Path) -> FrontendsRecipe:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(raw["model"]["config"], raw["corpora"], raw["data"],
                   states_recipe(raw["corpora"], raw["data"], raw.get("training")))


def trained_model(model: Nes2NetForAudioClassification, train: FrontendCache, dev: FrontendCache, backend: Recipe,
                  run_dir: Path, device: str = "cpu") -> Nes2NetForAudioClassification:
    """`model` trained on the cached `train` states by `nes2net train`'s loop (`backend`, from scratch in `run_dir`),
    calibrated on `dev`, loaded back on `device`."""
    shutil.rmtree(run_dir, ignore_errors=True)
    final = train_on_states(backend, run_dir, (train, dev), model)
    return Nes2NetForAudioClassification.from_pretrained(final).eval().to(device)


def _power_spectrum(waveform: np.ndarray, n_fft: int) -> np.ndarray:
    """`(n_fft // 2 + 1, frames)` power of Hann-windowed frames every `HOP` samples (no centring)."""
    frames = np.lib.stride_tricks.sliding_window_view(waveform, n_fft)[::HOP]
    return (np.abs(np.fft.rfft(frames * scipy.signal.get_window("hann", n_fft), axis=-1)) ** 2).T


def log_stft(waveform: np.ndarray) -> np.ndarray:
    return 0.5 * np.log(np.maximum(_power_spectrum(waveform, 2046), 1e-10)).T


def _linear_filters(n_fft: int, count: int) -> np.ndarray:
    """`(count, n_fft // 2 + 1)` triangular filters evenly spaced on a linear frequency axis."""
    edges = np.linspace(0, n_fft // 2, count + 2)
    bins = np.arange(n_fft // 2 + 1)[None, :]
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0, np.minimum((bins - low) / (centre - low), (high - bins) / (high - centre)))


def _deltas(features: np.ndarray, reach: int = 2) -> np.ndarray:
    """HTK regression deltas of `(D, frames)` over +-`reach` frames (edges repeated)."""
    padded = np.pad(features, ((0, 0), (reach, reach)), mode="edge")
    frames = features.shape[1]
    weighted = sum(n * (padded[:, reach + n: reach + n + frames] - padded[:, reach - n: reach - n + frames])
                   for n in range(1, reach + 1))
    return weighted / (2 * sum(n * n for n in range(1, reach + 1)))


def lfcc(waveform: np.ndarray, n_fft: int = 512, count: int = 32) -> np.ndarray:
    power = _power_spectrum(waveform, n_fft)
    cepstra = scipy.fft.dct(np.log(_linear_filters(n_fft, count) @ power + 1e-10), type=2, axis=0, norm="ortho")
    delta = _deltas(cepstra)
    return np.concatenate([cepstra, delta, _deltas(delta)]).T


def multi_resolution_log_mel(waveform: np.ndarray) -> np.ndarray:
    frames = (waveform.size - 1024) // HOP + 1
    bands = []
    for n_fft in (256, 512, 1024):
        filters = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=80, min_frequency=0.0,
                                  max_frequency=RATE / 2, sampling_rate=RATE, norm="slaney", mel_scale="slaney")
        offset = (1024 - n_fft) // 2  # centre the shorter windows on the longest one's frames
        power = _power_spectrum(waveform[offset:], n_fft)[:, :frames]
        bands.append(np.log(filters.T @ power + 1e-10))
    return np.concatenate(bands).T


SPECTRAL_FRONTENDS: dict[str, Features] = {
    "log-STFT (1024 bins)": log_stft,
    "LFCC (32 + deltas)": lfcc,
    "multi-resolution log-mel (3 x 80)": multi_resolution_log_mel,
}


def spectral_cache(features: Features, items: WaveformDataset) -> tuple[FrontendCache, float]:
    """The cache of view 0 of `items` through `features`, and the seconds `features` took per audio second."""
    spent = audio = 0.0

    def encode(waveform: np.ndarray) -> torch.Tensor:
        nonlocal spent, audio
        started = time.perf_counter()
        state = torch.from_numpy(features(waveform))[None]
        spent, audio = spent + time.perf_counter() - started, audio + waveform.size / RATE
        return state

    cache = cache_states(encode, items, [0], desc="spectral")
    return cache, spent / audio


def training_items(recipe: FrontendsRecipe, corpora: dict[str, Path], augmented: bool) -> WaveformDataset:
    """The training splits of `corpora` mixed by `mix_corpora`, cropped and preprocessed as the recipe says; with
    `augmented`, also through the recipe's augmentation."""
    data = recipe.data
    splits = {name: (load_built_dataset(folder, "train"), recipe.corpora[name]["weight"])
              for name, folder in corpora.items()}
    mixed = mix_corpora(splits, seed=data["mix_seed"], columns=["audio", *CACHE_COLUMNS])
    return WaveformDataset(mixed, data.get("crop", "full"), data["crop_samples"],
                           build_augmentation(data.get("augmentation")) if augmented else None, seed=data["seed"],
                           columns=[*CACHE_COLUMNS, CORPUS_COLUMN],
                           preprocessing=build_preprocessing(data.get("preprocess")))


def dev_items(corpora: dict[str, Path]) -> dict[str, WaveformDataset]:
    """Each corpus' dev split, whole clips, clean, with its name in `corpus`."""
    items = {}
    for name, folder in corpora.items():
        split = load_built_dataset(folder, "dev").select_columns(["audio", *CACHE_COLUMNS])
        items[name] = WaveformDataset(split.add_column(CORPUS_COLUMN, [name] * len(split)), "full",
                                      columns=[*CACHE_COLUMNS, CORPUS_COLUMN])
    return items


def cached_states(model: Nes2NetForAudioClassification, recipe: FrontendsRecipe, corpora: dict[str, Path],
                  cache_dir: Path) -> tuple[FrontendCache, FrontendCache]:
    """(train, dev) front-end states, computed once into `cache_dir` and read back on later runs: `training_items`
    encoded in `views` views (view 0 clean, the others augmented), and `dev_items`."""
    train_file, dev_file = cache_dir / "train.safetensors", cache_dir / "dev.safetensors"
    if not train_file.is_file():
        clean = cache_frontend_states(model, training_items(recipe, corpora, augmented=False), [0], desc="train")
        augmented = training_items(recipe, corpora, augmented=True)
        (clean + cache_frontend_states(model, augmented, range(1, recipe.data["views"]), desc="train")).save(train_file)
    if not dev_file.is_file():
        caches = [cache_frontend_states(model, items, [0], desc=f"dev {name}")
                  for name, items in dev_items(corpora).items()]
        sum(caches[1:], caches[0]).save(dev_file)
    return FrontendCache.load(train_file), FrontendCache.load(dev_file)


def whisper_model(recipe: FrontendsRecipe, weights_dir: Path) -> Nes2NetForAudioClassification:
    """The recipe's model with the Whisper tiny.en encoder of `WHEEL_REQUIREMENT` (its back-end seeded by the
    training seed)."""
    torch.manual_seed(recipe.backend.training.seed)
    return build_model(ModelSpec(config=recipe.model_config, frontend_weights=WHEEL_REQUIREMENT), weights_dir).eval()


def backend_model(feature_size: int, recipe: FrontendsRecipe) -> Nes2NetForAudioClassification:
    """The recipe's Nes2Net-X sized for `feature_size` features (its own front-end is never run)."""
    config = {key: value for key, value in recipe.model_config.items()
              if key not in ("frontend_type", "layer_merge", "freeze_frontend", "frontend_weights_dtype")}
    return Nes2NetForAudioClassification(Nes2NetConfig(
        frontend_type="spectrogram", spectrogram_n_fft=2 * (feature_size - 1), **config))


def test_items(corpora: dict[str, Path]) -> WaveformDataset:
    """Every test clip of both corpora, whole and clean, with `corpus` and `unseen_in_train` (False for mini)."""
    splits = []
    for name, folder in corpora.items():
        split = load_built_dataset(folder, "test")
        unseen = split["unseen_in_train"] if "unseen_in_train" in split.column_names else [False] * len(split)
        split = split.select_columns(["audio", *CACHE_COLUMNS]).add_column(CORPUS_COLUMN, [name] * len(split))
        splits.append(split.add_column("unseen", [str(str(value).lower() == "true") for value in unseen]))
    return WaveformDataset(concatenate_datasets(splits), "full", columns=[*CACHE_COLUMNS, CORPUS_COLUMN, "unseen"])


def summary(scores: np.ndarray, test: FrontendCache, dev_scores: np.ndarray, dev: FrontendCache) -> dict:
    """The table row of one front-end (EER %)."""
    corpus, unseen, labels = np.array(test.metadata[CORPUS_COLUMN]), np.array(test.metadata["unseen"]), test.labels

    def eer(mask: np.ndarray) -> float:
        return 100 * compute_eer(scores[mask & (labels == 1)], scores[mask & (labels == 0)]).eer

    plus = corpus == "antispoof-plus"
    unseen_mask = plus & (unseen == "True")
    low, high = bootstrap_eer_interval(scores[unseen_mask & (labels == 1)], scores[unseen_mask & (labels == 0)])
    systems = breakdown(scores[plus], labels[plus], [value or "bonafide" for value in
                                                     np.array(test.metadata["attack"])[plus]])
    return {
        "dev": 100 * compute_eer(dev_scores[dev.labels == 1], dev_scores[dev.labels == 0]).eer,
        "plus": eer(plus), "seen": eer(plus & (unseen == "False")), "unseen": eer(unseen_mask),
        "unseen_interval": (100 * low, 100 * high), "mini": eer(corpus == "mini-antispoof"),
        "systems": {name: 100 * row.eer for name, row in systems.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    add_device_argument(parser)
    args = parser.parse_args(argv)
    if cuda_missing(args.device):
        return 0
    train_on(args.device)
    make_deterministic(NUM_THREADS)
    recipe = FrontendsRecipe.load(RECIPE)
    backend = dataclasses.replace(recipe.backend, training=dataclasses.replace(recipe.backend.training,
                                                                                epochs=args.epochs))
    sources = {name: {"source": str(REPO_ROOT / corpus["source"])} for name, corpus in recipe.corpora.items()}
    corpora = {name: Path(folder) for name, folder in build_corpora(sources, args.work_dir / "data").items()}
    whisper = whisper_model(recipe, args.work_dir / "weights").to(args.device)
    whisper_train, whisper_dev = cached_states(whisper, recipe, corpora, args.work_dir / "cache")
    clean_views = len(whisper_train) // recipe.data["views"]  # view 0 comes first in the cache
    test = test_items(corpora)
    test_file = args.work_dir / "cache" / "test.safetensors"
    if not test_file.is_file():
        cache_frontend_states(whisper, test, [0], desc="test").save(test_file)
    started = time.perf_counter()
    whisper(torch.from_numpy(test[0]["input_values"])[None].to(args.device))
    synchronize(args.device)
    whisper_cost = (time.perf_counter() - started) / (test[0]["input_values"].size / RATE)

    train_items = training_items(recipe, corpora, augmented=False)
    dev_splits = list(dev_items(corpora).values())
    rows = {}
    for index, (name, features) in enumerate(SPECTRAL_FRONTENDS.items()):
        train, cost = spectral_cache(features, train_items)
        dev_caches = [spectral_cache(features, items)[0] for items in dev_splits]
        dev = sum(dev_caches[1:], dev_caches[0])
        test_cache = spectral_cache(features, test)[0]
        model = trained_model(backend_model(train.states[0].shape[-1], recipe), train, dev, backend,
                              args.work_dir / "frontends" / f"run-{index}", args.device)
        rows[name] = summary(score_cache(model, test_cache), test_cache, score_cache(model, dev), dev)
        rows[name]["cost"] = cost
        rows[name]["macs"] = backend_complexity(model.config, frames=201)["macs"]
        print(name, {key: value for key, value in rows[name].items() if key != "systems"}, flush=True)
    clean = FrontendCache(whisper_train.states[:clean_views], whisper_train.labels[:clean_views],
                          {key: values[:clean_views] for key, values in whisper_train.metadata.items()})
    trained_whisper = trained_model(whisper_model(recipe, args.work_dir / "weights"), clean, whisper_dev, backend,
                                    args.work_dir / "frontends" / "run-whisper", args.device)
    whisper_test = FrontendCache.load(test_file)
    name = "Whisper tiny.en encoder, frozen (5 layers merged)"
    test_scores, dev_scores = score_cache(trained_whisper, whisper_test), score_cache(trained_whisper, whisper_dev)
    rows[name] = summary(test_scores, whisper_test, dev_scores, whisper_dev)
    rows[name]["cost"] = whisper_cost
    rows[name]["macs"] = backend_complexity(trained_whisper.config, frames=201)["macs"]
    lines = [
        "| front-end | dev | plus test | seen generators | unseen generators (95 % CI) | mini test "
        "| front-end s per audio s | back-end MMACs / 4 s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        low, high = row["unseen_interval"]
        lines.append(f"| {name} | {row['dev']:.1f} | {row['plus']:.1f} | {row['seen']:.1f} | {row['unseen']:.1f} "
                     f"({low:.1f}-{high:.1f}) | {row['mini']:.1f} | {row['cost']:.4f} | {row['macs'] / 1e6:.0f} |")
    systems = sorted(set().union(*(row["systems"] for row in rows.values())))
    lines += ["", "EER % per spoofing system of the antispoof-plus test split (its spoofs against all its bona fide):",
              "", "| system | " + " | ".join(rows) + " |", "|---|" + "---|" * len(rows)]
    for system in systems:
        cells = [f"{row['systems'][system]:.1f}" if system in row["systems"] else "–" for row in rows.values()]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
