"""The cross-validation table of docs/ is the one `benchmarks/generalisation.py` renders from its JSON (the README's is
checked with the other rendered blocks, tests/benchmarks/test_render.py), and the compared row is the shipped model."""

import json
from pathlib import Path

import pytest

from benchmarks.generalisation import MARKDOWN, RESULTS, render
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
