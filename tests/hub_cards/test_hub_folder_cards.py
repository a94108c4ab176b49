"""The cards of unevaluated folders (converted, averaged): what their usage snippet says is what `pipeline` does."""

from __future__ import annotations

import pytest
import torch
from transformers import pipeline

from hub_cards.folder_cards import render_conversion_card
from modeling_nes2net import save_model_folder
from modeling_nes2net.convert import ConversionResult
from modeling_nes2net.examples import speech_like
from modeling_nes2net.folder import remote_code_files
from tests.tiny_models import tiny_model


@pytest.mark.parametrize("num_labels", [1, 2])
def test_the_conversion_cards_pipeline_call_gives_p_bonafide(tmp_path, num_labels):
    model = tiny_model("wav2vec2", num_labels=num_labels).eval()
    card = render_conversion_card(ConversionResult(tmp_path, model.config, 10, [], "0" * 64, "nes2net-x-xlsr",
                                                   "release.pth"))
    call = next(line for line in card.splitlines() if line.startswith('detector("speech.flac"'))
    assert call == 'detector("speech.flac")'  # the config's problem_type picks softmax or sigmoid
    for name in remote_code_files():
        assert f"`{name}`" in card
    waveform = speech_like(0.5)
    folder = save_model_folder(model, tmp_path / "converted", model_card=card)
    scores = {row["label"]: row["score"] for row in
              pipeline("audio-classification", model=str(folder))({"raw": waveform, "sampling_rate": 16000})}
    with torch.no_grad():
        logits = model(torch.from_numpy(waveform)[None]).logits[0]
    log_odds = logits[0] if num_labels == 1 else logits[1] - logits[0]
    assert scores["bonafide"] == pytest.approx(float(torch.sigmoid(log_odds)), abs=1e-5)
