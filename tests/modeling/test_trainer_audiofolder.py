"""The README's fine-tuning recipe: an `audiofolder` of real clips, its labels aligned to the model's, `Trainer`."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.tiny_models import tiny_model

from modeling_nes2net import save_model_folder

datasets = pytest.importorskip("datasets")
transformers = pytest.importorskip("transformers")


def test_trainer_fine_tunes_from_an_audiofolder_with_the_models_label_ids(tmp_path, mini_antispoof):
    corpus = tmp_path / "my_corpus" / "train"
    for label, count in (("bonafide", 3), ("spoof", 5)):
        (corpus / label).mkdir(parents=True)
        for path in sorted((mini_antispoof / "audio" / "train" / label).glob("*.flac"))[:count]:
            shutil.copy(path, corpus / label / path.name)
    folder = save_model_folder(tiny_model("spectrogram"), tmp_path / "model")

    model = transformers.AutoModelForAudioClassification.from_pretrained(folder)
    extractor = transformers.AutoFeatureExtractor.from_pretrained(folder)
    data = datasets.load_dataset("audiofolder", data_dir=str(tmp_path / "my_corpus"),
                                 cache_dir=str(tmp_path / "cache"))
    assert data["train"].features["label"].names == ["bonafide", "spoof"]  # audiofolder's order: bonafide = 0
    data = data.align_labels_with_mapping(model.config.label2id, "label")
    for row in data["train"].cast_column("audio", datasets.Audio(decode=False)):
        assert model.config.id2label[row["label"]] == Path(row["audio"]["path"]).parent.name
    data = data.cast_column("audio", datasets.Audio(sampling_rate=16_000)).map(
        lambda batch: extractor([a["array"] for a in batch["audio"]], sampling_rate=16_000, max_length=16_000,
                                truncation=True, padding="max_length"), batched=True, remove_columns=["audio"])
    assert sorted(data["train"]["label"]) == [0] * 5 + [1] * 3  # spoof = 0, bonafide = 1

    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    arguments = transformers.TrainingArguments(str(tmp_path / "run"), per_device_train_batch_size=4, max_steps=2,
                                               report_to=[], use_cpu=True, save_strategy="no")
    trainer = transformers.Trainer(model=model, args=arguments, train_dataset=data["train"])
    loss = trainer.train().training_loss
    assert np.isfinite(loss)
    assert not torch.equal(before["classifier.weight"], model.state_dict()["classifier.weight"])
