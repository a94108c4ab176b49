"""The model card's channel-robustness section: rendered from the `conditions` of an evaluation file, the table
numbers being the file's, next to clean."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hub_cards.model_card import write_model_card
from tests.hub_cards.hub_helpers import make_spec
from hub_cards.results import load_result, robustness_rows
from training.measure import measure


def add_conditions(path: Path) -> dict:
    """Measure two degraded versions of a simulated detector's scores and store them as conditions."""
    rng = np.random.default_rng(7)
    labels = np.concatenate([np.ones(60, dtype=int), np.zeros(240, dtype=int)])
    data = json.loads(path.read_text())
    data["conditions"] = {}
    for name, separation in (("mulaw", 2.0), ("noise:snr=5", 0.7)):
        scores = np.where(labels == 1, rng.normal(separation, 1, 300), rng.normal(-separation, 1, 300))
        measured = measure(scores, labels, n_resamples=50)
        data["conditions"][name] = {**measured["metrics"], "n_trials": 300, "n_bonafide": 60, "n_spoof": 240}
    data["channel_seed"] = 3
    path.write_text(json.dumps(data))
    return data


def test_card_shows_every_condition_next_to_clean(tiny_model_dir: Path, result_files: list[Path]):
    data = add_conditions(result_files[0])
    write_model_card(tiny_model_dir, make_spec("trained", result_files))
    text = (tiny_model_dir / "README.md").read_text()
    assert "### Channel robustness: ASVspoof 2021 DF, eval, full protocol" in text
    assert "random draws from channel seed\n3)" in text
    clean_eer = 100 * data["metrics"]["eer"]
    assert f"| `clean` | 300 | {clean_eer:.2f} | – |  |" in text
    for name, entry in data["conditions"].items():
        low, high = (100 * bound for bound in entry["eer_ci"])
        delta = 100 * entry["eer"] - clean_eer
        assert f"| `{name}` | 300 | {100 * entry['eer']:.2f} | {low:.2f}–{high:.2f} | {delta:+.2f} |" in text
    # the noisier condition is the worse one, and the rows keep the file's order after clean
    rows = robustness_rows(load_result(result_files[0]))
    assert [row["condition"] for row in rows] == ["clean", "mulaw", "noise:snr=5"]
    assert rows[2]["eer"] > rows[1]["eer"]


def test_card_without_conditions_has_no_robustness_section(tiny_model_dir: Path, result_files: list[Path]):
    write_model_card(tiny_model_dir, make_spec("trained", result_files))
    assert "Channel robustness" not in (tiny_model_dir / "README.md").read_text()
