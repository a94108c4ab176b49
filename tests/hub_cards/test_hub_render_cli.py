"""`python -m hub_cards.render`: cards rendered from a spec YAML, evaluation files and measured efficiency."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from huggingface_hub import DatasetCard, ModelCard

from hub_cards import render
from hub_cards.checks import dataset_folder_problems, model_folder_problems
from modeling_nes2net import Nes2NetConfig
from modeling_nes2net.complexity import backend_complexity
from tests.hub_cards.hub_helpers import build_dataset_folder


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    render.add_arguments(parser)
    return render.run(parser.parse_args(list(argv)))


def test_model_card_from_spec_yaml_with_measured_efficiency(tmp_path: Path, tiny_model_dir: Path,
                                                            result_files: list[Path]):
    spec = tmp_path / "release.yaml"
    spec.write_text(yaml.safe_dump({
        "repo_id": "nes2net-test/nes2net-x-tiny", "kind": "converted", "license": "mit",
        "datasets": ["nes2net-test/asvspoof2019-la"], "base_model": "facebook/wav2vec2-xls-r-300m",
        "source": {"checkpoint": "x.pth", "sha256": "ab" * 32, "url": "https://example.org", "release": "r"},
        "efficiency": {"backend_parameters": 1, "backend_macs": 1},
    }))
    assert _run("model", str(tiny_model_dir), "--spec", str(spec), "--results", *map(str, result_files),
                "--measure-efficiency") == 0

    measured = backend_complexity(Nes2NetConfig.from_pretrained(tiny_model_dir))
    card = ModelCard.load(tiny_model_dir / "README.md")
    assert f"| Nes2Net-X (this model) | {measured['parameters']:,} | {measured['macs'] / 1e6:.2f} M |" in card.text
    assert "| Nes2Net-X (this model) | 1 |" not in card.text
    assert len(card.data.eval_results) == 8
    assert model_folder_problems(tiny_model_dir) == []


def test_dataset_card_from_spec_yaml_and_errors_are_one_line(tmp_path: Path, caplog):
    folder = build_dataset_folder(tmp_path / "dataset")
    spec = tmp_path / "dataset.yaml"
    spec.write_text(yaml.safe_dump({"repo_id": "nes2net-test/tiny-corpus", "source_url": "https://example.org"}))
    assert _run("dataset", str(folder), "--spec", str(spec)) == 0
    assert DatasetCard.load(folder / "README.md").data.pretty_name == "Tiny anti-spoofing test corpus"
    assert dataset_folder_problems(folder) == []

    spec.write_text(yaml.safe_dump({"repo_id": "no-owner"}))
    assert _run("dataset", str(folder), "--spec", str(spec)) == 1
    assert "repo_id must be 'owner/name'" in caplog.text
