"""A checkpoint holding NaN or infinite weights is refused in one line naming its file by everything that would
turn it into a model folder: `nes2net convert`, `nes2net average` (original checkpoints and model folders), and
writing a model folder at all."""

from __future__ import annotations

import logging
import re

import pytest
import torch
from safetensors.torch import load_file, save_file
from tests.tiny_models import tiny_model

from modeling_nes2net import save_model_folder
from modeling_nes2net.averaging import AveragingError, average_checkpoints
from modeling_nes2net.convert import ConversionError, convert_checkpoint
from nes2net.cli import main as cli_main
from tests.modeling.original_checkpoints import TINY_OVERRIDES, OriginalModel

torch.set_num_threads(1)
MESSAGE = "1 weight tensor(s) hold NaN or infinite values"


def _poisoned_original(path, seed: int = 0, value: float = float("nan")):
    """An original checkpoint of the tiny XLS-R release whose first back-end tensor holds `value`."""
    state = OriginalModel("nes2net-x-xlsr", seed=seed).state_dict()
    first = sorted(key for key, tensor in state.items() if tensor.is_floating_point())[0]
    state[first] = state[first].clone().fill_(value)
    torch.save(state, path)
    return path


def _original(path, seed: int = 0):
    torch.save(OriginalModel("nes2net-x-xlsr", seed=seed).state_dict(), path)
    return path


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_convert_refuses_a_non_finite_checkpoint_naming_it(tmp_path, caplog, value):
    checkpoint = _poisoned_original(tmp_path / "epoch_7.pth", value=value)
    with pytest.raises(ConversionError, match="^" + re.escape(f"{checkpoint}: {MESSAGE} (")):
        convert_checkpoint(checkpoint, tmp_path / "out", "nes2net-x-xlsr", **TINY_OVERRIDES["wav2vec2"])
    assert not (tmp_path / "out").exists()
    with caplog.at_level(logging.ERROR):
        assert cli_main(["convert", str(checkpoint), str(tmp_path / "out"), "--preset", "nes2net-x-xlsr"]) == 1
    assert f"{checkpoint}: {MESSAGE}" in caplog.text and not (tmp_path / "out").exists()


def test_averaging_refuses_a_non_finite_original_checkpoint_naming_it(tmp_path):
    good, bad = _original(tmp_path / "epoch_1.pth"), _poisoned_original(tmp_path / "epoch_2.pth", seed=1)
    with pytest.raises(AveragingError, match="^" + re.escape(f"{bad}: {MESSAGE} (")):
        average_checkpoints([good, bad], tmp_path / "average.pth")
    assert not (tmp_path / "average.pth").exists()


def test_averaging_refuses_a_non_finite_model_folder_naming_it(tmp_path, capsys):
    good = save_model_folder(tiny_model(seed=0), tmp_path / "epoch-1")
    bad = save_model_folder(tiny_model(seed=1), tmp_path / "epoch-2")
    weights = load_file(bad / "model.safetensors")
    weights["classifier.bias"] = torch.tensor([float("nan"), 0.0])
    save_file(weights, bad / "model.safetensors", metadata={"format": "pt"})
    expected = f"{bad}: refusing an incomplete, foreign or damaged checkpoint: {MESSAGE} (classifier.bias)"
    with pytest.raises(AveragingError, match="^" + re.escape(expected)):
        average_checkpoints([good, bad], tmp_path / "average")
    assert cli_main(["average", str(good), str(bad), str(tmp_path / "average")]) == 1
    assert not (tmp_path / "average").exists()


def test_a_model_folder_is_never_written_with_non_finite_weights(tmp_path):
    model = tiny_model()
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("inf")
    expected = f"refusing to write {tmp_path / 'model'}: {MESSAGE} (classifier.weight)"
    with pytest.raises(ValueError, match="^" + re.escape(expected)):
        save_model_folder(model, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []
