"""A model folder whose weights cannot be what was trained is refused by `from_pretrained` itself, in one line naming
the folder, so every way in (`load_model`, the auto classes, `pipeline`, remote code) refuses it the same way;
the legitimate ways of loading part of a checkpoint (a new head asked for, a head dropped, a truncated front-end)
still load."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from tests.tiny_models import tiny_model
from transformers import AutoModel, AutoModelForAudioClassification, pipeline

from modeling_nes2net import (
    ModelLoadError,
    Nes2NetForAudioClassification,
    Nes2NetForAudioFrameClassification,
    Nes2NetModel,
    save_model_folder,
)
from modeling_nes2net.model_loading import load_model
from tests.remote_code import logits_without_the_package


def _nan_weights(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    first = sorted(name for name in weights if "backend" in name and weights[name].is_floating_point())[0]
    return {**weights, first: weights[first].clone().fill_(float("nan"))}


def _infinite_weights(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {**weights, "classifier.bias": torch.tensor([float("inf"), 0.0])}


def _missing_weight(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor for name, tensor in weights.items() if name != "classifier.bias"}


def _unexpected_weight(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {**weights, "nes2net.backend.extra.weight": torch.zeros(3)}


def _integer_weight(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {**weights, "classifier.weight": (weights["classifier.weight"] * 100).round().to(torch.int64)}


DAMAGES = {
    "nan": (_nan_weights, "1 weight tensor(s) hold NaN or infinite values (nes2net.backend."),
    "inf": (_infinite_weights, "1 weight tensor(s) hold NaN or infinite values (classifier.bias)"),
    "missing": (_missing_weight, "1 missing weight(s) (classifier.bias)"),
    "unexpected": (_unexpected_weight, "1 unexpected weight(s) (nes2net.backend.extra.weight)"),
    "int64": (_integer_weight, "1 floating-point weight(s) stored as integers (classifier.weight: int64)"),
}


@pytest.fixture(scope="module")
def damaged(model_dir, tmp_path_factory):
    """`kind -> (folder, expected message)`: copies of the tiny model folder, each with one kind of damage."""
    root, folders = tmp_path_factory.mktemp("damaged"), {}
    weights = load_file(model_dir / "model.safetensors")
    for kind, (damage, message) in DAMAGES.items():
        folder = shutil.copytree(model_dir, root / kind)
        save_file(damage(weights), folder / "model.safetensors", metadata={"format": "pt"})
        folders[kind] = (folder, message)
    return folders


def _assert_refused(refused: pytest.ExceptionInfo, folder, message: str) -> None:
    text = str(refused.value)
    assert "\n" not in text and text.startswith(f"{folder}: ") and message in text, text


@pytest.mark.parametrize("kind", DAMAGES)
def test_from_pretrained_refuses_damaged_weights_naming_the_folder(damaged, kind):
    folder, message = damaged[kind]
    for loader in (Nes2NetForAudioClassification.from_pretrained, AutoModelForAudioClassification.from_pretrained):
        with pytest.raises(ModelLoadError) as refused:
            loader(folder)
        _assert_refused(refused, folder, message)


@pytest.mark.parametrize("kind", DAMAGES)
def test_load_model_and_the_pipeline_give_the_same_refusal(damaged, kind):
    folder, message = damaged[kind]
    with pytest.raises(ModelLoadError) as refused:
        load_model(folder)
    _assert_refused(refused, folder, message)
    with pytest.raises(ModelLoadError) as refused:
        pipeline("audio-classification", model=str(folder))
    _assert_refused(refused, folder, message)


def test_remote_code_refuses_nan_weights_too(damaged, tmp_path):
    folder, message = damaged["nan"]
    with pytest.raises(AssertionError, match="ModelLoadError: .*hold NaN or infinite values"):
        logits_without_the_package(folder, torch.zeros(4000).numpy(), tmp_path)


def test_a_new_head_loads_only_when_asked_for(model_dir):
    with pytest.raises(ModelLoadError, match=r"2 missing weight\(s\) \(frame_classifier.bias, frame_classifier.weight"):
        Nes2NetForAudioFrameClassification.from_pretrained(model_dir)
    framed = Nes2NetForAudioFrameClassification.from_pretrained(model_dir, allow_new_weights=True)
    assert isinstance(framed, Nes2NetForAudioFrameClassification)
    assert "allow_new_weights" not in framed.config.to_dict()


def test_a_new_head_is_still_refused_with_nan_weights(damaged):
    folder, message = damaged["nan"]
    with pytest.raises(ModelLoadError) as refused:
        Nes2NetForAudioFrameClassification.from_pretrained(folder, allow_new_weights=True)
    _assert_refused(refused, folder, message)


def test_dropping_a_head_the_class_lacks_loads(tmp_path):
    framed = Nes2NetForAudioFrameClassification(tiny_model().config)
    folder = save_model_folder(framed, tmp_path / "framed")
    utterance, info = Nes2NetForAudioClassification.from_pretrained(folder, output_loading_info=True)
    assert info["unexpected_keys"] == {"frame_classifier.weight", "frame_classifier.bias"}  # reported, not refused
    headless = AutoModel.from_pretrained(folder)
    assert isinstance(headless, Nes2NetModel)
    for name, tensor in headless.state_dict().items():
        assert torch.equal(tensor, utterance.nes2net.state_dict()[name]), name


def test_a_truncated_front_end_loads_but_a_foreign_weight_beside_it_is_refused(model_dir, tmp_path):
    folder = shutil.copytree(model_dir, tmp_path / "truncated")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "frontend_num_layers": 1}))
    assert len(Nes2NetForAudioClassification.from_pretrained(folder).nes2net.frontend.encoder.layers) == 1
    save_file(_unexpected_weight(load_file(folder / "model.safetensors")), folder / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match=r"1 unexpected weight\(s\) \(nes2net.backend.extra.weight\)"):
        Nes2NetForAudioClassification.from_pretrained(folder)
