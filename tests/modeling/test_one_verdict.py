"""One verdict everywhere (issue 13): `pipeline`, `Nes2NetDetector` and `nes2net detect --protocol full` give the same
label and p(bona fide) for the same whole file, for 1- and 2-logit models, calibrated and not; the calibration is
part of the model's forward pass and is fitted by logistic regression."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from scipy.special import expit
from tests.modeling.detection_audio import single_torch_thread  # noqa: F401  (a fixture, used through pytestmark)
from tests.tiny_models import tiny_model
from transformers import pipeline

from modeling_nes2net import save_model_folder
from nes2net.cli import main
from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.decision import log_odds, odds_probability

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def real_clips(mini_antispoof) -> list[Path]:
    """Two real test clips of the mini set, one bona fide and one spoofed."""
    folder = mini_antispoof / "audio" / "test"
    return [sorted((folder / label).glob("*.flac"))[0] for label in ("bonafide", "spoof")]


def raw_log_odds(model, path: Path) -> float:
    waveform = torch.from_numpy(soundfile.read(path, dtype="float32")[0])[None]
    with torch.inference_mode():
        return float(log_odds(model(waveform).logits)[0])


def pipeline_verdict(folder: Path, path: Path) -> tuple[str, float]:
    """The pipeline's label and p(bona fide): the top label with two logits, p > 0.5 with the single sigmoid one."""
    results = pipeline("audio-classification", model=str(folder))(str(path))
    scores = {result["label"]: result["score"] for result in results}
    if len(scores) == 1:
        return ("bonafide" if scores["bonafide"] > 0.5 else "spoof"), scores["bonafide"]
    return results[0]["label"], scores["bonafide"]


@pytest.mark.parametrize("num_labels", [1, 2])
@pytest.mark.parametrize("calibrated", [False, True])
def test_pipeline_detector_and_cli_agree_on_a_whole_file(tmp_path, capsys, real_clips, num_labels, calibrated):
    model = tiny_model("spectrogram", num_labels=num_labels)
    path = real_clips[0]
    if calibrated:
        # Put the calibrated log-odds just across 0 from the raw ones: a surface that skips the calibration, or
        # compares with another threshold, gives the other label.
        raw = raw_log_odds(model, path)
        model.config.calibration_scale = 0.5
        model.config.calibration_offset = -0.5 * raw - 0.1 * np.sign(raw)
    folder = save_model_folder(model, tmp_path / "model")
    with torch.inference_mode():
        expected_odds = raw_log_odds(model, path)
    expected_label = "bonafide" if expected_odds > 0 else "spoof"
    expected_probability = expit(expected_odds)

    label, probability = pipeline_verdict(folder, path)
    detected = Nes2NetDetector.from_pretrained(str(folder), protocol="full", device="cpu").detect(path)
    assert main(["detect", str(path), "--model", str(folder), "--format", "json", "--protocol", "full"]) == 0
    (cli,) = json.loads(capsys.readouterr().out)

    for surface_label, surface_probability in [(label, probability), (detected.label, detected.bonafide_probability),
                                               (cli["label"], cli["bonafide_probability"])]:
        assert surface_label == expected_label
        assert surface_probability == pytest.approx(expected_probability, abs=1e-6)
    if calibrated:
        assert (expected_odds > 0) != (raw > 0)


@pytest.mark.parametrize("num_labels", [1, 2])
def test_the_calibration_is_affine_on_the_log_odds_and_the_identity_keeps_the_raw_logits(num_labels):
    raw_model = tiny_model("spectrogram", num_labels=num_labels)
    waveform = torch.randn(3, 4000) * 0.1
    with torch.inference_mode():
        raw = raw_model(waveform).logits
        head = raw_model.classifier(raw_model.nes2net(waveform).pooler_output)
        assert torch.equal(raw, head)  # identity: exactly the classifier's output
        raw_model.config.calibration_scale, raw_model.config.calibration_offset = 2.5, -0.75
        calibrated = raw_model(waveform).logits
    torch.testing.assert_close(log_odds(calibrated), 2.5 * log_odds(raw) - 0.75)
    assert torch.equal(calibrated[:, -1].argsort(), raw[:, -1].argsort())  # the bona fide logit ranks the same


def test_an_old_config_with_a_decision_threshold_keeps_its_decisions(tmp_path):
    model = tiny_model("spectrogram")
    folder = save_model_folder(model, tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    for key in ("calibration_scale", "calibration_offset"):
        config.pop(key, None)
    config["decision_threshold"] = 0.4
    (folder / "config.json").write_text(json.dumps(config))
    waveform = torch.randn(4, 4000) * 0.1
    loaded = type(model).from_pretrained(folder).eval()
    with torch.inference_mode():
        torch.testing.assert_close(log_odds(loaded(waveform).logits), log_odds(model(waveform).logits) - 0.4)


def test_the_probability_of_log_odds_is_the_models_softmax_and_never_overflows():
    logits = torch.tensor([[0.3, -1.2], [-800.0, 800.0], [800.0, -800.0]], dtype=torch.float64)
    odds = log_odds(logits).numpy()
    expected = torch.softmax(logits, dim=-1)[:, 1].numpy()
    np.testing.assert_allclose(odds_probability(odds), expected, rtol=1e-12)
    assert [odds_probability(float(value)) for value in odds] == pytest.approx(expected.tolist(), rel=1e-12)
    assert isinstance(odds_probability(0.0), float) and odds_probability(0.0) == 0.5
