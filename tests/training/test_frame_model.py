"""`python -m training.frame_model` on a tiny random Whisper model and generated splices: the frame labels follow the
encoder's 20 ms frames, the utterance model stays the base's when frozen, and the trained folder is what the default
detector loads and what `detect --segments` localises with."""

from __future__ import annotations

import csv
import json
import types
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import yaml

from modeling_nes2net import Nes2NetForAudioClassification, Nes2NetForAudioFrameClassification, save_model_folder
from modeling_nes2net import detection, model_loading
from modeling_nes2net.detection import MIN_STRETCH_SECONDS
from modeling_nes2net.examples import speech_like
from modeling_nes2net.localisation import frame_cell_scores, spoofed_stretches, stretch_iou
from modeling_nes2net.model_calls import frame_log_odds
from tests.tiny_models import tiny_model
from training import frame_model
from training.frame_model import (
    FrameRecipe,
    build_sources,
    cell_labels,
    add_frame_statistics_head,
    frame_loss,
    frame_state_files,
    frame_statistics,
    initial_frame_model,
    main,
    read_state_files,
    select_inverse_strength,
    stretch_edge,
    stretch_margin,
)
from training.frozen_frontend import CORPUS_COLUMN, FrontendCache, StatesDataset, collate_states
from training.localisation import frame_targets
from training.metrics import compute_eer

RATE = 16_000


def cached_train_states(model: Nes2NetForAudioFrameClassification, recipe: FrameRecipe, sources: Mapping[str, Path],
                        cache_dir: Path) -> FrontendCache:
    """The train states of every source as the pipeline caches them (`frame_state_files`), read back as one cache."""
    return read_state_files(frame_state_files(model, recipe, sources, cache_dir)["train"])


def machine_made(seconds: float, seed: int) -> np.ndarray:
    """A spoof clip the tiny model can tell apart: speech-like, with a steady 3 kHz whistle over it."""
    waveform = speech_like(seconds, seed=seed)
    return waveform + 0.4 * np.sin(2 * np.pi * 3000 * np.arange(len(waveform)) / RATE).astype(np.float32)


def content_encoder_model() -> Nes2NetForAudioClassification:
    """A tiny random Whisper model whose encoder convolutions are scaled up 20 times: at its initial scale the
    sinusoidal positions outweigh the audio in every state, and no back-end could tell one clip from another."""
    model = tiny_model("whisper", layer_merge="weighted_sum", freeze_frontend=True)
    with torch.no_grad():
        for convolution in (model.nes2net.frontend.encoder.conv1, model.nes2net.frontend.encoder.conv2):
            convolution.weight.mul_(20)
    return model


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A generic-layout corpus of generated clips (10 genuine hosts of 2.5-4.3 s, 6 machine-made clips, train split),
    a tiny Whisper base model folder, and a frame recipe over them."""
    root = tmp_path_factory.mktemp("frames")
    rows = []
    for index in range(10):
        clips = [("bonafide", speech_like(2.5 + 0.2 * index, seed=index))]
        clips += [("spoof", machine_made(2.0, seed=50 + index))] if index < 6 else []
        for label, waveform in clips:
            name = f"audio/{label}/{index}.wav"
            (root / "corpus" / name).parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(root / "corpus" / name, waveform, RATE)
            rows.append({"file_name": name, "label": label, "split": "train",
                         "system": "genuine" if label == "bonafide" else "whistle-tts"})
    with open(root / "corpus" / "metadata.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    base = content_encoder_model()
    base.config.training_data = "Trained on generated whistles."
    save_model_folder(base, root / "base")
    recipe = {
        "model": {"base": str(root / "base"), "freeze_utterance_model": False},
        "corpora": {"generated": {"source": str(root / "corpus")}},
        "data": {"seed": 1, "views": 2, "augmentation": {"channel": {"p": 1.0, "conditions": ["noise:snr=30"]}}},
        "training": {"epochs": 40, "batch_size": 8, "lr": 1.0e-2, "min_lr": 3.0e-3, "schedule": "cosine",
                     "frontend_lr": 0, "weight_decay": 1.0e-4, "average_best": 1, "average_epochs": "last",
                     "mixed_precision": "no", "seed": 0},
    }
    (root / "frames.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return root


def test_frame_labels_follow_the_encoders_20ms_frames(workspace):
    """Whisper's frame k is centred on sample 320 k, so it carries the label of 10 ms cell 2 k: the frames labelled
    spoof are exactly those whose centre lies in an inserted piece, and a whole clip is its label in every frame."""
    recipe = FrameRecipe.load(workspace / "frames.yaml")
    model = initial_frame_model(recipe)
    sources = build_sources(recipe, workspace / "run" / "data")
    train = cached_train_states(model, recipe, sources, workspace / "run" / "cache")
    spliced = [index for index, labels in enumerate(train.metadata["segment_labels_10ms"])
               if len(labels) and min(labels) == 0]
    assert spliced and any(len(labels) == 0 for labels in train.metadata["segment_labels_10ms"])  # and whole clips
    for index in spliced:
        frames = train.states[index].shape[1]
        cells = np.asarray(train.metadata["segment_labels_10ms"][index])
        assert frames == (len(cells) + 1) // 2
        targets = frame_targets(cell_labels(train, index, frames, 2.0), model.frame_times(frames).numpy())
        np.testing.assert_array_equal(targets, cells[2 * np.arange(frames)])
        assert 0 < (targets == 0).sum() < frames
    whole = next(index for index, labels in enumerate(train.metadata["segment_labels_10ms"]) if not len(labels))
    frames = train.states[whole].shape[1]
    targets = frame_targets(cell_labels(train, whole, frames, 2.0), model.frame_times(frames).numpy())
    assert (targets == train.labels[whole]).all()


def test_more_splice_draws_train_on_other_pieces_in_the_same_hosts(workspace):
    """`data.splice_draws: 2`: each corpus is spliced a second time with splice seed 1, and those splices are
    encoded for training next to the first draw's: as many, with other pieces in other places."""
    recipe = FrameRecipe.load(workspace / "frames.yaml")
    recipe.data = {**recipe.data, "splice_draws": 2, "views": 1}
    sources = build_sources(recipe, workspace / "draws" / "data")
    assert set(sources) == {"splices-generated", "clips-generated", "splices1-generated"}
    train = cached_train_states(initial_frame_model(recipe), recipe, sources, workspace / "draws" / "cache")
    drawn = {name: [tuple(cells) for cells, corpus in zip(train.metadata["segment_labels_10ms"],
                                                          train.metadata[CORPUS_COLUMN]) if corpus == name]
             for name in ("splices-generated", "splices1-generated")}
    assert len(drawn["splices1-generated"]) == len(drawn["splices-generated"]) > 0
    assert drawn["splices1-generated"] != drawn["splices-generated"]


def test_the_joint_loss_trains_the_trunk_and_the_frozen_one_only_the_frame_classifier(workspace):
    recipe = FrameRecipe.load(workspace / "frames.yaml")
    sources = build_sources(recipe, workspace / "run" / "data")
    model = initial_frame_model(recipe)
    train = cached_train_states(model, recipe, sources, workspace / "run" / "cache")
    batch = collate_states([StatesDataset(train, 60, 0, 0, seed=0)[index] for index in range(4)])
    for joint in (True, False):
        model = Nes2NetForAudioFrameClassification.from_pretrained(workspace / "base", allow_new_weights=True)
        if not joint:
            model.freeze_utterance_model()
        model.train()
        loss = frame_loss(model, batch, train, train_utterance_model=joint)
        loss.backward()
        assert model.frame_classifier.weight.grad is not None
        assert (model.classifier.weight.grad is not None) == joint
        assert any(parameter.grad is not None for parameter in model.nes2net.backend.parameters()) == joint


def _build(workspace, output, *options: str, recipe: str = "frames.yaml") -> None:
    code = main(["--recipe", str(workspace / recipe), "--work-dir", str(workspace / "run"),
                 "--output-dir", str(output), "--threads", "1", *options])
    torch.use_deterministic_algorithms(False)
    assert code == 0 and (output / "model.safetensors").is_file() and not (output / "modeling_nes2net.py").exists()


def spliced_recording(workspace) -> tuple:
    """A host no training clip came from with a machine-made second no training clip held inserted at 1 s: its path
    and its 10 ms labels."""
    host, piece = speech_like(3.0, seed=20), machine_made(1.0, seed=99)
    path = workspace / "spliced.wav"
    soundfile.write(path, np.concatenate([host[:RATE], piece, host[RATE:]]), RATE)
    return path, np.concatenate([np.ones(100), np.zeros(100), np.ones(200)]).astype(np.int8)


def test_the_trained_folder_is_the_default_detectors_and_localises_the_inserted_piece(workspace, monkeypatch, capsys):
    save_model_folder(content_encoder_model(), workspace / "default")
    _build(workspace, workspace / "default_frame_model")
    monkeypatch.setattr(model_loading, "DEFAULT_MODEL_DIR", workspace / "default")
    monkeypatch.setattr(model_loading, "DEFAULT_FRAME_MODEL_DIR", workspace / "default_frame_model")
    framed = model_loading.load_model(None)
    assert isinstance(framed, Nes2NetForAudioFrameClassification)
    assert framed.config.training_data.startswith("Frame head")  # its utterance model was trained too: not the base's

    path, cells = spliced_recording(workspace)
    result = detection.Nes2NetDetector(framed, protocol="full", device="cpu").detect(str(path))
    assert stretch_iou(result.stretches, cells) >= 0.5, result.stretches
    assert result.label != "bonafide"

    from nes2net.cli import main as cli

    assert cli(["detect", str(path), "--protocol", "full", "--segments", "--device", "cpu", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)[0]["stretches"]
    assert [(s["start"], s["end"]) for s in printed] == [(s.start, s.end) for s in result.stretches]


def test_a_frozen_utterance_model_keeps_the_base_verdicts_to_the_bit(workspace):
    output = workspace / "frozen"
    _build(workspace, output, "--freeze-utterance-model")
    framed, base = model_loading.load_model(output), model_loading.load_model(workspace / "base")
    assert framed.config.training_data.startswith("Utterance model: Trained on generated whistles. Frame head")
    waveform = torch.from_numpy(speech_like(3.0, seed=7))[None]
    with torch.inference_mode():
        assert torch.equal(framed(waveform).logits, base(waveform).logits)
        assert not torch.equal(framed(waveform).frame_logits,
                               Nes2NetForAudioFrameClassification.from_pretrained(
                                   workspace / "base", allow_new_weights=True)(waveform).frame_logits)


def test_a_local_statistics_frame_head_localises_the_piece_and_keeps_every_verdict(workspace):
    """`model.frame_statistics`: the frame classifier is a logistic regression on the local statistics of the encoder
    states, fitted without training the trunk, so the utterance logits stay the base's to the bit."""
    recipe = yaml.safe_load((workspace / "frames.yaml").read_text(encoding="utf-8"))
    recipe["model"]["frame_statistics"] = {"window": 5, "inverse_strength": 1.0, "frame_step": 1}
    (workspace / "statistics.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    output = workspace / "statistics"
    _build(workspace, output, recipe="statistics.yaml")
    framed, base = model_loading.load_model(output), model_loading.load_model(workspace / "base")
    assert framed.config.frame_statistics_window == 5
    assert "local statistics" in framed.config.training_data
    assert "(statistics.yaml)" in framed.config.training_data  # the recipe, not a folder of this machine
    # the utterance model is the base's, and so is the account of its training data
    assert framed.config.training_data.startswith("Utterance model: Trained on generated whistles. Frame head")
    assert not framed.frame_classifier.weight[:, :framed.config.feature_size].any()  # the trunk's columns unused
    path, cells = spliced_recording(workspace)
    waveform = torch.from_numpy(soundfile.read(path, dtype="float32")[0])[None]
    with torch.inference_mode():
        assert torch.equal(framed(waveform).logits, base(waveform).logits)
    result = detection.Nes2NetDetector(framed, protocol="full", device="cpu").detect(str(path))
    assert stretch_iou(result.stretches, cells) >= 0.5, result.stretches


def test_a_bad_frame_statistics_section_is_refused(workspace):
    recipe = yaml.safe_load((workspace / "frames.yaml").read_text(encoding="utf-8"))
    recipe["model"]["frame_statistics"] = {"window": 5, "strength": 1.0}
    (workspace / "bad.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    with pytest.raises(ValueError, match="model.frame_statistics takes window, inverse_strength, frame_step"):
        FrameRecipe.load(workspace / "bad.yaml")


def test_genuine_flagged_sets_the_stretch_margin_and_keeps_the_frame_log_odds_calibrated(workspace, monkeypatch):
    recipe = FrameRecipe.load(workspace / "frames.yaml")
    model = initial_frame_model(recipe)
    train = cached_train_states(model, recipe, build_sources(recipe, workspace / "run" / "data"),
                                workspace / "run" / "cache")
    options = dict(window=5, inverse_strength=1.0, frame_step=1)
    plain = add_frame_statistics_head(model, train, train, **options)
    asked = []
    # the margin itself is the next test's; here, where it goes: the config, not the frame classifier's bias
    monkeypatch.setattr(frame_model, "stretch_margin", lambda fitted, bonafide, share: asked.append(share) or 1.75)
    flagged = add_frame_statistics_head(model, train, train, genuine_flagged=0.2, **options)
    assert asked == [0.2]
    assert (plain.config.stretch_margin, flagged.config.stretch_margin) == (0.0, 1.75)
    assert plain.config.stretch_edge == 0.0 and 0.0 <= flagged.config.stretch_edge <= 1.75  # fitted on its splices
    assert torch.equal(flagged.frame_classifier.weight, plain.frame_classifier.weight)
    assert torch.equal(flagged.frame_classifier.bias, plain.frame_classifier.bias)


def test_of_several_l2_strengths_the_one_with_the_lowest_dev_frame_eer_is_kept():
    """The informative column is the first; twenty noise columns follow. On 40 training frames a weak prior fits the
    noise, a strong one keeps to the informative column, so the held-out frames tell the strengths apart."""
    generator = np.random.default_rng(0)

    def frames(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = generator.integers(0, 2, count)
        features = generator.normal(size=(count, 21))
        features[:, 0] += 1.5 * labels
        return features, labels

    train, dev = frames(40), frames(2000)
    eers = {}
    for strength in (1e3, 1e-3):
        weights, bias = select_inverse_strength(*train, *dev, [strength])
        scores = dev[0] @ weights + bias
        eers[strength] = compute_eer(scores[dev[1] == 1], scores[dev[1] == 0]).eer
    best = min(eers, key=eers.get)
    assert eers[1e3] != eers[1e-3]
    for strengths in ([1e3, 1e-3], [1e-3, 1e3]):
        weights, _ = select_inverse_strength(*train, *dev, strengths)
        np.testing.assert_array_equal(weights, select_inverse_strength(*train, *dev, [best])[0])


def test_several_l2_strengths_need_spliced_dev_recordings(workspace):
    recipe = FrameRecipe.load(workspace / "frames.yaml")
    model = initial_frame_model(recipe)
    train = cached_train_states(model, recipe, build_sources(recipe, workspace / "run" / "data"),
                                workspace / "run" / "cache")
    clips = train.select(np.array([not len(cells) for cells in train.metadata["segment_labels_10ms"]]))
    assert 0 < len(clips) < len(train)
    for dev in (None, clips):
        with pytest.raises(ValueError, match="chosen between on the dev split's spliced recordings"):
            add_frame_statistics_head(model, train, dev, window=5, inverse_strength=[1.0, 0.01], frame_step=1)


def test_dev_states_without_trials_are_refused_rather_than_left_uncalibrated(workspace):
    recipe = FrameRecipe.load(workspace / "frames.yaml")
    model = initial_frame_model(recipe)
    train = cached_train_states(model, recipe, build_sources(recipe, workspace / "run" / "data"),
                                workspace / "run" / "cache")
    with pytest.raises(ValueError, match="the dev states hold no trials"):
        add_frame_statistics_head(model, train, train.select(np.zeros(len(train), bool)), window=5, frame_step=1)


def test_the_stretch_margin_is_the_least_that_keeps_the_share_of_flagged_bona_fide_recordings(workspace):
    recipe = FrameRecipe.load(workspace / "frames.yaml")
    model = initial_frame_model(recipe)
    train = cached_train_states(model, recipe, build_sources(recipe, workspace / "run" / "data"),
                                workspace / "run" / "cache")
    fitted = add_frame_statistics_head(model, train, None, window=5, inverse_strength=1.0, frame_step=1)
    bonafide = train.select(train.labels == 1)

    def flagged(margin: float) -> int:
        count = 0
        for state in bonafide.states:
            states = tuple(state.float()[:, None])
            with torch.inference_mode():
                _, trunk, _ = fitted.nes2net.forward_frontend_states(states)
                scores = frame_log_odds(fitted.frame_logits_of(states, trunk), [state.shape[1]])[0]
            timeline = frame_cell_scores(scores, fitted.frame_times(len(scores)).numpy(), 2 * len(scores))
            count += bool(spoofed_stretches(timeline, 0.0, MIN_STRETCH_SECONDS, margin))
        return count

    for _ in range(100):  # lower the frame log-odds until most bona fide recordings dip below 0 somewhere
        if flagged(0.0) > len(bonafide) // 2:
            break
        with torch.no_grad():
            fitted.frame_classifier.bias[-1] -= 2.0
    assert flagged(0.0) > len(bonafide) // 2
    for share in (0.0, 0.25, 0.5):
        margin = stretch_margin(fitted, bonafide, share)
        assert margin > 0
        assert flagged(margin + 1e-4) <= share * len(bonafide) < flagged(margin - 1e-3)


def test_the_stretch_edge_is_where_the_most_dev_splices_are_found(monkeypatch):
    """Each spliced span scores -3 in its middle third and -1 on its shoulders, and 0.4 s of genuine speech on either
    side leans spoof at -0.6: only an edge from 0.6 to below 1 flags the span exactly; below, the stretch swallows the
    genuine neighbours (IoU 0.43-0.6), above, it keeps the core alone (IoU 1/3)."""
    def splice(before: int, span: int, after: int) -> np.ndarray:
        return np.array([1] * before + [0] * span + [1] * after, np.int8)

    labels = [splice(60, 60, 100), splice(120, 90, 50), splice(50, 120, 70)]
    timelines = []
    for cells in labels:
        start, end = np.flatnonzero(cells == 0)[[0, -1]] + [0, 1]
        timeline = np.where(cells == 1, 1.0, -1.0)
        timeline[max(0, start - 40) : start] = timeline[end : end + 40] = -0.6
        third = (end - start) // 3
        timeline[start + third : end - third] = -3.0
        timelines.append(timeline)
    spliced = FrontendCache([torch.full((1, 2, 1), float(index)) for index in range(len(labels))],
                            np.zeros(len(labels), np.int64), {"segment_labels_10ms": labels})
    monkeypatch.setattr(frame_model, "cell_log_odds", lambda model, state, cells: timelines[int(state[0, 0, 0])])
    model = types.SimpleNamespace(config=types.SimpleNamespace(stretch_margin=2.0))
    assert stretch_edge(model, spliced, steps=10) == pytest.approx(0.6)  # 0.6 and 0.8 both exact: the smaller
    assert stretch_edge(model, spliced, steps=4) == 0.0  # of 0, 0.5, 1, 1.5, 2: 0 and 0.5 find two of three alike


def test_the_statistics_of_cache_files_read_one_at_a_time_are_those_of_the_loaded_cache(workspace):
    recipe = FrameRecipe.load(workspace / "frames.yaml")
    model = initial_frame_model(recipe)
    sources = build_sources(recipe, workspace / "run" / "data")
    files = frame_state_files(model, recipe, sources, workspace / "run" / "cache")
    train = cached_train_states(model, recipe, sources, workspace / "run" / "cache")
    assert len(files["train"]) > 1 and sum(FrontendCache.stored_trials(path) for path in files["train"]) == len(train)
    for streamed, loaded in zip(frame_statistics(model, files["train"], 5, 3), frame_statistics(model, train, 5, 3)):
        assert len(streamed) > 0
        np.testing.assert_array_equal(streamed, loaded)
