"""The cross-validation table of docs/ is the one `benchmarks/generalisation.py` renders from its JSON (the README's is
checked with the other rendered blocks, tests/benchmarks/test_render.py), and the compared row is the shipped model."""

import json
from pathlib import Path

import pytest

from benchmarks.generalisation import MARKDOWN, RECIPE, RESULTS, main, merged, render, states_folder
from hub_cards.generalisation import weights_digest
from training.recipe import load_recipe
from training.whisper_weights import BASE_WHEELS, WHEEL_REQUIREMENT

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results() -> dict:
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def test_docs_table_is_rendered_from_the_json(results):
    assert MARKDOWN.read_text(encoding="utf-8") == render(results)


def test_a_hand_edited_figure_is_caught(results):
    edited = json.loads(json.dumps(results))
    edited["candidates"]["logistic"]["pooled"]["eer"] += 1.0
    assert render(edited) != MARKDOWN.read_text(encoding="utf-8")


def test_the_compared_row_is_the_shipped_default(results):
    """The README calls the compared model the shipped default: its weights must be the ones in the package."""
    shipped = REPO / "modeling_nes2net" / "default_model"
    assert results["compared"]["weights_sha256"] == weights_digest(shipped)


def test_merged_runs_keep_each_rows_own_minutes_and_add_up_none(results, tmp_path):
    """A row measured before rows were timed shows no minutes; a new row shows its own; no total of several runs is
    presented as the minutes of one."""
    def rows(names: list[str], minutes: float | None) -> dict:
        run = {**results, "candidates": {}, "test": {name: results["test"][name] for name in names}}
        for name in names:
            row = {key: value for key, value in results["candidates"][name].items() if key != "minutes"}
            run["candidates"][name] = row if minutes is None else {**row, "minutes": minutes}
        run.pop("minutes", None)
        return run

    earlier = tmp_path / "generalisation.json"
    earlier.write_text(json.dumps({**rows(["logistic"], None), "minutes": 200.0}), encoding="utf-8")
    both = merged(rows(["masked"], 12.4), earlier)
    assert list(both["candidates"]) == ["logistic", "masked"] and "minutes" not in both
    table = render(both)
    assert [line.rsplit("|", 2)[1] for line in table.splitlines()
            if line.startswith(("| logistic:", "| masked:"))] == [" - ", " 12 "]
    assert "minutes" not in next(line for line in table.splitlines() if line.startswith("Machine:"))


def test_each_row_is_listed_under_the_front_end_it_encodes_with(results):
    """Rows without a `frontend` (measured before rows named one) are on the base recipe's front-end; a row on
    another front-end is listed under that one, with that front-end's measured cost."""
    record = json.loads(json.dumps(results))
    record["recipe_frontend"] = WHEEL_REQUIREMENT
    record["candidates"]["logistic"].pop("frontend", None)
    record["candidates"]["logistic-clean"]["frontend"] = BASE_WHEELS
    record["frontends"] = {WHEEL_REQUIREMENT: {"layers": 4, "width": 384, "seconds_per_audio_second": 0.0123},
                           BASE_WHEELS: {"layers": 6, "width": 512, "seconds_per_audio_second": 0.0456}}
    lines = render(record).splitlines()
    tiny = next(line for line in lines if line.startswith("| Whisper tiny.en |"))
    base = next(line for line in lines if line.startswith("| Whisper base |"))
    assert "0.012" in tiny and tiny.endswith(
        f"| every other row ({sum(row.get('frontend') != BASE_WHEELS for row in record['candidates'].values())}) |")
    on_base = [name for name, row in record["candidates"].items() if row.get("frontend") == BASE_WHEELS]
    assert "logistic-clean" in on_base and "logistic" not in on_base
    assert "0.046" in base and "6 x 512" in base and base.endswith(f"| {', '.join(on_base)} |")


def test_another_front_end_caches_its_states_in_its_own_folder(tmp_path):
    recipe = load_recipe(RECIPE)
    assert states_folder(tmp_path, recipe.model.frontend_weights, recipe) == tmp_path / "states"
    other = states_folder(tmp_path, BASE_WHEELS, recipe)
    assert other == tmp_path / "states-whisper-base"


def test_a_result_file_written_elsewhere_is_printed_and_leaves_the_docs_alone(results, tmp_path, capsys):
    trial = json.loads(json.dumps(results))
    trial["candidates"]["logistic"]["pooled"]["eer"] = 12.345
    elsewhere = tmp_path / "trial.json"
    elsewhere.write_text(json.dumps(trial), encoding="utf-8")
    before = MARKDOWN.read_text(encoding="utf-8")
    assert main(["--render", "--output", str(elsewhere)]) == 0
    assert MARKDOWN.read_text(encoding="utf-8") == before
    assert "| 12.3 (" in capsys.readouterr().out


def test_the_codec_table_lists_the_rows_measured_under_codecs_with_the_points_each_channel_adds(results):
    edited = json.loads(json.dumps(results))
    for row in edited["test"].values():
        for report in row.values():
            report.pop("channels", None)
    assert "## Under codecs" not in render(edited)
    report = edited["test"]["logistic"][edited["corpora"][0]]
    clean = report["all"]["eer"]
    report["channels"] = {"mp3-32k": {**report["all"], "eer": clean + 1.0},
                          "g711": {**report["all"], "eer": clean + 7.5}}
    lines = render(edited).split("## Under codecs")[1].split("\n## ")[0].splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| model")]
    assert len(rows) == 1 and rows[0].startswith(f"| logistic | +7.5 (g711, {edited['corpora'][0]}) | {clean:.1f} | ")
    assert f"{clean + 1.0:.1f} (+1.0) | {clean + 7.5:.1f} (+7.5) |" in rows[0]
    assert rows[0].endswith(" | - | - |")  # the other splits were not measured
