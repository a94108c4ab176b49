"""Detection with a frame head: the 10 ms timeline, spoofed stretches, "partly spoofed", the `--segments` table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tests.modeling.detection_audio import single_torch_thread  # noqa: F401  (a fixture, used through pytestmark)
from tests.modeling.detection_audio import write_audio
from tests.tiny_models import framed_model

from modeling_nes2net import Nes2NetForAudioFrameClassification, save_model_folder
from modeling_nes2net.commands.detect import format_results
from modeling_nes2net.configuration_nes2net import PARTLY_SPOOFED_LABEL
from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.examples import speech_like
from modeling_nes2net.decision import log_odds
from nes2net.cli import main
from training.segment_metrics import verdict_margin

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def signal(seconds: float = 3.0) -> np.ndarray:
    return speech_like(seconds)


def test_the_detector_loads_a_frame_model_and_lays_its_frames_on_a_10ms_timeline(tmp_path):
    model = framed_model((0.0, 3.0))
    folder = save_model_folder(model, tmp_path / "framed")
    detector = Nes2NetDetector.from_pretrained(str(folder), device="cpu", window=16_000, hop=8_000)
    assert isinstance(detector.model, Nes2NetForAudioFrameClassification)
    waveform = signal()
    result = detector.detect(waveform, sampling_rate=16_000)
    assert result.timeline.shape == (300,) and result.label == "bonafide" and result.stretches == []
    with torch.no_grad():  # the first window's frames, nearest frame per cell, as the timeline shows them
        first = log_odds(model(torch.from_numpy(waveform[:16_000])[None]).frame_logits[0]).numpy()
    times = model.frame_times(len(first)).numpy()
    cell = 10  # 0.105 s: only the first window covers it
    nearest = int(np.argmin(np.abs(times - (cell + 0.5) * 0.01)))
    assert result.timeline[cell] == pytest.approx(float(first[nearest]), abs=1e-5)


def test_a_spoofed_stretch_is_not_hidden_by_a_bona_fide_verdict():
    spoofed_frames = framed_model((3.0, 0.0))  # every frame spoof, the utterance bona fide
    result = Nes2NetDetector(spoofed_frames, device="cpu", window=16_000, hop=8_000).detect(signal(), 16_000)
    assert result.log_odds > 0 and result.label == PARTLY_SPOOFED_LABEL and result.is_spoof
    (stretch,) = result.stretches
    assert (stretch.start, stretch.end) == pytest.approx((0.0, 3.0)) and stretch.log_odds < 0
    table = format_results([result], "table", segments=True)
    assert "partly spoofed" in table and "spoofed stretch 0.00-3.00 s" in table
    header, row = table.splitlines()[:2]  # the label column fits the longest verdict: the columns stay aligned
    probability = f"{result.bonafide_probability:.4f}"
    assert row.index(probability) + len(probability) == header.index("p(bona fide)") + len("p(bona fide)")
    assert format_results([result], "json", segments=True).count('"stretches"') == 1


def test_the_models_stretch_margin_decides_which_dips_are_flagged():
    spoofed_frames = framed_model((3.0, 0.0))
    depth = -Nes2NetDetector(spoofed_frames, device="cpu").detect(signal(), 16_000).stretches[0].log_odds
    spoofed_frames.config.stretch_margin = depth + 0.5  # deeper than any frame: nothing confident enough
    shallow = Nes2NetDetector(spoofed_frames, device="cpu").detect(signal(), 16_000)
    assert (shallow.label, shallow.stretches) == ("bonafide", [])
    spoofed_frames.config.stretch_margin = depth - 0.5
    (stretch,) = Nes2NetDetector(spoofed_frames, device="cpu").detect(signal(), 16_000).stretches
    assert (stretch.start, stretch.end) == pytest.approx((0.0, 3.0))


def test_the_models_stretch_edge_decides_where_a_flagged_stretch_ends(monkeypatch):
    timeline = np.array([1.0] * 100 + [-1.0] * 30 + [-3.0] * 40 + [-1.0] * 30 + [1.0] * 100)  # a core, shoulders
    monkeypatch.setattr(Nes2NetDetector, "_timeline", lambda detector, scored, segments: timeline)
    spoofed_frames = framed_model((3.0, 0.0))
    spoofed_frames.config.stretch_margin = 2.0
    ends = {}
    for edge in (0.0, 1.5):
        spoofed_frames.config.stretch_edge = edge
        (stretch,) = Nes2NetDetector(spoofed_frames, device="cpu").detect(signal(), 16_000).stretches
        ends[edge] = (stretch.start, stretch.end)
    assert ends[0.0] == pytest.approx((1.0, 2.0)) and ends[1.5] == pytest.approx((1.3, 1.7))
    # a detector's own margin below the model's edge: the edge follows it down, so the stretch still ends there
    (stretch,) = Nes2NetDetector(spoofed_frames, device="cpu", stretch_margin=0.5).detect(signal(), 16_000).stretches
    assert (stretch.start, stretch.end) == pytest.approx((1.0, 2.0))


@pytest.mark.parametrize("threshold", [None, 0.5])
def test_the_verdict_margin_is_the_margin_where_the_detector_stops_flagging(monkeypatch, threshold):
    timeline = np.array([1.0] * 100 + [-1.0] * 30 + [-1.75] * 25 + [-2.5] * 15 + [1.0] * 100)  # 0.25 s at -1.75
    monkeypatch.setattr(Nes2NetDetector, "_timeline", lambda detector, scored, segments: timeline)
    spoofed_frames = framed_model((3.0, 0.0))  # the utterance bona fide, the timeline the one above

    def detect(margin: float):
        detector = Nes2NetDetector(spoofed_frames, device="cpu", threshold=threshold, stretch_margin=margin)
        return detector.detect(signal(), 16_000)

    result = detect(0.0)
    margin = verdict_margin(result.log_odds, result.timeline, result.threshold)
    assert margin == pytest.approx(result.threshold + 1.75)  # a 0.2 s core fits the 0.25 s at -1.75, not the 0.15 s
    assert detect(margin - 0.01).label == PARTLY_SPOOFED_LABEL and detect(margin + 0.01).label == "bonafide"
    spoof = Nes2NetDetector(framed_model((3.0, 0.0), utterance_bias=(4.0, 0.0)), device="cpu").detect(signal(), 16_000)
    assert spoof.label == "spoof" and verdict_margin(spoof.log_odds, spoof.timeline, spoof.threshold) == np.inf
    assert verdict_margin(result.log_odds, None, result.threshold) == -np.inf


def test_detect_takes_another_stretch_margin_from_the_command_line(capsys, tmp_path):
    folder = save_model_folder(framed_model((3.0, 0.0)), tmp_path / "framed")  # every frame spoof, utterance bona fide
    clip = write_audio(tmp_path / "clip.wav", 3.0)

    def detect(*options: str) -> dict:
        assert main(["detect", str(clip), "--model", str(folder), "--format", "json", "--segments", *options]) == 0
        (result,) = json.loads(capsys.readouterr().out)
        return result

    flagged = detect()
    depth = -flagged["stretches"][0]["log_odds"]
    assert (flagged["label"], flagged["stretch_margin"]) == (PARTLY_SPOOFED_LABEL, 0.0)  # the model's own
    unflagged = detect("--stretch-margin", f"{depth + 0.5}")  # deeper than any frame reaches
    assert (unflagged["label"], unflagged["stretches"]) == ("bonafide", [])
    assert unflagged["stretch_margin"] == pytest.approx(depth + 0.5)  # the output says which margin decided it
