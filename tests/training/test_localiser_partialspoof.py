"""A PartialSpoof-layout fixture (protocols, con_wav, pickled segment-label dicts) trains and scores end to end."""

from __future__ import annotations

import torch

from modeling_nes2net import Nes2NetForAudioFrameClassification
from tests.tiny_models import tiny_config
from tests.training.corpus_layouts import write_partialspoof
from training.data import build_dataset
from training.localisation import LocaliserTraining, aggregate_utterances, score_localiser, train_localiser
from training.segment_metrics import localisation_metrics


def test_partialspoof_fixture_trains_and_scores_end_to_end(tmp_path, mini_antispoof):
    write_partialspoof(tmp_path / "database", mini_antispoof)
    build_dataset("partialspoof", tmp_path / "database", tmp_path / "built", progress=False)
    torch.manual_seed(0)
    config = tiny_config("spectrogram", spectrogram_n_fft=254, spectrogram_hop_length=160)  # 10 ms frames
    model = Nes2NetForAudioFrameClassification(config)
    torch.set_num_threads(1)
    before = localisation_metrics(score_localiser(model, tmp_path / "built", "train"))
    training = LocaliserTraining(epochs=60, batch_size=6, crop_seconds=3.0, learning_rate=1e-2)
    train_localiser(model, tmp_path / "built", training)
    scored = score_localiser(model, tmp_path / "built", "train")
    after = localisation_metrics(scored)
    assert len(scored) == 6 and all(len(u.cell_scores) == len(u.cell_labels) for u in scored)
    assert after["segment_eer_160ms"] < min(0.25, before["segment_eer_160ms"])
    assert after["range_eer"] < before["range_eer"]
    evaluated = localisation_metrics(aggregate_utterances(score_localiser(model, tmp_path / "built", "eval"), "min"))
    assert all(0.0 <= value <= 1.0 for value in evaluated.values())
