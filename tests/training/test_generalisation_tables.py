"""The cross-validation table of docs/ is the one `benchmarks/generalisation.py` renders from its JSON (the README's is
checked with the other rendered blocks, tests/benchmarks/test_render.py), and the compared row is the shipped model."""

import json
from pathlib import Path

import pytest

from benchmarks.generalisation import MARKDOWN, RESULTS, merged, render
from hub_cards.generalisation import weights_digest

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
