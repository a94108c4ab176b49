"""The cross-validation tables of docs/ and the README are the ones `benchmarks/generalisation.py` renders from its
JSON: editing a figure by hand, or rerunning the benchmark without rendering, fails here."""

import json
from pathlib import Path

import pytest

from benchmarks.generalisation import MARKDOWN, README_MARKERS, RESULTS, render, weights_digest, with_readme_table

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results() -> dict:
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def test_docs_table_is_rendered_from_the_json(results):
    assert MARKDOWN.read_text(encoding="utf-8") == render(results)


def test_readme_table_is_rendered_from_the_json(results):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert all(marker in readme for marker in README_MARKERS)
    assert readme == with_readme_table(readme, results)


def test_a_hand_edited_figure_is_caught(results):
    edited = json.loads(json.dumps(results))
    edited["candidates"]["logistic"]["pooled"]["eer"] += 1.0
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert with_readme_table(readme, edited) != readme
    assert render(edited) != MARKDOWN.read_text(encoding="utf-8")


def test_the_compared_row_is_the_shipped_default(results):
    """The README calls the compared model the shipped default: its weights must be the ones in the package."""
    shipped = REPO / "modeling_nes2net" / "default_model"
    assert results["compared"]["weights_sha256"] == weights_digest(shipped)
