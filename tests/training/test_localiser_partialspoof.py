"""A PartialSpoof-layout fixture (protocols, con_wav, pickled segment-label dicts) trains and scores end to end."""

from __future__ import annotations

import csv

import numpy as np
import soundfile
import torch

from modeling_nes2net import Nes2NetForAudioFrameClassification
from tests.tiny_models import tiny_config
from training.data import build_dataset
from training.localisation import LocaliserTraining, aggregate_utterances, score_localiser, train_localiser
from training.segment_metrics import localisation_metrics

RESOLUTIONS = ("0.01", "0.02", "0.04", "0.08", "0.16", "0.32", "0.64")


def write_partialspoof(root, mini_antispoof, count: int = 6) -> None:
    """Real bona fide clips with a real spoofed clip's second (on the 10 ms grid) pasted in, in PartialSpoof's layout:
    `SPEAKER FILE - SYSTEM KEY` protocols and `{split}_seglab_{seconds}.npy` dicts of '1' / '0' string arrays."""
    rows = list(csv.DictReader(open(mini_antispoof / "metadata.csv", encoding="utf-8")))
    bonafide = [row for row in rows if row["label"] == "bonafide"]
    spoof = [row for row in rows if row["label"] == "spoof"][:count]
    for number, split in enumerate(("train", "dev", "eval")):
        (root / split / "con_wav").mkdir(parents=True)
        lines, labels = [], {seconds: {} for seconds in RESOLUTIONS}
        hosts = bonafide[number * count : (number + 1) * count]  # other clips in each split: a copy would be refused
        for index, (host, piece) in enumerate(zip(hosts, spoof)):
            host_audio = soundfile.read(mini_antispoof / host["file_name"], dtype="float32")[0][:32_000]
            piece_audio = soundfile.read(mini_antispoof / piece["file_name"], dtype="float32")[0][8_000:24_000]
            utt_id = f"CON_{split[0].upper()}_{index:07d}"
            if index % 2:  # bona fide
                audio, cells = host_audio, np.ones(200, np.int8)
                lines.append(f"LA_{index:04d} {utt_id} - - bonafide")
            else:
                audio = np.concatenate([host_audio[:16_000], piece_audio, host_audio[16_000:]])
                cells = np.concatenate([np.ones(100), np.zeros(100), np.ones(100)]).astype(np.int8)
                lines.append(f"LA_{index:04d} {utt_id} - CON spoof")
            soundfile.write(root / split / "con_wav" / f"{utt_id}.wav", audio, 16_000)
            for seconds in RESOLUTIONS:
                step = round(float(seconds) * 100)
                segments = np.minimum.reduceat(cells, np.arange(0, len(cells), step))
                labels[seconds][utt_id] = segments.astype(str)
        protocols = root / "protocols" / "PartialSpoof_LA_cm_protocols"
        protocols.mkdir(parents=True, exist_ok=True)
        (protocols / f"PartialSpoof.LA.cm.{split}.trl.txt").write_text("\n".join(lines) + "\n")
        (root / "segment_labels").mkdir(exist_ok=True)
        for seconds, by_utterance in labels.items():
            np.save(root / "segment_labels" / f"{split}_seglab_{seconds}.npy", by_utterance)


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
