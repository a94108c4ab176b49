"""`nes2net evaluate` scores each trial as `nes2net detect` scores its file: the same decoder (soundfile and soxr, or
ffmpeg), the same protocol cuts and the same aggregation of windows. Checked on a split of generated speech-like
clips at 16, 22.05 and 44.1 kHz (shorter than a window, one window, a few windows, a tail that the hops do not
reach) under each protocol and, when `../shared` holds it, real clips of mini-antispoof."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile
import torch

from modeling_nes2net import save_model_folder
from modeling_nes2net.examples import speech_like
from nes2net.cli import main as nes2net
from tests.tiny_models import tiny_model
from training.data import build_dataset
from training.score_files import read_scores

MINI_ANTISPOOF = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mini-antispoof"
REAL_CLIPS = 6
# (file name, sampling rate, seconds): shorter than one window, exactly one, several with an end-aligned tail
GENERATED = [
    ("short-16k.flac", 16_000, 1.3),
    ("one-window-16k.wav", 16_000, 64_600 / 16_000),
    ("tail-16k.flac", 16_000, 9.7),
    ("resampled-22k.wav", 22_050, 5.3),
    ("resampled-44k.flac", 44_100, 2.6),
    ("long-44k.wav", 44_100, 8.2),
]
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """A built `eval` split of generated clips (and real ones when available), its source files by utt_id, and a
    tiny model folder."""
    root = tmp_path_factory.mktemp("evaluate-as-detect")
    corpus = root / "corpus"
    (corpus / "audio").mkdir(parents=True)
    rows = []
    for index, (name, rate, seconds) in enumerate(GENERATED):
        soundfile.write(corpus / "audio" / name, speech_like(seconds, rate, index), rate, subtype="PCM_16")
        rows.append({"file_name": f"audio/{name}", "label": ("bonafide", "spoof")[index % 2]})
    if MINI_ANTISPOOF.is_dir():
        with open(MINI_ANTISPOOF / "metadata.csv", newline="", encoding="utf-8") as handle:
            test = [row for row in csv.DictReader(handle) if row["split"] == "test"]
        for row in test[:: max(1, len(test) // REAL_CLIPS)][:REAL_CLIPS]:
            name = Path(row["file_name"]).name
            shutil.copyfile(MINI_ANTISPOOF / row["file_name"], corpus / "audio" / name)
            rows.append({"file_name": f"audio/{name}", "label": row["label"]})
    with open(corpus / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file_name", "label", "split"])
        writer.writeheader()
        writer.writerows({**row, "split": "eval"} for row in rows)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", str(root / "hf-cache"))
        build_dataset("generic", corpus, root / "built", progress=False)
        built = root / "built"
        files = {str(Path(row["file_name"]).with_suffix("")): corpus / row["file_name"] for row in rows}
        model = save_model_folder(tiny_model(seed=5), root / "model")
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        yield {"root": root, "built": built, "files": files, "model": model}
        torch.set_num_threads(previous)


def evaluate_scores(split, protocol: str, aggregation: str) -> dict[str, float]:
    out = split["root"] / f"evaluate-{protocol}-{aggregation}"
    code = nes2net(["evaluate", str(split["model"]), str(split["built"]), "--split", "eval", "--protocol", protocol,
                    "--aggregation", aggregation, "--output-dir", str(out), "--batch-size", "3", "--num-workers", "0",
                    "--bootstrap", "0"])
    assert code == 0
    table = read_scores(out / "scores.csv")
    return dict(zip(table.utt_ids, table.scores))


def detect_scores(split, protocol: str, aggregation: str) -> dict[str, float]:
    output = split["root"] / f"detect-{protocol}-{aggregation}.csv"
    code = nes2net(["detect", *map(str, split["files"].values()), "--model", str(split["model"]), "--protocol",
                    protocol, "--aggregation", aggregation, "--format", "csv", "--output", str(output), "--device",
                    "cpu"])
    assert code == 0
    with open(output, newline="", encoding="utf-8") as handle:
        by_file = {row["file"]: float(row["score"]) for row in csv.DictReader(handle)}
    return {utt_id: by_file[str(path)] for utt_id, path in split["files"].items()}


@pytest.mark.parametrize("protocol, aggregation", [("windows", "mean"), ("windows", "any"), ("full", "mean"),
                                                   ("4sec", "mean")])
def test_evaluate_gives_every_file_the_score_detect_gives(split, protocol, aggregation):
    evaluated = evaluate_scores(split, protocol, aggregation)
    detected = detect_scores(split, protocol, aggregation)
    assert evaluated.keys() == detected.keys()
    for utt_id in detected:
        assert evaluated[utt_id] == pytest.approx(detected[utt_id], abs=TOLERANCE), utt_id
    rates = {soundfile.info(path).samplerate for path in split["files"].values()}
    assert {16_000, 22_050, 44_100} <= rates  # resampled files are among them
    assert len(set(np.round(list(detected.values()), 4))) > len(detected) // 2  # the scores tell the files apart
