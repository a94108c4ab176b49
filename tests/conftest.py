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
