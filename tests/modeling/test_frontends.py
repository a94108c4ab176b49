"""Every front-end type (SSL, spectrogram, Whisper) through the paths that ask it questions: `detect --protocol full`
on an over-long file (the one-line refusal, with the memory one pass needs), the frame head's frame times, ONNX
export, pretrained weights and its description."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.modeling.detection_audio import single_torch_thread  # noqa: F401  (a fixture, used through pytestmark)
from tests.modeling.detection_audio import write_audio, write_long_wav
from tests.tiny_models import randomize_norm_statistics, tiny_config
from transformers import AutoModel, WhisperModel

from hub_cards.folder_cards import render_onnx_card
from modeling_nes2net import Nes2NetForAudioClassification, Nes2NetForAudioFrameClassification, save_model_folder
from modeling_nes2net.description import describe_architecture
from modeling_nes2net.frontends_nes2net import Nes2NetSslFrontend, describe_frontend
from modeling_nes2net.onnx_export import FP32_TOLERANCE, export_onnx
from modeling_nes2net.scorer import min_samples_of
from nes2net.cli import main

pytestmark = pytest.mark.usefixtures("single_torch_thread")

FRONTENDS = ("wav2vec2", "spectrogram", "whisper")
HEADS = {"utterance": Nes2NetForAudioClassification, "frame": Nes2NetForAudioFrameClassification}


def tiny(frontend: str, head: str = "utterance") -> Nes2NetForAudioClassification:
    torch.manual_seed(0)
    model = HEADS[head](tiny_config(frontend))
    randomize_norm_statistics(model)
    return model.eval()


def refusal_and_score(capsys, model_dir, long_path, short_path, *options) -> tuple[str, dict]:
    """Run `nes2net detect --protocol full` on an over-long and a short file: the refusal line and the short file's
    result."""
    code = main(["detect", str(long_path), str(short_path), "--model", str(model_dir), "--protocol", "full",
                 "--format", "json", "--device", "cpu", *options])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    (refusal,) = [line for line in captured.err.splitlines() if str(long_path) in line]
    (scored,) = json.loads(captured.out)
    return refusal, scored


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("frontend", FRONTENDS)
def test_full_refuses_an_over_long_file_in_one_line_for_every_frontend(capsys, tmp_path, frontend, head):
    model_dir = save_model_folder(tiny(frontend, head), tmp_path / "model")
    long_path, short_path = write_long_wav(tmp_path / "long.wav", 3.0), write_audio(tmp_path / "short.flac", 1.0)
    refusal, scored = refusal_and_score(capsys, model_dir, long_path, short_path, "--max-full-seconds", "2")
    assert "longer than 2 s, the limit of one pass under protocol 'full'" in refusal, refusal
    assert "GiB" in refusal and "Error" not in refusal, refusal
    assert scored["file"] == str(short_path) and scored["label"] in ("bonafide", "spoof", "partly spoofed")


def test_the_embedded_default_refuses_an_eleven_minute_recording_under_full(capsys, tmp_path):
    long_path = write_long_wav(tmp_path / "long.wav", 11 * 60.0)
    short_path = write_audio(tmp_path / "short.flac", 1.0)
    code = main(["detect", str(long_path), str(short_path), "--protocol", "full", "--format", "json",
                 "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 1
    (refusal,) = [line for line in captured.err.splitlines() if str(long_path) in line]
    assert "longer than 600 s, the limit of one pass under protocol 'full'" in refusal, refusal
    assert json.loads(captured.out)[0]["file"] == str(short_path)


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_frame_times_are_centres_of_the_frames_the_model_gives(frontend):
    """A frame model of every front-end type gives as many frame times as frames, evenly spaced, each inside the
    input."""
    model = tiny(frontend, "frame")
    samples = 24_000
    with torch.no_grad():
        frames = model(torch.randn(1, samples) * 0.1).frame_logits.shape[1]
    assert frames == int(model.frame_lengths(torch.tensor(samples)))
    times = model.frame_times(frames)
    steps = times.diff()
    assert times.shape == (frames,) and torch.allclose(steps, steps[0], atol=1e-6) and steps[0] > 0
    assert 0 <= float(times[0]) and float(times[-1]) <= samples / 16_000


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_every_frontend_exports_to_onnx_within_tolerance(tmp_path, frontend):
    model = tiny(frontend)
    generator = np.random.default_rng(0)
    parity_audio = [generator.standard_normal(length).astype(np.float32) * 0.1 for length in (9_000, 16_000)]
    report = export_onnx(model, tmp_path / "onnx", parity_audio=parity_audio, model_card=render_onnx_card)
    assert report.max_log_odds_difference["fp32"] <= FP32_TOLERANCE
    assert report.min_samples == min_samples_of(model) > 1
    card = (tmp_path / "onnx" / "README.md").read_text()
    assert f"{describe_architecture(model.config)}." in card


def test_a_pretrained_ssl_or_whisper_model_initialises_the_frontend_and_the_spectrogram_refuses(tmp_path):
    ssl, whisper = tiny("wav2vec2"), tiny("whisper")
    torch.manual_seed(1)
    AutoModel.from_config(ssl.config.frontend_config).save_pretrained(tmp_path / "ssl")
    whisper_config = copy.deepcopy(whisper.config.frontend_config)
    whisper_config.decoder_attention_heads = 2  # a whole Whisper model: its decoder too must fit d_model 64
    WhisperModel(whisper_config).save_pretrained(tmp_path / "whisper")
    for model, name, pretrained in ((ssl, "ssl", AutoModel.from_pretrained(tmp_path / "ssl")),
                                    (whisper, "whisper", WhisperModel.from_pretrained(tmp_path / "whisper").encoder)):
        model.nes2net.frontend.load_pretrained_weights(str(tmp_path / name))
        ours = model.nes2net.frontend.state_dict()
        ours = ours if name == "ssl" else {key.removeprefix("encoder."): value for key, value in ours.items()}
        for key, value in pretrained.state_dict().items():
            torch.testing.assert_close(ours[key], value, rtol=0, atol=0)
    with pytest.raises(ValueError, match="does not match the front-end of this config"):
        whisper.nes2net.frontend.load_pretrained_weights(str(tmp_path / "ssl"))
    with pytest.raises(ValueError, match="the spectrogram front-end: it has no weights"):
        tiny("spectrogram").nes2net.frontend.load_pretrained_weights(str(tmp_path / "ssl"))


@pytest.mark.parametrize(
    ("frontend", "words"),
    [("wav2vec2", "wav2vec 2.0 (2 layers, 64 dimensions)"),
     ("spectrogram", "a log-magnitude spectrogram (64 bins, hop 32)"),
     ("whisper", "the Whisper encoder (2 layers, 64 dimensions)")],
)
def test_each_frontend_describes_itself_for_the_cards_and_the_space(frontend, words):
    assert describe_frontend(tiny_config(frontend)) == words
    assert describe_frontend(tiny_config(frontend, frontend_num_layers=1) if frontend != "spectrogram"
                             else tiny_config(frontend)).startswith(words.split(" (")[0])


def test_no_module_but_the_frontends_and_the_config_asks_which_kind_a_frontend_is():
    root = Path(__file__).resolve().parents[2]
    asks = re.compile(r"frontend_type ==|isinstance\(.*Frontend")
    homes = {root / "modeling_nes2net" / "frontends_nes2net.py", root / "modeling_nes2net" / "configuration_nes2net.py",
             Path(__file__).resolve()}  # (this test names the pattern)
    packages = ("modeling_nes2net", "nes2net", "training", "hub_cards", "space", "benchmarks", "tests")
    paths = [path for package in packages for path in sorted((root / package).rglob("*.py")) if path not in homes]
    found = [f"{path.relative_to(root)}:{number}" for path in paths
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if asks.search(line)]
    assert found == []


@pytest.mark.parametrize("frontend", ["wav2vec2", "wavlm"])
def test_a_fresh_ssl_frontend_is_initialised_as_transformers_initialises_it(frontend):
    """The front-end subclass must not change how a new model starts: wav2vec2's feature projection (uniform in
    +-1/sqrt(fan_in)) and positional convolution (zero bias) lost their own init when it was built as the subclass."""
    config = tiny_config(frontend)
    torch.manual_seed(0)
    ours = Nes2NetSslFrontend.from_nes2net_config(config).state_dict()
    torch.manual_seed(0)
    theirs = AutoModel.from_config(config.frontend_config).state_dict()
    assert ours.keys() == theirs.keys()
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], msg=name)
