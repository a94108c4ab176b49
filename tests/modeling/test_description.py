"""The model in words (`description.describe_architecture`), the one description of the cards, the Space and the
ONNX export's README."""

from __future__ import annotations

from huggingface_hub import ModelCard

from hub_cards.folder_cards import render_onnx_card
from modeling_nes2net.description import describe_architecture
from modeling_nes2net.onnx_export import ExportReport
from tests.tiny_models import tiny_config


def test_the_words_name_the_back_end_its_activation_the_front_end_and_the_merge():
    config = tiny_config("wav2vec2", backend_variant="nes2net", activation="selu", freeze_frontend=True,
                         layer_merge="sea", dilation=3, pooling="astp")
    words = describe_architecture(config)
    assert str(words) == ("Nes2Net SeLU back-end on wav2vec 2.0 (2 layers, 64 dimensions), frozen, reading "
                          "squeeze-excitation aggregation (SEA) of all 3 hidden states")
    assert words.backend_details == "outer ratio 4, inner ratio 4, SE ratio 1, kernel 3, dilation 3, astp pooling"
    probed = describe_architecture(tiny_config("whisper", layer_merge="attm", layer_statistics=True))
    assert probed.merge == ("an attentive merge (AttM) of all 3 hidden states, with a linear head on each one's mean "
                            "and standard deviation over frames")
    windowed = describe_architecture(tiny_config("whisper", layer_merge="attm", layer_statistics=True,
                                                 layer_statistics_window=25))
    assert windowed.merge.endswith("with a linear head on each one's mean and standard deviation over the 25 frames "
                                   "around each frame, averaged over frames")
    framed = describe_architecture(tiny_config("whisper", layer_merge="attm", frame_statistics_window=25))
    assert framed.merge.endswith(", and a frame head on each one's mean and standard deviation over the 25 frames "
                                 "around every frame")
    plain = describe_architecture(tiny_config("spectrogram"))
    assert str(plain) == ("Nes2Net-X back-end on a log-magnitude spectrogram (64 bins, hop 32), reading the last "
                          "hidden layer")


def test_the_onnx_card_is_rendered_by_the_card_renderer():
    config = tiny_config("whisper", layer_merge="attm")
    report = ExportReport(files={"fp32": "model.onnx", "int8": "model.int8.onnx"}, parity_lengths=[16_000, 24_000],
                          max_log_odds_difference={"fp32": 3.2e-6, "int8": 0.0123}, opset=18, min_samples=400)
    card = render_onnx_card(config, report)
    assert ModelCard(card).data.library_name == "onnx" and "onnx" in ModelCard(card).data.tags
    assert f"(opset 18): {describe_architecture(config)}." in card
    assert "| `model.onnx` | float32 | 3.2e-06 |" in card and "| `model.int8.onnx` | int8 MatMul" in card
    assert "over audio of\n1.00 s, 1.50 s, each scored alone" in card and "at\nleast 400 samples" in card
