"""The Space's plain words and model registry, without a server: a card written by hub_cards feeds the page, the
verdict words follow the detection result, and models are offered only as configured."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from nes2net_space.explain import GENERIC_LIMITATIONS, how_sure, model_markdown, timeline_words, verdict_markdown
from nes2net_space.models import DEFAULT_CHOICE, ModelLoadError, ModelRegistry
from safetensors.torch import load_file, save_file
from tests.tiny_models import framed_model, tiny_model

from benchmarks.render import GENERALISATION_BASELINES, GENERALISATION_COMPARED
from hub_cards.generalisation import weights_digest, write_generalisation_record
from hub_cards.model_card import ModelCardSpec, write_model_card
from hub_cards.published_files import GENERALISATION_FILE
from modeling_nes2net import detection, save_model_folder
from modeling_nes2net.decision import odds_probability
from modeling_nes2net.description import describe_architecture
from modeling_nes2net.detection import DetectionResult, Segment
from modeling_nes2net.examples import speech_like
from modeling_nes2net.localisation import Stretch
from hub_cards.results import load_results, write_result
from tests.hub_cards.hub_helpers import eer_cell, errors_cell, write_cross_validation_results


@pytest.fixture(scope="module")
def carded_model(tmp_path_factory) -> str:
    """A tiny model with a training-data note, a fitted score calibration and a demo card rendered by hub_cards."""
    folder = tmp_path_factory.mktemp("carded") / "model"
    save_model_folder(tiny_model(training_data="ASVspoof 2019 LA train (toy subset)", calibration_offset=-0.7), folder)
    result = write_result(folder.parent / "result.json", {
        "schema_version": 1, "model": str(folder), "protocol": "full", "score": "log_odds",
        "dataset": {"name": "Toy set", "id": "nes2net-test/toy", "config": "default", "split": "test",
                    "revision": None},
        "metrics": {"eer": 0.125, "threshold": 0.7}, "n_trials": 40, "n_bonafide": 20, "n_spoof": 20,
    })
    spec = ModelCardSpec(repo_id="nes2net-test/tiny", kind="demo", license="mit", datasets=["nes2net-test/toy"],
                         base_model="facebook/wav2vec2-xls-r-300m",
                         results=load_results([result]))
    write_model_card(folder, spec)
    return str(folder)


def test_a_card_written_by_hub_cards_feeds_the_page(carded_model, tmp_path):
    registry = ModelRegistry([carded_model], device="cpu")
    detector, info = registry.get(None)
    assert info.name == "model" and info.training_data == "ASVspoof 2019 LA train (toy subset)"
    assert info.calibrated and info.threshold == 0.0 and detector.threshold == 0.0
    assert any("saw a few hundred clips" in bullet for bullet in info.limitations)
    assert any("sole evidence" in bullet for bullet in info.limitations)
    assert "Toy set" in info.evaluation and "12.50" in info.evaluation  # the EER row, in percent
    about = model_markdown(info)
    assert "ASVspoof 2019 LA train (toy subset)" in about and "score calibration, fitted on a dev split" in about
    assert "*(from the model card)*" in about and GENERIC_LIMITATIONS[0] not in about
    words = describe_architecture(detector.config)  # the page and the card describe the model alike
    card = (Path(carded_model) / "README.md").read_text(encoding="utf-8")
    assert info.architecture == str(words) and str(words) in about
    assert f"| Front-end | {words.frontend}, from" in card and f"| Back-end | {words.backend} (" in card

    rate = detector.sampling_rate
    result = detector.detect(speech_like(3.0, rate), sampling_rate=rate)
    verdict = verdict_markdown(result, info)
    assert "log-odds fall below +0.00 (p(bona fide) 0.500)" in verdict
    assert ("Likely genuine" in verdict) == (result.log_odds > 0)


def test_the_about_text_shows_the_cross_validation_record_only_of_a_folder_that_has_one(carded_model, tmp_path):
    recorded = tmp_path / "recorded"
    shutil.copytree(carded_model, recorded)
    results = write_cross_validation_results(tmp_path / "generalisation.json", weights_digest(recorded))
    write_generalisation_record(recorded, tmp_path / "generalisation.json", "nes2net-x-small",
                                list(GENERALISATION_BASELINES), GENERALISATION_COMPARED)
    registry = ModelRegistry([carded_model, str(recorded)], device="cpu")

    about = model_markdown(registry.get("recorded")[1])
    assert "**How it generalises" in about
    for name, row in results["candidates"].items():
        shown = name in ("nes2net-x-small", *GENERALISATION_BASELINES)  # the recipe and the baseline, pooled
        assert (f"`{name}` | {eer_cell(row['pooled'])} | {errors_cell(row['pooled'])} |" in about) == shown
    for corpus, rows in results["test"][GENERALISATION_COMPARED].items():
        unseen = eer_cell(rows["unseen"]) if "unseen" in rows else "–"
        assert f"| {corpus} test | {eer_cell(rows['all'])} | {unseen} | {errors_cell(rows['all'])} |" in about

    assert not (Path(carded_model) / GENERALISATION_FILE).exists()
    assert "How it generalises" not in model_markdown(registry.get("model")[1])


def test_models_are_offered_only_as_configured(carded_model, tmp_path):
    closed = ModelRegistry([carded_model], device="cpu")  # the default: an allow-list
    assert closed.menu() == [DEFAULT_CHOICE, "model"] and closed.initial_choice == "model"  # no server path shown
    for typed in (carded_model, str(tmp_path), str(tmp_path / "missing")):
        with pytest.raises(ModelLoadError, match="is not offered here; choose one of: embedded default model, model$"):
            closed.get(typed)
    detector, _ = closed.get("model")
    variant, _ = closed.get("model", "any")
    assert variant.aggregation == "any" and detector.aggregation == "mean" and variant.model is detector.model


def test_two_folders_of_one_name_get_two_menu_names(carded_model, tmp_path):
    twin = save_model_folder(tiny_model(), tmp_path / "model")
    registry = ModelRegistry([carded_model, str(twin)], device="cpu")
    assert registry.menu() == [DEFAULT_CHOICE, "model", "model (2)"]
    assert registry.get("model (2)")[0].config.training_data is None
    assert registry.get("model")[0].config.training_data is not None


def test_a_typed_model_that_cannot_load_reads_the_same_whatever_exists_on_the_server(tmp_path):
    registry = ModelRegistry([], allow_any=True, device="cpu")
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "config.json").write_text("{}")
    messages = []
    for name in ("missing", "not-a-model"):
        with pytest.raises(ModelLoadError) as caught:
            registry.get(str(tmp_path / name))
        messages.append(str(caught.value).replace(name, "NAME"))
    assert messages[0] == messages[1] and "cannot load model" in messages[0]


@pytest.mark.parametrize(("log_odds", "threshold", "words"),
                         [(0.5, 0.0, "not sure"), (-2.0, 0.0, "fairly sure"), (5.0, 0.7, "very sure"),
                          (0.9, 0.7, "not sure"), (-2.4, 0.7, "very sure")])
def test_how_sure_is_the_distance_from_the_threshold(log_odds, threshold, words):
    assert how_sure(log_odds, threshold) == words


def test_timeline_words_name_the_flagged_stretches():
    def segment(start, odds):
        return Segment(start, start + 4.0, odds, odds, odds_probability(odds))

    segments = [segment(0.0, 1.5), segment(2.0, -1.0), segment(4.0, -2.0), segment(6.0, 2.0), segment(8.0, 1.0)]
    result = DetectionResult("clip.wav", "spoof", 0.5, 0.0, 0.0, 0.0, "windows", "any", 12.0, segments,
                             np.ones(120, np.float32), stretches=[Stretch(3.5, 7.25, -1.5)])
    words = timeline_words(result)
    assert "5 overlapping windows of 4.0 s over 12.0 s" in words
    assert "2 fall below the threshold; the timeline flags 3.5-7.2 s as spoofed (shaded red" in words
    assert "most spoof-like window" in words
    result.segments = segments[:1]
    assert timeline_words(result) == ""


@pytest.mark.skipif(not hasattr(detection, "load_model"), reason="needs the loader that refuses damaged models")
@pytest.mark.parametrize("damage", ["missing classifier", "NaN weights"])
def test_a_damaged_model_is_refused_by_name_without_its_server_path(tmp_path, damage):
    folder = save_model_folder(tiny_model(), tmp_path / "damaged")
    weights = load_file(folder / "model.safetensors")
    if damage == "missing classifier":
        weights = {name: tensor for name, tensor in weights.items() if "classifier" not in name}
    else:
        weights = {name: torch.full_like(tensor, float("nan")) if tensor.is_floating_point() else tensor
                   for name, tensor in weights.items()}
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="cannot load model 'damaged': ") as caught:
        ModelRegistry([str(folder)], device="cpu").get("damaged")
    assert str(tmp_path) not in str(caught.value)


@pytest.mark.parametrize(
    ("frame_bias", "utterance_bias", "label", "headline"),
    [
        ((0.0, 3.0), (0.0, 4.0), "bonafide", "Likely genuine speech"),
        ((3.0, 0.0), (4.0, 0.0), "spoof", "Likely spoofed speech"),
        ((3.0, 0.0), (0.0, 4.0), "partly spoofed", "Partly spoofed speech"),
    ],
)
def test_the_page_words_every_verdict(tmp_path, frame_bias, utterance_bias, label, headline):
    """Each of the three labels a detector returns gets its headline, through the registry the page loads from."""
    folder = save_model_folder(framed_model(frame_bias, utterance_bias), tmp_path / "framed")
    detector, info = ModelRegistry([str(folder)], device="cpu").get("framed")
    rate = detector.sampling_rate
    result = detector.detect(speech_like(3.0, rate), rate)
    assert result.label == label
    verdict = verdict_markdown(result, info)
    assert verdict.startswith(f"## {headline}")
