"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

MINI_ANTISPOOF = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mini-antispoof"


@pytest.fixture(scope="session")
def mini_antispoof() -> Path:
    """The real-audio mini set `<repo>/../shared/data/mini-antispoof` (skips the test when it is absent)."""
    if not (MINI_ANTISPOOF / "metadata.csv").is_file():
        pytest.skip(f"mini-antispoof data not found at {MINI_ANTISPOOF.resolve()}")
    return MINI_ANTISPOOF.resolve()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A saved tiny wav2vec2-front-end model folder, one per test module (tests may damage their copy)."""
    from modeling_nes2net import save_model_folder  # here, not at the top: most test modules never load torch
    from tests.tiny_models import tiny_model

    return save_model_folder(tiny_model(), tmp_path_factory.mktemp("tiny") / "model")
