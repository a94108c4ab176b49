"""ONNX export and scoring through ONNX Runtime, on the embedded model and a tiny XLS-R-shaped model, real audio."""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from tests.modeling.detection_audio import single_torch_thread  # noqa: F401  (a fixture, used through pytestmark)
from tests.tiny_models import randomize_norm_statistics, tiny_config, tiny_model

from tests.oracles.backend_with_head import BackendWithHead

from hub_cards.folder_cards import render_onnx_card
from modeling_nes2net import Nes2NetForAudioClassification, save_model_folder
from modeling_nes2net.audio import load_audio
from nes2net.cli import main
from modeling_nes2net.decision import log_odds, verdict
from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.frontends_nes2net import Nes2NetDftSpectrogramFrontend
from modeling_nes2net.model_loading import DEFAULT_MODEL_DIR
from modeling_nes2net.onnx_export import FP32_TOLERANCE, ONNX_FILES, export_onnx
from modeling_nes2net.onnx_runtime import Nes2NetOnnxModel
from modeling_nes2net.scorer import pad_waveforms

pytest.importorskip("onnxruntime")
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_torch_thread")]


@pytest.fixture(scope="module")
def real_clips(mini_antispoof) -> list:
    """Three test-split recordings of different lengths: the shortest, the median and the longest."""
    with open(mini_antispoof / "metadata.csv", newline="") as handle:
        rows = sorted((row for row in csv.DictReader(handle) if row["split"] == "test"),
                      key=lambda row: float(row["duration_s"]))
    return [mini_antispoof / rows[index]["file_name"] for index in (0, len(rows) // 2, -1)]


@pytest.fixture(scope="module")
def test_split(mini_antispoof) -> list:
    """Every test-split recording of the mini set."""
    with open(mini_antispoof / "metadata.csv", newline="") as handle:
        return [mini_antispoof / row["file_name"] for row in csv.DictReader(handle) if row["split"] == "test"]


@pytest.fixture(scope="module")
def default_export(real_clips, tmp_path_factory):
    model = Nes2NetForAudioClassification.from_pretrained(DEFAULT_MODEL_DIR)
    waveforms = [load_audio(path) for path in real_clips]
    output_dir = tmp_path_factory.mktemp("onnx") / "default"
    return model, output_dir, export_onnx(model, output_dir, parity_audio=waveforms, variants=("int8", "fp16"),
                                          model_card=render_onnx_card)


def test_embedded_model_export_matches_pytorch(default_export, real_clips):
    model, output_dir, report = default_export
    assert sorted(report.files) == ["fp16", "fp32", "int8"]
    assert all((output_dir / name).is_file() for name in report.files.values())
    assert report.max_log_odds_difference["fp32"] <= FP32_TOLERANCE
    assert "float16 weights" in (output_dir / "README.md").read_text()
    saved = json.loads((output_dir / "export_report.json").read_text())
    assert saved["max_log_odds_difference"] == report.max_log_odds_difference
    # Independently of the report: a padded batch of the three clips scored by a fresh session.
    waveforms = [load_audio(path) for path in real_clips]
    values, mask = map(torch.from_numpy, pad_waveforms(waveforms, always_mask=True))
    onnx_logits = Nes2NetOnnxModel(output_dir)(values, mask)
    with torch.inference_mode():
        torch_logits = model(input_values=values, attention_mask=mask).logits
    difference = (log_odds(onnx_logits) - log_odds(torch_logits)).abs().max().item()
    assert difference <= FP32_TOLERANCE
    # int8 and fp16 drift more: their drift is reported, non-zero (the weights did change) and small; int8 drifts up
    # to about 3 log-odds on the default, whose statistics head reads the raw encoder states with large weights and
    # so amplifies the encoder's int8 error (open: the export card reports the figure; 0.5 holds without the head)
    assert 0 < report.max_log_odds_difference["int8"] < (4.0 if model.config.layer_statistics else 0.5)
    assert FP32_TOLERANCE < report.max_log_odds_difference["fp16"] < 0.05
    fp16_logits = Nes2NetOnnxModel(output_dir, variant="fp16")(values, mask)
    assert fp16_logits.dtype == torch.float32  # float16 inside, float32 at the edges
    assert (log_odds(fp16_logits) - log_odds(torch_logits)).abs().max().item() < 0.05


@pytest.fixture(scope="module")
def spectrogram_export(real_clips, tmp_path_factory):
    """A random Nes2Net-X on the 1024-bin spectrogram front-end (the width of XLS-R features) and its export."""
    model = tiny_model("spectrogram", spectrogram_n_fft=2046, spectrogram_hop_length=320)
    output_dir = tmp_path_factory.mktemp("onnx") / "spectrogram"
    export_onnx(model, output_dir, parity_audio=[load_audio(path) for path in real_clips])
    return model, output_dir


def test_spectrogram_model_and_its_export_are_float64_exact_on_real_audio(spectrogram_export, test_split):
    """PyTorch float32 and the export both compute the spectrogram in float64: on every test-split recording (among
    them quiet ones, where a float32 STFT moves the log-odds by 2e-4) they are within 1e-5 of the model in float64,
    and the export's DFT front-end equals the model's."""
    model, output_dir = spectrogram_export
    exact = copy.deepcopy(model).double()
    session_model = Nes2NetOnnxModel(output_dir)
    dft_frontend = Nes2NetDftSpectrogramFrontend(model.nes2net.frontend)
    for path in test_split:
        waveform = torch.from_numpy(load_audio(path))[None]
        with torch.inference_mode():
            float32 = log_odds(model(input_values=waveform).logits).double()
            float64 = log_odds(exact(input_values=waveform.double()).logits)
            torch.testing.assert_close(dft_frontend(waveform).last_hidden_state,
                                       model.nes2net.frontend(waveform).last_hidden_state, rtol=0, atol=2e-6)
        exported = log_odds(session_model(waveform)).double()
        assert (float32 - float64).abs().item() < 1e-5, path
        assert (exported - float64).abs().item() < 1e-5, path


def test_detector_through_onnx_runtime_equals_pytorch(default_export, real_clips):
    _, output_dir, report = default_export
    options = dict(protocol="windows", batch_size=4)
    onnx_results = list(Nes2NetDetector.from_pretrained(output_dir, runtime="onnx", **options).detect_many(real_clips))
    # the utterance model the export holds (without `default_frame_model`'s frame head, whose stretches can turn a
    # bona fide verdict into a partly spoofed one), on windows of audio, the one path ONNX Runtime scores
    torch_results = list(Nes2NetDetector.from_pretrained(str(DEFAULT_MODEL_DIR), device="cpu", state_windows=False,
                                                         **options).detect_many(real_clips))
    allowed = FP32_TOLERANCE
    for onnx_result, torch_result in zip(onnx_results, torch_results, strict=True):
        assert len(onnx_result.segments) == len(torch_result.segments)
        assert onnx_result.threshold == torch_result.threshold  # the exported folder's config carries it
        assert abs(onnx_result.log_odds - torch_result.log_odds) <= allowed
        assert onnx_result.label == torch_result.label
        assert max(abs(a.log_odds - b.log_odds) for a, b in zip(onnx_result.segments, torch_result.segments)) <= allowed


def test_card_snippet_runs_without_the_package(default_export, real_clips, tmp_path):
    model, output_dir, _ = default_export
    card = (output_dir / "README.md").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", card, flags=re.S)
    assert "nes2net" not in snippet.replace("nes2net detect", "")
    clip = output_dir / "clip.wav"
    soundfile.write(clip, load_audio(real_clips[1]), 16_000, subtype="FLOAT")
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # -I: isolated mode, so neither the working tree nor PYTHONPATH can provide modeling_nes2net
    completed = subprocess.run([sys.executable, "-I", "-c", snippet], cwd=output_dir, capture_output=True,
                               text=True, env=environment, check=True)
    label, probability = completed.stdout.split()
    with torch.inference_mode():
        logits = model(torch.from_numpy(soundfile.read(clip, dtype="float32")[0])[None]).logits
    expected = torch.sigmoid(log_odds(logits)).item()
    assert float(probability) == pytest.approx(expected, abs=1e-4)
    assert label == verdict(log_odds(logits).item())


def test_tiny_xlsr_export_and_detect_cli(capsys, real_clips, tmp_path):
    # The tiny front-end has 800 frames per second and ONNX Runtime holds the whole (frames x frames) attention
    # (PyTorch's attention does not): 1-3 s crops of the real clips, scored in 1 s windows, keep it small.
    crops = []
    for index, (clip, seconds) in enumerate(zip(real_clips, (1.0, 2.0, 3.0))):
        crops.append(tmp_path / f"crop{index}.wav")
        soundfile.write(crops[-1], load_audio(clip)[: int(seconds * 16_000)], 16_000, subtype="FLOAT")
    model = tiny_model("wav2vec2", seed=3)
    model_dir = save_model_folder(model, tmp_path / "model")
    output_dir = tmp_path / "onnx"
    code = main(["export", "onnx", str(model_dir), str(output_dir), "--audio", *map(str, crops),
                 "--variants", "int8", "fp16"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads((output_dir / "export_report.json").read_text())
    assert report["max_log_odds_difference"]["fp32"] <= 1e-4
    assert sorted(report["files"]) == ["fp16", "fp32", "int8"]
    assert all((output_dir / ONNX_FILES[variant]).is_file() for variant in ("int8", "fp16"))
    assert 0 < report["max_log_odds_difference"]["fp16"] < 0.05
    assert f"{report['max_log_odds_difference']['fp32']:.2e}" in captured.out
    results = {}
    for runtime, model_path in (("onnx", output_dir), ("torch", model_dir)):
        code = main(["detect", *map(str, crops), "--model", str(model_path), "--runtime", runtime,
                     "--device", "cpu", "--format", "json", "--segments", "--window", "1.0", "--hop", "0.5",
                     ])  # windows of audio, what the ONNX graph scores
        assert code == 0
        results[runtime] = json.loads(capsys.readouterr().out)
    for onnx_result, torch_result in zip(results["onnx"], results["torch"], strict=True):
        assert onnx_result["file"] == torch_result["file"]
        assert onnx_result["log_odds"] == pytest.approx(torch_result["log_odds"], abs=1e-4)
        assert [s["start"] for s in onnx_result["segments"]] == [s["start"] for s in torch_result["segments"]]
    for variant, drift in (("int8", 0.5), ("fp16", 0.05)):
        code = main(["detect", str(crops[0]), "--model", str(output_dir), "--runtime", "onnx", "--quantize", variant,
                     "--format", "json", "--window", "1.0", "--hop", "0.5"])
        (result,) = json.loads(capsys.readouterr().out)
        assert code == 0 and abs(result["log_odds"] - results["torch"][0]["log_odds"]) < drift
    # fp16 is the export's file; PyTorch's half-precision path is bf16, and the ONNX runtime has no bf16 file
    for runtime, quantize, message in (("torch", "fp16", "with PyTorch use bf16"), ("onnx", "bf16", "int8 or fp16")):
        code = main(["detect", str(crops[0]), "--model", str(output_dir if runtime == "onnx" else model_dir),
                     "--runtime", runtime, "--quantize", quantize])
        assert code == 2 and message in capsys.readouterr().err


def test_onnx_runtime_errors_name_the_problem(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no such ONNX file"):
        Nes2NetOnnxModel(tmp_path)
    with pytest.raises(ValueError, match="needs parity_audio"):
        export_onnx(tiny_model(), tmp_path / "out", parity_audio=[])
    with pytest.raises(ValueError, match="unknown ONNX variant"):
        export_onnx(tiny_model(), tmp_path / "out", parity_audio=[np.zeros(16_000, np.float32)], variants=("int4",))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("variant", ["nes2net-x", "nes2net"])
def test_backend_in_onnx_runtime_equals_the_module(variant, tmp_path):
    """The back-end path `benchmarks/backend.py` times: the module exported, ONNX Runtime's fusions applied."""
    from modeling_nes2net.onnx_export import export_module, inference_session

    torch.manual_seed(1)  # some unseeded draws overflow to NaN, which assert_allclose would call equal
    backend = BackendWithHead(tiny_config("wav2vec2", backend_variant=variant, pooling="astp", attention_channels=8))
    randomize_norm_statistics(backend, seed=5)
    path = export_module(backend.eval(), (torch.randn(2, 30, 64),), ("features",), tmp_path / "backend.onnx")
    session = inference_session(path)
    for batch_size, frames in ((1, 201), (16, 57)):
        features = torch.randn(batch_size, frames, 64)
        with torch.inference_mode():
            expected = backend(features).numpy()
        (actual,) = session.run(["logits"], {"features": features.numpy()})
        assert np.isfinite(expected).all()
        # A random Nes2Net-X with random norm statistics reaches logits of 1e12, where float32 rounding is 1e5:
        # the bound is relative to the scale, 1e-5 of it.
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("window", [None, 5])
def test_a_whisper_model_with_layer_statistics_exports_with_padding_and_int8(tmp_path, window):
    """The embedded default's shape (Whisper, AttM of normalised layers, each layer's statistics in the pooled
    embedding, over whole clips or over windows): the export checks every clip alone and in one padded batch, whose
    masked statistics must match."""
    model = tiny_model("whisper", layer_merge="attm", normalize_layers=True, layer_statistics=True,
                       layer_statistics_window=window)
    rng = np.random.default_rng(0)
    waveforms = [(rng.standard_normal(length) * 0.1).astype(np.float32) for length in (16_000, 23_000)]
    report = export_onnx(model, tmp_path / "onnx", parity_audio=waveforms, variants=("int8",))
    assert report.max_log_odds_difference["fp32"] <= FP32_TOLERANCE  # export_onnx refuses more; said here
    assert report.max_log_odds_difference["int8"] < 0.05
    onnx_model = Nes2NetOnnxModel(tmp_path / "onnx")
    assert onnx_model.config.layer_statistics
    batch, mask = map(torch.from_numpy, pad_waveforms(waveforms))
    with torch.inference_mode():
        alone = torch.cat([model(torch.from_numpy(waveform)[None]).logits for waveform in waveforms])
    torch.testing.assert_close(onnx_model(batch, mask), alone, atol=1e-4, rtol=1e-4)
