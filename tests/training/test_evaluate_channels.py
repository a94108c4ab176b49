"""`nes2net evaluate --perturb`: every condition scores the same trials through `training.channel`, from one clean
decode, into one results file with a table and a plot; bootstrap intervals come with the EERs."""

from __future__ import annotations

import json
import shutil

import datasets
import numpy as np
import pytest
import soundfile
import torch
from accelerate import Accelerator

from modeling_nes2net import save_model_folder
from nes2net.cli import main as nes2net
from tests.tiny_models import tiny_model
from tests.training.train_helpers import build_tiny_corpus
from training.batching import Trials
from training.channel import perturb
from training.data import load_built_dataset
from training.evaluate import DECODE_CACHE, evaluate_model
from training.evaluation_outputs import CONDITIONS_DIR
from training.metrics import compute_eer
from hub_cards.results import load_result
from training.score_files import read_scores

CONDITIONS = ["gain:db=-12", "noise:snr=5", "mulaw:rate=8000"]  # as results name them
SEED = 11


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate-channels")
    decodes = []
    original = Trials.source
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", str(root / "hf-cache"))
        patch.setattr(Trials, "source", lambda self, index: decodes.append(index) or original(self, index))
        dataset = build_tiny_corpus(root)
        model = save_model_folder(tiny_model(seed=3), root / "model")
        result = evaluate_model(model, str(dataset), root / "out", split="eval", protocol="full", batch_size=4,
                                num_workers=0, progress=False, accelerator=Accelerator(cpu=True),
                                perturb=CONDITIONS, channel_seed=SEED, bootstrap=100)
    return {"root": root, "dataset": dataset, "model": model, "result": result, "decodes": decodes}


def test_each_condition_scores_the_trials_through_its_channel(evaluated):
    root = evaluated["root"]
    model = tiny_model(seed=3)
    utt_ids = load_built_dataset(evaluated["dataset"], "eval")["utt_id"]
    torch.set_num_threads(1)
    for spec in CONDITIONS:
        table = read_scores(root / "out" / CONDITIONS_DIR / spec.replace(":", "_") / "scores.csv")
        assert table.utt_ids == utt_ids
        expected = []
        with torch.inference_mode():
            for index, utt_id in enumerate(utt_ids):
                waveform, rate = soundfile.read(root / "corpus" / f"{utt_id}.flac", dtype="float32")
                noisy = perturb(waveform, rate, spec, seed=(SEED, index))
                expected.append(model(torch.from_numpy(noisy)[None]).logits[0, 1].item())
        np.testing.assert_allclose(table.scores, expected, atol=1e-4)
    clean = read_scores(root / "out" / "scores.csv").scores
    assert not np.allclose(clean, read_scores(root / "out" / CONDITIONS_DIR / "noise_snr=5" / "scores.csv").scores,
                           atol=1e-3)


def test_the_clean_decode_is_done_once_and_not_left_behind(evaluated):
    assert sorted(evaluated["decodes"]) == list(range(12))  # 12 eval trials, 1 clean + 3 conditions
    assert not (evaluated["root"] / "out" / DECODE_CACHE).exists()


def test_one_results_file_holds_every_condition_with_intervals(evaluated):
    out = evaluated["root"] / "out"
    written = load_result(out / "results.json")  # validated against the card schema
    assert list(written.conditions) == CONDITIONS and written.channel_seed == SEED
    for name, entry in written.conditions.items():
        assert entry["n_trials"] == 12 and entry["n_bonafide"] == 6
        table = read_scores(out / CONDITIONS_DIR / name.replace(":", "_") / "scores.csv")
        bonafide, spoof = table.scores[table.labels == 1], table.scores[table.labels == 0]
        assert entry["eer"] == pytest.approx(compute_eer(bonafide, spoof).eer)
        assert entry["eer_ci"][0] <= entry["eer"] <= entry["eer_ci"][1]
    low, high = written.metrics["eer_ci"]
    assert low <= written.metrics["eer"] <= high
    for groups in written.per_group["attack"].values():
        assert groups["eer_ci"][0] <= groups["eer"] <= groups["eer_ci"][1]
    table = (out / "robustness.md").read_text()
    assert [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| `")] == [
        "`clean`", *(f"`{name}`" for name in CONDITIONS)]
    assert f"{100 * written.conditions['mulaw:rate=8000']['eer']:.2f}" in table
    assert (out / "robustness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_rerun_with_another_channel_seed_refuses_to_mix_scores(evaluated, tmp_path):
    out = shutil.copytree(evaluated["root"] / "out", tmp_path / "out")
    manifest = json.loads((out / CONDITIONS_DIR / "mulaw_rate=8000" / "parts" / "manifest.json").read_text())
    assert manifest["channel"] == "mulaw:rate=8000" and manifest["channel_seed"] == SEED
    with pytest.raises(ValueError, match="different channel_seed"):
        evaluate_model(evaluated["model"], str(evaluated["dataset"]), out, split="eval", protocol="full",
                       batch_size=4, num_workers=0, progress=False, accelerator=Accelerator(cpu=True),
                       perturb=CONDITIONS, channel_seed=SEED + 1)


def test_command_rejects_an_unknown_condition_in_one_line(evaluated, capsys):
    with pytest.raises(SystemExit) as exit_info:
        nes2net(["evaluate", "model", "data", "--output-dir", "x", "--perturb", "mp4:32k"])
    assert exit_info.value.code == 2
    assert "unknown channel condition 'mp4'" in capsys.readouterr().err
