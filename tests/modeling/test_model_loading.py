"""`modeling_nes2net.model_loading`: where a model name points, and the one-line refusal when it points nowhere (the
refusal of broken weights is `test_damaged_weights.py` and `test_bad_configs.py`)."""

from __future__ import annotations

import pytest

from modeling_nes2net.model_loading import DEFAULT_MODEL_DIR, ModelNotFoundError, resolve_model_path


def test_default_model_missing_says_how_to_get_one():
    if (DEFAULT_MODEL_DIR / "config.json").is_file():
        assert resolve_model_path(None) == str(DEFAULT_MODEL_DIR)
        return
    with pytest.raises(ModelNotFoundError, match="nes2net convert"):
        resolve_model_path(None)


def test_a_missing_local_folder_is_named_not_sent_to_the_hub(tmp_path):
    for missing in (str(tmp_path / "no-model"), "./no-model", "runs/mini/best"):
        with pytest.raises(ModelNotFoundError, match="no such model folder"):
            resolve_model_path(missing)
    assert resolve_model_path("owner/model-id") == "owner/model-id"  # a Hub id is left to the Hub client
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
