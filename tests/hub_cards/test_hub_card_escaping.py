"""What publishers and corpora put into cards cannot inject Markdown or HTML, and no card or results file carries a
path of the machine it was made on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard, ModelCard

from hub_cards.dataset_card import DatasetCardSpec, render_dataset_card
from hub_cards.folder_cards import render_average_card
from hub_cards.model_card import render_model_card
from hub_cards.templating import escape_markdown
from tests.hub_cards.hub_helpers import build_dataset_folder, make_spec, write_evaluation
from hub_cards.results import load_result

HOSTILE = "<script>alert(1)</script> | x |\n## Injected [link](https://evil.example) `code` *bold* # & \\"


def _body_lines(card: ModelCard | DatasetCard) -> list[str]:
    return card.text.splitlines()


def _assert_inert(text: str) -> None:
    """No tag, no heading, no link, no table cell and no code span opened by the hostile string."""
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert not any(line.startswith("## Injected") for line in text.splitlines())
    assert "[link](" not in text and "\\[link\\](https://evil.example)" in text
    assert "| x |" not in text and "\\| x \\|" in text
    assert "`code`" not in text and "\\`code\\`" in text


def test_escape_markdown_keeps_the_text_on_one_line_and_leaves_numbers():
    escaped = escape_markdown(HOSTILE)
    assert "\n" not in escaped
    assert escaped.startswith("&lt;script&gt;") and escaped.endswith("\\# &amp; \\\\")
    assert escape_markdown(0.25) == 0.25 and escape_markdown("mini_antispoof-v2.1") == "mini_antispoof-v2.1"


def test_a_hostile_build_info_cannot_inject_into_the_dataset_card(tmp_path: Path):
    folder = build_dataset_folder(tmp_path / "dataset")
    info = json.loads((folder / "build_info.json").read_text())
    info["title"] = info["description"] = HOSTILE
    info["build_command"] = f"nes2net data build generic {HOSTILE} OUT"
    info["splits"]["train"]["attack_counts"] = {HOSTILE: 3, "bonafide": 3}
    (folder / "build_info.json").write_text(json.dumps(info))
    citation = "@misc{x,\n  title = {```}\n}"
    card = render_dataset_card(folder, DatasetCardSpec(repo_id="nes2net-test/tiny", citation=citation,
                                                       source_url=HOSTILE))
    body = card.text
    _assert_inert(body)
    assert DatasetCard(str(card)).data.pretty_name == HOSTILE  # the YAML header keeps the title exactly
    fence = next(line for line in body.splitlines() if line.endswith("bibtex"))
    assert fence == "````bibtex" and body.count("\n````\n") == 1  # the citation cannot close its own code block
    attack_rows = [line for line in body.splitlines() if line.startswith("| &lt;script")]
    assert len(attack_rows) == 1 and attack_rows[0].count(" | ") == 2  # one row, attack + train + test cells


def test_hostile_results_and_spec_cannot_inject_into_the_model_card(tiny_model_dir: Path, tmp_path: Path):
    paths = [tmp_path / "one.json", tmp_path / "two.json"]
    write_evaluation(paths[0], name=HOSTILE, dataset_id="nes2net-test/hostile", split="eval", protocol="full",
                     seed=1, with_groups=True)
    write_evaluation(paths[1], name="Second", dataset_id="nes2net-test/second", split="test", protocol="4sec",
                     seed=2)
    grouped = json.loads(paths[0].read_text())
    grouped["per_group"]["attack"][HOSTILE] = grouped["per_group"]["attack"].pop("A07")
    paths[0].write_text(json.dumps(grouped))
    spec = make_spec("trained", paths, training_data=HOSTILE, recipe={HOSTILE: HOSTILE})
    card = render_model_card(tiny_model_dir, spec)
    _assert_inert(card.text)
    assert ModelCard(str(card)).data.eval_results[0].dataset_name == HOSTILE


def test_the_average_card_escapes_folder_names():
    card = render_average_card([HOSTILE, "b"])
    _assert_inert(card)


@pytest.mark.parametrize("model", ["/home/someone/runs/mini/final", "nes2net/nes2net-x-xlsr", "runs/final"])
def test_results_files_record_no_absolute_path(tmp_path: Path, model: str):
    path = tmp_path / "results.json"
    written = write_evaluation(path, name="x", dataset_id="nes2net-test/x", split="test", protocol="full", seed=0)
    written["model"] = model
    from hub_cards.results import write_result

    write_result(path, written)
    recorded = load_result(path).model
    assert recorded == ("final" if model.startswith("/") else model)
    assert "/home/" not in path.read_text()
