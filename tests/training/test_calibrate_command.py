"""`nes2net calibrate`: a dev score file of log-odds -> a model folder whose forward pass gives calibrated log-odds."""

from __future__ import annotations

import json

import numpy as np
import torch

from modeling_nes2net import Nes2NetForAudioClassification, save_model_folder
from modeling_nes2net.decision import log_odds
from nes2net.cli import main
from tests.tiny_models import tiny_model
from training.score_files import ScoreTable, write_scores


def _overconfident_dev_scores(path, rng: np.random.Generator) -> None:
    """Log-odds that separate the classes but sit far from calibrated: bona fide around 12, spoof around 4 (equal
    spreads, so the calibrated LLR crosses 0 at the midpoint, 8)."""
    labels = np.array([1] * 60 + [0] * 60)
    scores = np.where(labels == 1, 12.0, 4.0) + 2.0 * rng.standard_normal(labels.size)
    write_scores(path, ScoreTable([f"u{i}" for i in range(labels.size)], scores, labels))


def test_calibrate_writes_a_folder_whose_forward_pass_is_calibrated(tmp_path, capsys):
    model = tiny_model("spectrogram", seed=3)
    save_model_folder(model, tmp_path / "model")
    _overconfident_dev_scores(tmp_path / "dev.csv", np.random.default_rng(0))

    assert main(["calibrate", str(tmp_path / "model"), str(tmp_path / "dev.csv"), str(tmp_path / "calibrated")]) == 0
    report = capsys.readouterr().out
    before, after = (float(value) for value in report.split("CLLR ")[1].split(" bits")[0].split(" -> "))
    assert after < before

    calibrated = Nes2NetForAudioClassification.from_pretrained(tmp_path / "calibrated").eval()
    scale, offset = calibrated.config.calibration_scale, calibrated.config.calibration_offset
    assert scale > 0 and abs(scale * 8.0 + offset) < 0.5 * scale  # the midpoint of the classes becomes log-odds 0
    waveform = 0.1 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        raw = log_odds(model.eval()(waveform).logits)
        calibrated_odds = log_odds(calibrated(waveform).logits)
    torch.testing.assert_close(calibrated_odds, scale * raw + offset, rtol=1e-5, atol=1e-5)


def test_calibrate_refuses_scores_that_are_not_log_odds(tmp_path, capsys):
    save_model_folder(tiny_model("spectrogram"), tmp_path / "model")
    _overconfident_dev_scores(tmp_path / "eval" / "scores.csv", np.random.default_rng(1))
    (tmp_path / "eval" / "results.json").write_text(json.dumps({"score": "bonafide_logit"}), encoding="utf-8")
    code = main(["calibrate", str(tmp_path / "model"), str(tmp_path / "eval" / "scores.csv"), str(tmp_path / "out")])
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the weight-loading progress bar
    assert error.startswith("nes2net calibrate: error:") and "--score log_odds" in error
    assert not (tmp_path / "out").exists()
