"""The model keeps transformers' contract (issue 13): strict config, fixed label ids, plain losses by default,
strict forward arguments with transformers' `hidden_states`, a headless `Nes2NetModel`, half precision."""

from __future__ import annotations

import json
import logging

import pytest
import torch
import torch.nn.functional as F
from scipy.special import expit
from tests.tiny_models import tiny_config, tiny_model
from transformers import AutoModel, AutoModelForAudioClassification, pipeline

from modeling_nes2net import (
    Nes2NetConfig,
    Nes2NetForAudioClassification,
    Nes2NetModel,
    config_from_preset,
    save_model_folder,
)
from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.examples import speech_like
from modeling_nes2net.model_loading import DEFAULT_MODEL_DIR
from training.recipe import load_recipe


# ------------------------------------------------------------------------------------------------------- config


def test_a_misspelt_argument_is_refused_with_the_valid_names():
    with pytest.raises(TypeError, match=r"unknown argument\(s\) ssl_config; valid: .*frontend_config"):
        Nes2NetConfig(ssl_config={"model_type": "wavlm"})


def test_an_older_saved_config_with_extra_keys_loads_with_a_warning(tmp_path, caplog):
    tiny_config("spectrogram").save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "retired_option": 3}))
    with caplog.at_level(logging.WARNING):
        loaded = Nes2NetConfig.from_pretrained(tmp_path)
    assert loaded.spectrogram_n_fft == 126 and not hasattr(loaded, "retired_option")
    assert "retired_option" in caplog.text


def test_problem_type_follows_the_head():
    assert tiny_config(num_labels=2).problem_type == "single_label_classification"
    assert tiny_config(num_labels=1).problem_type == "multi_label_classification"


def test_a_single_logit_model_reads_as_a_probability_in_the_pipeline(tmp_path):
    model = tiny_model("spectrogram", num_labels=1)
    folder = save_model_folder(model, tmp_path / "model")
    waveform = speech_like(0.5)
    (result,) = pipeline("audio-classification", model=str(folder))({"raw": waveform, "sampling_rate": 16000})
    with torch.inference_mode():
        logit = float(model(torch.from_numpy(waveform)[None]).logits[0, 0])
    assert result["label"] == "bonafide"
    assert result["score"] == pytest.approx(expit(logit), abs=1e-6) and result["score"] < 1.0


def test_an_audiofolder_label_order_is_refused_and_aligning_the_dataset_works(tmp_path):
    datasets = pytest.importorskip("datasets")
    audiofolder = {"id2label": {0: "bonafide", 1: "spoof"}, "label2id": {"bonafide": 0, "spoof": 1}}
    with pytest.raises(ValueError, match=r"labels are fixed .*align_labels_with_mapping"):
        tiny_config(**audiofolder)
    folder = save_model_folder(tiny_model("spectrogram"), tmp_path / "model")
    with pytest.raises(ValueError, match="labels are fixed"):
        Nes2NetForAudioClassification.from_pretrained(folder, **audiofolder)
    # What the README shows instead: the dataset's ids mapped to the model's.
    labels = datasets.ClassLabel(names=["bonafide", "spoof"])  # audiofolder's alphabetical order
    dataset = datasets.Dataset.from_dict({"label": [0, 1, 0]}, features=datasets.Features({"label": labels}))
    config = Nes2NetConfig.from_pretrained(folder)
    aligned = dataset.align_labels_with_mapping(config.label2id, "label")
    assert aligned["label"] == [1, 0, 1]


def test_the_loss_is_plain_cross_entropy_unless_the_recipe_asks_for_the_papers():
    logits, labels = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.0]]), torch.tensor([1, 1, 0])
    torch.testing.assert_close(tiny_model().compute_loss(logits, labels), F.cross_entropy(logits, labels))
    single, targets = torch.tensor([[0.3], [-2.0]]), torch.tensor([1, 0])
    torch.testing.assert_close(tiny_model(num_labels=1).compute_loss(single, targets),
                               F.binary_cross_entropy_with_logits(single[:, 0], targets.float()))
    for name, loss in [("asvspoof2019-la", "weighted_ce"), ("asvspoof5", "weighted_ce"), ("ctrsvdd", "focal_bce")]:
        model = load_recipe(name).model
        assert config_from_preset(model.preset, **model.config).loss == loss, name


# ------------------------------------------------------------------------------------------------------ forward


def test_forward_refuses_unknown_arguments():
    model = tiny_model()
    with pytest.raises(TypeError, match="attention_maks"):
        model(torch.randn(1, 4000), attention_maks=torch.ones(1, 4000))


def test_hidden_states_are_the_front_ends_layers_and_merged_features_have_their_own_name():
    model = tiny_model("wavlm", layer_merge="weighted_sum")
    waveform = torch.randn(2, 6000) * 0.1
    with torch.inference_mode():
        outputs = model(waveform, output_hidden_states=True)
        frontend = model.nes2net.frontend(waveform, output_hidden_states=True)
        plain = model(waveform)
    assert len(outputs.hidden_states) == model.config.num_frontend_layers == len(frontend.hidden_states)
    for ours, theirs in zip(outputs.hidden_states, frontend.hidden_states):
        torch.testing.assert_close(ours, theirs)
    merged = model.nes2net.layer_merge(frontend.hidden_states)
    torch.testing.assert_close(outputs.merged_features, merged)
    assert plain.hidden_states is None and plain.merged_features is None


def test_output_attentions_come_from_the_ssl_front_end_and_the_others_refuse_them():
    model = tiny_model("wav2vec2")
    model.nes2net.frontend.set_attn_implementation("eager")
    with torch.inference_mode():
        attentions = model(torch.randn(1, 6000) * 0.1, output_attentions=True).attentions
    frames = int(model.frame_lengths(torch.tensor(6000)))
    assert len(attentions) == 2 and attentions[0].shape == (1, 2, frames, frames)
    for frontend in ("spectrogram", "whisper"):
        with pytest.raises(ValueError, match=f"{frontend} front-end returns no attention"):
            tiny_model(frontend)(torch.randn(1, 4000), output_attentions=True)


# ------------------------------------------------------------------------------------------------ headless model


def test_the_headless_model_loads_with_automodel_and_gives_the_embeddings_the_head_reads(tmp_path):
    model = tiny_model("wavlm", pooling="astp")
    assert model.base_model is model.nes2net and isinstance(model.base_model, Nes2NetModel)
    folder = save_model_folder(model, tmp_path / "model")
    headless = AutoModel.from_pretrained(folder).eval()
    assert isinstance(headless, Nes2NetModel)
    waveform = torch.randn(2, 6000) * 0.1
    with torch.inference_mode():
        embedding = headless(waveform).pooler_output
        logits, from_embedding = model(waveform).logits, model.classifier(embedding)
    assert embedding.shape == (2, 2 * model.config.feature_size)
    torch.testing.assert_close(from_embedding, logits)


def test_a_new_head_keeps_the_trained_body(tmp_path):
    folder = save_model_folder(tiny_model("spectrogram"), tmp_path / "model")
    swapped = AutoModelForAudioClassification.from_pretrained(folder, num_labels=1, ignore_mismatched_sizes=True)
    original = Nes2NetForAudioClassification.from_pretrained(folder)
    assert swapped.config.id2label == {0: "bonafide"} and swapped.classifier.out_features == 1
    for (name, ours), theirs in zip(swapped.nes2net.state_dict().items(), original.nes2net.state_dict().values()):
        assert torch.equal(ours, theirs), name


# ---------------------------------------------------------------------------------------------- half precision


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_the_embedded_model_runs_in_half_precision(dtype):
    waveform = speech_like(2.0)
    reference = pipeline("audio-classification", model=str(DEFAULT_MODEL_DIR))
    half = pipeline("audio-classification", model=str(DEFAULT_MODEL_DIR), dtype=dtype)
    assert half.model.dtype == dtype
    expected = {r["label"]: r["score"] for r in reference({"raw": waveform, "sampling_rate": 16000})}
    actual = {r["label"]: r["score"] for r in half({"raw": waveform, "sampling_rate": 16000})}
    assert actual["bonafide"] == pytest.approx(expected["bonafide"], abs=0.05)
    model = Nes2NetForAudioClassification.from_pretrained(DEFAULT_MODEL_DIR, dtype=dtype).eval()
    with torch.inference_mode():
        logits = model(torch.from_numpy(waveform)[None].to(dtype)).logits
    assert logits.dtype == dtype and torch.isfinite(logits).all()


def test_detect_quantize_bf16_on_the_embedded_model():
    waveform = speech_like(5.0, seed=1)
    plain = Nes2NetDetector.from_pretrained(None, device="cpu").detect(waveform, sampling_rate=16000)
    fast = Nes2NetDetector.from_pretrained(None, device="cpu", quantize="bf16").detect(waveform, sampling_rate=16000)
    assert fast.bonafide_probability == pytest.approx(plain.bonafide_probability, abs=0.05)
