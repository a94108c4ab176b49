"""The evaluation-output schema: what the evaluation writes and the cards read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hub_cards.hub_helpers import write_evaluation
from hub_cards.results import PROTOCOLS, EvaluationResult, load_result, load_results, validate_results, write_result


def test_written_result_round_trips(tmp_path: Path):
    written = write_evaluation(tmp_path / "r.json", name="DF", dataset_id="o/df", split="eval", protocol="full",
                               seed=0, with_groups=True)
    result = load_result(tmp_path / "r.json")
    assert result.to_dict() == written
    assert set(result.per_group["attack"]) == {"A07", "A08", "A09"}
    assert result.source_file == str(tmp_path / "r.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(protocol="8sec"), "$.protocol: '8sec' is not one of"),
        (lambda d: d["metrics"].update(eer=1.5), "$.metrics.eer: 1.5 is above the maximum 1"),
        (lambda d: d["metrics"].pop("eer"), "$.metrics: missing required key 'eer'"),
        (lambda d: d["metrics"].update(accuracy=0.9), "unknown key 'accuracy'"),
        (lambda d: d.update(n_trials=True), "$.n_trials: expected integer, got bool"),
        (lambda d: d.update(n_spoof=1), "n_bonafide + n_spoof must equal n_trials"),
        (lambda d: d.update(score="probability"), "$.score: 'probability' is not one of"),
        (lambda d: d["dataset"].pop("split"), "$.dataset: missing required key 'split'"),
        (lambda d: d["metrics"].update(cllr=float("nan")), "$.metrics.cllr: must be a finite number"),
        (lambda d: d.update(per_group={"attack": {"A07": {"eer": 0.1}}}), "missing required key 'n_trials'"),
    ],
)
def test_invalid_results_are_refused_with_the_reason(tmp_path: Path, change, message):
    data = write_evaluation(tmp_path / "r.json", name="DF", dataset_id="o/df", split="eval", protocol="full", seed=0)
    change(data)
    assert any(message in error for error in validate_results(data)), validate_results(data)
    with pytest.raises(ValueError, match="refusing to write"):
        write_result(tmp_path / "bad.json", data)
    assert not (tmp_path / "bad.json").exists()
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="bad.json: invalid evaluation result"):
        load_result(tmp_path / "bad.json")


def test_two_files_for_the_same_dataset_split_and_protocol_are_an_error(tmp_path: Path):
    for name in ("a", "b"):
        write_evaluation(tmp_path / f"{name}.json", name="DF", dataset_id="o/df", split="eval", protocol="full", seed=0)
    with pytest.raises(ValueError, match="both report o/df split eval protocol full"):
        load_results([tmp_path / "a.json", tmp_path / "b.json"])


def test_every_protocol_is_accepted_and_not_json_is_reported(tmp_path: Path):
    for protocol in PROTOCOLS:
        write_evaluation(tmp_path / f"{protocol}.json", name="DF", dataset_id="o/df", split="eval",
                         protocol=protocol, seed=0)
    assert [r.protocol for r in load_results(sorted(tmp_path.glob("*.json")))] == sorted(PROTOCOLS)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        load_result(tmp_path / "broken.json")
    assert isinstance(load_result(tmp_path / "full.json"), EvaluationResult)
