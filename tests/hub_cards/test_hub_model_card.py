"""Model cards rendered from a saved tiny model and evaluation outputs, then read back as the Hub reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

from hub_cards.checks import model_folder_problems
from hub_cards.metadata import model_card_problems
from hub_cards.model_card import PublishedResult, render_model_card, write_model_card
from hub_cards.results import load_result
from tests.hub_cards.hub_helpers import make_spec, save_tiny_model, write_evaluation

SECTIONS = (
    "## How to use",
    "### Pipeline",
    "### Command line",
    "## Labels and scores",
    "## Threshold and calibration",
    "## Training data and recipe",
    "## Evaluation",
    "## Efficiency",
    "## Limitations and misuse",
    "## Files in this repository",
    "## Citation",
)


@pytest.mark.parametrize("kind", ["converted", "trained", "demo"])
def test_every_kind_renders_and_reads_back(kind: str, tiny_model_dir: Path, result_files: list[Path]):
    readme = write_model_card(tiny_model_dir, make_spec(kind, result_files))
    card = ModelCard.load(readme)

    assert card.data.pipeline_tag == "audio-classification"
    assert card.data.library_name == "transformers"
    assert card.data.license == "mit"
    assert card.data.base_model == "facebook/wav2vec2-xls-r-300m"
    assert card.data.datasets == ["nes2net-test/asvspoof2019-la"]
    assert {"anti-spoofing", "deepfake-detection", "nes2net-x", "wav2vec2", "custom_code"} <= set(card.data.tags)
    assert ("demo" in card.data.tags) == (kind == "demo")
    assert model_card_problems(card) == []
    assert all(section in card.text for section in SECTIONS)
    assert "Liu, Tianchi and Truong, Duc-Tuan and Das, Rohan Kumar and Lee, Kong Aik and Li, Haizhou" in card.text
    assert "2504.05657" in card.text and "IEEE Transactions on Information Forensics and Security" in card.text
    assert "512,039" in card.text and "91.80 M" in card.text and "712.00 M" in card.text
    assert ("0f" * 32 in card.text) == (kind == "converted")
    assert ("not a deepfake detector" in card.text) == (kind == "demo")
    assert model_folder_problems(tiny_model_dir) == []


def test_model_index_carries_every_metric_of_the_evaluation_files(tiny_model_dir: Path, result_files: list[Path]):
    readme = write_model_card(tiny_model_dir, make_spec("trained", result_files))
    model_name, eval_results = model_index_to_eval_results(metadata_load(readme)["model-index"])
    assert model_name == "nes2net-x-tiny"
    assert eval_results == ModelCard.load(readme).data.eval_results

    reported = {(r.dataset_type, r.dataset_split, r.metric_config, r.metric_type): r for r in eval_results}
    for path in result_files:
        result = json.loads(path.read_text())
        for key in ("eer", "min_dcf", "act_dcf", "cllr"):
            entry = reported[(result["dataset"]["id"], result["dataset"]["split"], result["protocol"], key)]
            scale = 100.0 if key == "eer" else 1.0
            assert entry.metric_value == pytest.approx(result["metrics"][key] * scale, abs=1e-4)
            assert entry.task_type == "audio-classification"
            assert entry.dataset_name == result["dataset"]["name"]
            assert entry.dataset_config == "default"
    assert len(eval_results) == 8


def test_card_numbers_come_from_the_files(tiny_model_dir: Path, result_files: list[Path]):
    write_model_card(tiny_model_dir, make_spec("trained", result_files))
    text = (tiny_model_dir / "README.md").read_text()
    df = load_result(result_files[0])
    itw = load_result(result_files[1])
    assert f"EER {100 * df.metrics['eer']:.2f}% on ASVspoof 2021 DF (eval, full protocol)" in text
    assert f"| In-the-Wild (`nes2net/in-the-wild`) | test | 4sec | 300 (60 / 240) | {100 * itw.metrics['eer']:.2f} |" in text
    assert f"| {df.metrics['threshold']:.4f} | the bona fide logit |" in text
    for attack, metrics in df.per_group["attack"].items():
        assert f"| {attack} | 140 | {100 * metrics['eer']:.2f} |" in text
    low, high = sorted([100 * df.metrics["eer"], 100 * itw.metrics["eer"]])
    assert f"the EER ranges from\n  {low:.2f}% to {high:.2f}%" in text

    copied = sorted((tiny_model_dir / "evaluation").glob("*.json"))
    assert [json.loads(p.read_text()) for p in copied] == sorted(
        (json.loads(p.read_text()) for p in result_files), key=lambda r: r["dataset"]["id"]
    )
    for path in copied:
        assert f"`evaluation/{path.name}`" in text


def test_single_logit_model_and_a_fitted_calibration_change_the_usage_and_calibration_text(
    tmp_path: Path, result_files: list[Path]
):
    model_dir = save_tiny_model(tmp_path / "one-logit", num_labels=1, loss="focal_bce", calibration_scale=0.5,
                                calibration_offset=-1.25)
    card = render_model_card(model_dir, make_spec("trained", result_files))
    assert 'detector("speech.flac")' in card.text and "function_to_apply" not in card.text
    assert "score = logits[:, 0]" in card.text
    assert "| Output | 1 logit: 0 = `bonafide` |" in card.text
    assert "`log_odds = 0.5000 * raw_log_odds -1.2500`" in card.text
    assert "is_bonafide = log_odds > 0 " in card.text
    assert "focal_bce" in card.text
    plain = render_model_card(save_tiny_model(tmp_path / "plain"), make_spec("trained", result_files))
    assert "no calibration fitted" in plain.text and "raw_log_odds" not in plain.text
    assert "linear probe" not in card.text
    probed = render_model_card(save_tiny_model(tmp_path / "probed", layer_statistics=True, calibration_offset=0.5),
                               make_spec("trained", result_files))
    assert "The raw log-odds already fuse the back-end with a linear probe of the front-end's layers" in probed.text


def test_a_file_the_card_cannot_explain_stops_rendering(tiny_model_dir: Path, result_files: list[Path]):
    (tiny_model_dir / "notes.txt").write_text("scratch")
    with pytest.raises(ValueError, match="no description for notes.txt"):
        render_model_card(tiny_model_dir, make_spec("trained", result_files))
    spec = make_spec("trained", result_files, file_descriptions={"notes.txt": "release notes"})
    assert "| `notes.txt` | release notes |" in render_model_card(tiny_model_dir, spec).text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kind": "release"}, "kind must be one of"),
        ({"repo_id": "no-owner"}, "repo_id must be 'owner/name'"),
        ({"results": []}, "at least one evaluation result"),
        ({"kind": "converted", "source": None}, "source .* is required for converted releases"),
    ],
)
def test_incomplete_specs_are_refused(result_files: list[Path], overrides: dict, message: str):
    overrides = dict(overrides)
    with pytest.raises(ValueError, match=message):
        make_spec(overrides.pop("kind", "trained"), result_files, **overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"license": "free-for-all"}, "license 'free-for-all' is not a Hub license identifier"),
        ({"license": "other"}, "license 'other' needs 'license_name' and 'license_link'"),
        ({"datasets": []}, "'datasets' .* is missing"),
        ({"kind": "converted", "base_model": None}, "'base_model' is missing"),
        ({"base_model": "not a repo id"}, "base_model entry 'not a repo id' is not a Hub repository id"),
    ],
)
def test_invalid_metadata_is_refused_before_writing(
    tiny_model_dir: Path, result_files: list[Path], overrides: dict, message: str
):
    with pytest.raises(ValueError, match=message):
        write_model_card(tiny_model_dir, make_spec(overrides.pop("kind", "trained"), result_files, **overrides))
    assert not (tiny_model_dir / "README.md").exists()
    assert not (tiny_model_dir / "evaluation").exists()


def test_a_model_trained_from_scratch_needs_no_base_model(tiny_model_dir: Path, result_files: list[Path]):
    """The mini recipe trains its SSL front-end from scratch: there is no pre-trained model to name."""
    write_model_card(tiny_model_dir, make_spec("trained", result_files, base_model=None))
    card = ModelCard.load(tiny_model_dir / "README.md")
    assert not card.data.base_model and "converted" not in card.data.tags


def test_published_figures_are_shown_apart_and_the_model_index_holds_only_re_measured_numbers(
    tiny_model_dir: Path, result_files: list[Path]
):
    arena = PublishedResult("In-the-Wild", "test", "4sec", 8.48, "Speech Anti-Spoofing Arena",
                            "https://huggingface.co/spaces/SpeechAntiSpoofingBenchmarks/SpeechAntiSpoofingArena")
    paper = PublishedResult("In-the-Wild", "test", "full", 5.52, "Liu et al., T-IFS 2025",
                            "https://arxiv.org/abs/2504.05657")
    readme = write_model_card(tiny_model_dir, make_spec("converted", result_files, published=[paper, arena]))
    text = ModelCard.load(readme).text
    assert "| In-the-Wild | test | full | 5.52 | Liu et al., T-IFS 2025, <https://arxiv.org/abs/2504.05657> |" in text
    assert "| In-the-Wild | test | 4sec | 8.48 | Speech Anti-Spoofing Arena, <https://huggingface.co/spaces/" in text
    _, eval_results = model_index_to_eval_results(metadata_load(readme)["model-index"])
    measured = {round(100 * load_result(path).metrics["eer"], 4) for path in result_files}
    eers = [entry for entry in eval_results if entry.metric_type == "eer"]
    assert {entry.metric_value for entry in eers} == measured  # no published figure among them
    assert all(entry.source_name == "re-measured with nes2net evaluate" and
               entry.source_url == "https://huggingface.co/nes2net-test/nes2net-x-tiny" for entry in eval_results)
    assert all(entry.metric_name.endswith(f"{entry.metric_config} protocol") for entry in eval_results)


def test_a_model_that_scores_state_windows_says_so_where_its_windows_figures_are(tmp_path: Path):
    windows = tmp_path / "results" / "windows.json"
    write_evaluation(windows, name="mini", dataset_id="nes2net/mini-antispoof", split="test", protocol="windows",
                     seed=3)
    cards = {windowed: render_model_card(save_tiny_model(tmp_path / str(windowed), state_windows=windowed),
                                         make_spec("trained", [windows])).text for windowed in (False, True)}
    assert "`--no-state-windows` encodes each window alone" in cards[True]
    assert "each window scored from the states of the whole utterance, encoded once" in cards[True]
    assert "state-windows" not in cards[False] and "state_windows" not in cards[False]
    assert "`windows`: fixed windows over the utterance, scores averaged." in cards[False]
