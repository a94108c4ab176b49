"""Fixtures of the model tests."""

import pytest
from tiny_models import tiny_model

from modeling_nes2net import save_model_folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A saved tiny wav2vec2-front-end model folder, one per test module (tests may damage their copy)."""
    return save_model_folder(tiny_model(), tmp_path_factory.mktemp("tiny") / "model")
