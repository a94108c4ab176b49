"""Run in a fresh interpreter with HF_ENDPOINT pointing at a local Hub: load what was published, print JSON.

Usage: python hub_client.py MODEL_REPO DATASET_REPO AUDIO_FILE
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import soundfile
import torch
from datasets import load_dataset
from huggingface_hub import HfApi, ModelCard, snapshot_download
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline


def main(model_repo: str, dataset_repo: str, audio_file: str) -> dict:
    torch.set_num_threads(1)
    model = AutoModelForAudioClassification.from_pretrained(model_repo, trust_remote_code=True).eval()
    # olah answers a file missing from a served repository with 401 instead of 404, so the feature extractor,
    # whose loader first probes for an optional processor_config.json, is read from a snapshot.
    snapshot = Path(snapshot_download(model_repo, revision="main"))
    extractor = AutoFeatureExtractor.from_pretrained(snapshot, trust_remote_code=True)
    waveform, rate = soundfile.read(audio_file, dtype="float32")
    with torch.no_grad():
        logits = model(**extractor(waveform, sampling_rate=rate, return_tensors="pt")).logits
    detector = pipeline("audio-classification", model=model_repo, feature_extractor=extractor, trust_remote_code=True)
    card = ModelCard.load(model_repo)
    info = HfApi().model_info(model_repo, revision="main")
    dataset = load_dataset(dataset_repo, revision="main")
    return {
        "model_module": type(model).__module__,
        "pipeline_model_module": type(detector.model).__module__,
        "logits": logits[0].tolist(),
        "pipeline": detector(audio_file),
        "snapshot_sha256": {
            path.relative_to(snapshot).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(snapshot.rglob("*"))
            if path.is_file()
        },
        "card_pipeline_tag": card.data.pipeline_tag,
        "card_eval_results": [[r.dataset_type, r.metric_type, r.metric_config, r.metric_value]
                              for r in card.data.eval_results],
        "served_card_data_license": info.card_data.license if info.card_data else None,
        "dataset_rows": {split: len(rows) for split, rows in dataset.items()},
        "dataset_labels": {split: list(rows["label"]) for split, rows in dataset.items()},
        "dataset_label_names": dataset["train"].features["label"].names,
        "dataset_sampling_rate": dataset["train"][0]["audio"]["sampling_rate"],
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
