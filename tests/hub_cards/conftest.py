"""Fixtures of the hub_cards tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hub_cards.hub_helpers import save_tiny_model, write_evaluation


@pytest.fixture()
def result_files(tmp_path: Path) -> list[Path]:
    """Two evaluation outputs: ASVspoof 2021 DF (full, with per-attack EER) and In-the-Wild (4sec)."""
    files = [tmp_path / "results" / "df.json", tmp_path / "results" / "itw.json"]
    write_evaluation(files[0], name="ASVspoof 2021 DF", dataset_id="nes2net/asvspoof2021-df", split="eval",
                     protocol="full", seed=1, with_groups=True)
    write_evaluation(files[1], name="In-the-Wild", dataset_id="nes2net/in-the-wild", split="test",
                     protocol="4sec", seed=2)
    return files


@pytest.fixture()
def tiny_model_dir(tmp_path: Path) -> Path:
    return save_tiny_model(tmp_path / "model")
