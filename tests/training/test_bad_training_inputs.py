"""Hostile or careless inputs to the training commands: each is refused in one line naming it, before any work."""

from __future__ import annotations

import logging

import pytest

from nes2net.cli import main
from training.recipe import load_recipe


@pytest.mark.parametrize("text", ['model: !!python/object/apply:os.system ["touch {marker}"]\n',
                                  "training: {lr: [1e-3\n"])
def test_a_recipe_yaml_that_is_not_plain_data_is_one_line(tmp_path, caplog, text):
    marker = tmp_path / "ran"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text.replace("{marker}", str(marker)))
    with pytest.raises(ValueError, match=rf"^{recipe}: not a plain YAML recipe \(line \d+\): ") as refused:
        load_recipe(recipe)
    assert "\n" not in str(refused.value)
    with caplog.at_level(logging.ERROR):
        assert main(["train", str(recipe)]) == 2
    assert [record.getMessage() for record in caplog.records] == [str(refused.value)]
    assert not marker.exists()


def test_an_override_that_is_not_plain_yaml_is_one_line():
    with pytest.raises(ValueError, match=r"^override 'training.lr=!!python/name:os.system': not a plain YAML recipe"):
        load_recipe("mini", ["training.lr=!!python/name:os.system"])
