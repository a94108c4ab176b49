"""A model folder's cross-validation record (`evaluation/generalisation.json`): cut from the benchmark's JSON for the
folder's weights, shown by the card's "How it generalises" section, refused with its file named when it is broken."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from benchmarks.render import GENERALISATION_BASELINES, GENERALISATION_COMPARED
from hub_cards.checks import model_folder_problems
from hub_cards.generalisation import load_generalisation_record, weights_digest, write_generalisation_record
from hub_cards.model_card import render_model_card, write_model_card
from hub_cards.published_files import GENERALISATION_FILE
from tests.hub_cards.hub_helpers import errors_cell, eer_cell, make_spec, write_cross_validation_results

RECIPE = "nes2net-x-small"


def _section(card: str) -> str:
    return card[card.index("## How it generalises"):card.index("## Efficiency")]


def _write_record(model_dir: Path, results_file: Path) -> Path:
    return write_generalisation_record(model_dir, results_file, RECIPE, list(GENERALISATION_BASELINES),
                                       GENERALISATION_COMPARED)


def test_the_card_shows_the_record_of_the_folders_weights(tiny_model_dir: Path, result_files: list[Path],
                                                          tmp_path: Path):
    results = write_cross_validation_results(tmp_path / "generalisation.json", weights_digest(tiny_model_dir))
    _write_record(tiny_model_dir, tmp_path / "generalisation.json")
    assert load_generalisation_record(tiny_model_dir)["candidates"] == results["candidates"]
    write_model_card(tiny_model_dir, make_spec("trained", result_files))
    card = (tiny_model_dir / "README.md").read_text(encoding="utf-8")
    section = _section(card)

    candidates, shown = results["candidates"], [RECIPE, *GENERALISATION_BASELINES]
    assert f"| this model's recipe, `{RECIPE}` | {eer_cell(candidates[RECIPE]['pooled'])} | " \
           f"{errors_cell(candidates[RECIPE]['pooled'])} |" in section
    for name in GENERALISATION_BASELINES:
        pooled = candidates[name]["pooled"]
        assert f"| baseline, `{name}` | {eer_cell(pooled)} | {errors_cell(pooled)} |" in section
    for fold in results["folds"]:
        family = fold["family"]
        counts = candidates[RECIPE]["folds"][family]
        cells = "".join(f" {eer_cell(candidates[name]['folds'][family])} | "
                        f"{errors_cell(candidates[name]['folds'][family])} |" for name in shown)
        assert f"| {family} | {counts['bonafide']} / {counts['spoof']} |{cells}" in section
        assert f"- {family}: {', '.join(fold['genuine_sources'])}" in section
    for corpus, rows in results["test"][GENERALISATION_COMPARED].items():
        unseen = eer_cell(rows["unseen"]) if "unseen" in rows else "–"
        assert f"| {corpus} test | {eer_cell(rows['all'])} | {unseen} | {errors_cell(rows['all'])} |" in section
    baseline_test = results["test"][GENERALISATION_BASELINES[0]]["toy-b"]["unseen"]
    assert eer_cell(baseline_test) not in card  # another model's test rows are not this model's
    assert eer_cell(candidates["nes2net-x-wide"]["pooled"]) in section  # every candidate, in the details
    assert f"| `{GENERALISATION_FILE}` |" in card  # the card explains the file


def test_the_card_gives_each_test_split_through_the_codecs_the_benchmark_measured(tiny_model_dir: Path,
                                                                                  result_files: list[Path],
                                                                                  tmp_path: Path):
    results = write_cross_validation_results(tmp_path / "generalisation.json", weights_digest(tiny_model_dir))
    split = results["test"][GENERALISATION_COMPARED]["toy-a"]
    split["channels"] = {"mp3-32k": {**split["all"], "eer": split["all"]["eer"] + 2.0},
                         "g711": {**split["all"], "eer": split["all"]["eer"] + 9.0}}
    (tmp_path / "generalisation.json").write_text(json.dumps(results), encoding="utf-8")
    _write_record(tiny_model_dir, tmp_path / "generalisation.json")
    section = _section(str(render_model_card(tiny_model_dir, make_spec("trained", result_files))))
    row = next(line for line in section.splitlines() if line.startswith("| toy-a test |"))
    assert row.endswith(f"| mp3-32k {split['all']['eer'] + 2.0:.1f} (+2.0), "
                        f"g711 {split['all']['eer'] + 9.0:.1f} (+9.0) |")
    assert next(line for line in section.splitlines() if line.startswith("| toy-b test |")).endswith(" | – |")


def test_other_weights_keep_the_cross_validation_but_lose_the_test_rows(tiny_model_dir: Path, result_files: list[Path],
                                                                       tmp_path: Path, caplog):
    results = write_cross_validation_results(tmp_path / "generalisation.json", "0" * 64)
    with caplog.at_level(logging.WARNING):
        record = json.loads(_write_record(tiny_model_dir, tmp_path / "generalisation.json").read_text())
    assert "test" not in record and "weights_sha256" not in record and "scored other weights" in caplog.text
    section = _section(str(render_model_card(tiny_model_dir, make_spec("trained", result_files))))
    assert eer_cell(results["candidates"][RECIPE]["pooled"]) in section
    assert "no test-split figures for these weights" in section
    assert eer_cell(results["test"][GENERALISATION_COMPARED]["toy-a"]["all"]) not in section


def test_a_folder_without_a_record_has_no_section(tiny_model_dir: Path, result_files: list[Path]):
    assert "How it generalises" not in str(render_model_card(tiny_model_dir, make_spec("trained", result_files)))


def test_a_recipe_the_benchmark_did_not_run_is_refused(tiny_model_dir: Path, tmp_path: Path):
    write_cross_validation_results(tmp_path / "generalisation.json", weights_digest(tiny_model_dir))
    with pytest.raises(ValueError, match=r"generalisation.json: cannot make a cross-validation record: \$: 'unknown' "
                                         r"is not one of the candidates"):
        write_generalisation_record(tiny_model_dir, tmp_path / "generalisation.json", "unknown", ["logistic"],
                                    GENERALISATION_COMPARED)
    assert not (tiny_model_dir / GENERALISATION_FILE).exists()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda record: record["candidates"]["logistic"]["pooled"].update(eer="12.5"),
     r"\$.candidates.logistic.pooled.eer: expected number, got str"),
    (lambda record: record["candidates"][RECIPE]["folds"].pop("neural vocoder"),
     rf"\$.candidates.{RECIPE}.folds: holds \['voice conversion'\], not the folds"),
    (lambda record: record["folds"][0].pop("genuine_sources"),
     r"\$.folds\[0\]: missing required key 'genuine_sources'"),
])
def test_a_broken_record_stops_the_card_naming_the_file(tiny_model_dir: Path, result_files: list[Path],
                                                       tmp_path: Path, edit, message):
    write_cross_validation_results(tmp_path / "generalisation.json", weights_digest(tiny_model_dir))
    path = _write_record(tiny_model_dir, tmp_path / "generalisation.json")
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=rf"{GENERALISATION_FILE}: invalid cross-validation record: .*{message}"):
        render_model_card(tiny_model_dir, make_spec("trained", result_files))
    problems = model_folder_problems(tiny_model_dir)  # nor can the folder be pushed
    assert any(GENERALISATION_FILE in problem and "invalid cross-validation record" in problem for problem in problems)
