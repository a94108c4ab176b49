"""Helpers of the hub_cards tests: evaluation outputs computed by the metrics code, a saved tiny model, a built
dataset of real FLAC audio."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import soundfile

from hub_cards.model_card import BackendComparison, ConvertedSource, Efficiency, ModelCardSpec
from hub_cards.results import load_results, write_result
from training.metrics import compute_eer, compute_metrics


def write_evaluation(
    path: Path, *, name: str, dataset_id: str, split: str, protocol: str, seed: int, with_groups: bool = False
) -> dict:
    """Scores of a simulated detector (bona fide ~ N(2, 1), spoof ~ N(-2, 1.5)), measured with training.metrics,
    written in the hub_cards result schema. Returns the written dict."""
    rng = np.random.default_rng(seed)
    bonafide, spoof = rng.normal(2.0, 1.0, 60), rng.normal(-2.0, 1.5, 240)
    scores = np.concatenate([bonafide, spoof])
    labels = np.concatenate([np.ones(60, dtype=int), np.zeros(240, dtype=int)])
    metrics = compute_metrics(scores, labels)
    result = {
        "schema_version": 1,
        "model": "tests/tiny",
        "dataset": {"name": name, "id": dataset_id, "config": "default", "split": split, "revision": None},
        "protocol": protocol,
        "score": "bonafide_logit",
        "metrics": {
            "eer": metrics["eer"],
            "threshold": metrics["eer_threshold"],
            "min_dcf": metrics["min_dcf"],
            "act_dcf": metrics["act_dcf"],
            "cllr": metrics["cllr"],
        },
        "n_trials": 300,
        "n_bonafide": 60,
        "n_spoof": 240,
    }
    if with_groups:
        attacks = np.array(["A07", "A08", "A09"])[np.arange(240) % 3]
        result["per_group"] = {
            "attack": {
                attack: {"eer": compute_eer(bonafide, spoof[attacks == attack]).eer, "n_trials": 60 + 80}
                for attack in ("A07", "A08", "A09")
            }
        }
    write_result(path, result)
    return result


def save_tiny_model(folder: Path, **overrides) -> Path:
    from modeling_nes2net import save_model_folder
    from tests.tiny_models import tiny_model

    return save_model_folder(tiny_model(**overrides), folder)


def make_spec(kind: str, result_files: list[Path], **overrides) -> ModelCardSpec:
    fields = dict(
        repo_id="nes2net-test/nes2net-x-tiny",
        kind=kind,
        license="mit",
        datasets=["nes2net-test/asvspoof2019-la"],
        base_model="facebook/wav2vec2-xls-r-300m",
        results=load_results(result_files),
        training_data="ASVspoof 2019 LA train (25,380 utterances, 20 speakers, 6 attacks).",
        recipe={"loss": "weighted cross-entropy [0.1, 0.9]", "optimiser": "Adam, weight decay 1e-4", "batch size": 12},
        efficiency=Efficiency(
            backend_parameters=512_039,
            backend_macs=91_800_000,
            total_parameters=316_000_000,
            comparisons=(BackendComparison("AASIST with DR layer", 447_242, 712_000_000),),
        ),
        source=ConvertedSource(
            checkpoint="nes2net_x_df.pth", sha256="0f" * 32, url="https://example.org/nes2net", release="a release"
        )
        if kind == "converted"
        else None,
    )
    fields.update(overrides)
    return ModelCardSpec(**fields)


def flac_bytes(seconds: float, frequency: float, seed: int) -> bytes:
    """A real FLAC file: a tone plus noise at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16_000 * seconds)) / 16_000
    wave = 0.3 * np.sin(2 * np.pi * frequency * t) + 0.01 * rng.standard_normal(t.size)
    buffer = io.BytesIO()
    soundfile.write(buffer, wave.astype(np.float32), 16_000, format="FLAC")
    return buffer.getvalue()


def build_dataset_folder(folder: Path) -> Path:
    """A built dataset in the layout of `nes2net data build`: Parquet shards of real FLAC audio + build_info.json."""
    from datasets import Audio, ClassLabel, Dataset, Features, Value

    features = Features(
        {
            "audio": Audio(sampling_rate=16_000),
            "label": ClassLabel(names=["spoof", "bonafide"]),
            "utt_id": Value("string"),
            "speaker": Value("string"),
            "attack": Value("string"),
            "codec": Value("string"),
        }
    )
    splits = {}
    for split, count in (("train", 6), ("test", 4)):
        labels = [index % 2 for index in range(count)]
        rows = {
            "audio": [{"bytes": flac_bytes(0.5, 200 + 50 * i, i), "path": f"{split}_{i}.flac"} for i in range(count)],
            "label": labels,
            "utt_id": [f"{split}_{i}" for i in range(count)],
            "speaker": ["spk1"] * count,
            "attack": ["bonafide" if label else "A01" for label in labels],
            "codec": ["none"] * count,
        }
        name = f"data/{split}-00000-of-00001.parquet"
        (folder / "data").mkdir(parents=True, exist_ok=True)
        Dataset.from_dict(rows, features=features).to_parquet(folder / name)
        splits[split] = {
            "num_rows": count,
            "num_audio_bytes": sum(len(a["bytes"]) for a in rows["audio"]),
            "label_counts": {"spoof": labels.count(0), "bonafide": labels.count(1)},
            "attack_counts": {"A01": labels.count(0), "bonafide": labels.count(1)},
            "duration_hours": round(count * 0.5 / 3600, 4),
            "source_sampling_rates": {"16000": count},
            "files": [name],
        }
    info = {
        "corpus": "generic",
        "title": "Tiny anti-spoofing test corpus",
        "description": "Tones written by the test.",
        "license": "cc-by-4.0",
        "source_layout": "generic",
        "source_root": "/nowhere",
        "build_command": "nes2net data build generic ROOT OUT",
        "built_with": {"nes2net": None, "datasets": "5.2.0"},
        "created": "2026-01-01T00:00:00+00:00",
        "sampling_rate": 16_000,
        "label_names": ["spoof", "bonafide"],
        "columns": list(features),
        "metadata_columns": ["codec"],
        "features": features.to_dict(),
        "num_rows": 10,
        "splits": splits,
        "attacks": ["A01"],
        "layout_warnings": [],
    }
    (folder / "build_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return folder


def write_cross_validation_results(path: Path, weights_sha256: str, recipe: str = "nes2net-x-small") -> dict:
    """A `benchmarks/generalisation.py` JSON: two folds, the baseline, the candidate `recipe` and one more, and the
    test rows of the baseline and of the compared model (weights `weights_sha256`); random, distinct figures. Returns
    the written dict."""
    from benchmarks.render import GENERALISATION_BASELINES, GENERALISATION_COMPARED

    rng = np.random.default_rng(7)

    def rates(bonafide: int, spoof: int) -> dict:
        eer = float(rng.uniform(5, 45))
        return {"eer": eer, "eer_low": eer - float(rng.uniform(1, 5)), "eer_high": eer + float(rng.uniform(1, 5)),
                "spoof_passed": float(rng.uniform(0, 100)), "bonafide_flagged": float(rng.uniform(0, 100)),
                "bonafide": bonafide, "spoof": spoof}

    folds = [{"family": "voice conversion", "genuine_sources": ["toy-a/VCTK"]},
             {"family": "neural vocoder", "genuine_sources": ["toy-b/LibriTTS", "toy-a/LJSpeech"]}]
    names = [*GENERALISATION_BASELINES, recipe, "nes2net-x-wide"]
    results = {
        "corpora": ["toy-a", "toy-b"],
        "folds": folds,
        "candidates": {name: {"pooled": rates(40, 90), "description": f"the {name} recipe",
                              "folds": {"voice conversion": rates(20, 30), "neural vocoder": rates(20, 60)},
                              "minutes": 3.5}
                       for name in names},
        "test": {name: {"toy-a": {"all": rates(12, 30)}, "toy-b": {"all": rates(15, 40), "unseen": rates(15, 22)}}
                 for name in [GENERALISATION_COMPARED, *GENERALISATION_BASELINES]},
        "compared": {"path": "models/shipped", "weights_sha256": weights_sha256, "training_data": "toy-a and toy-b"},
        "machine": "test machine, 2 cores, 1 torch thread(s)",
    }
    path.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return results


def eer_cell(rates: dict) -> str:
    """How the cards and the Space print a rates row's EER: percent, one decimal, then its 95 % interval."""
    return f"{rates['eer']:.1f} ({rates['eer_low']:.1f}–{rates['eer_high']:.1f})"


def errors_cell(rates: dict) -> str:
    """How they print the share of fakes passed / genuine clips flagged."""
    return f"{rates['spoof_passed']:.0f} % / {rates['bonafide_flagged']:.0f} %"
