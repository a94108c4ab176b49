"""`training.evaluate` end to end on a tiny built corpus of real FLAC files: scores in trial order, resumed scoring,
results files valid for the model cards, and scoring shared by two processes under `accelerate launch`."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
import soundfile
import torch
from accelerate import Accelerator

from modeling_nes2net import Nes2NetForAudioClassification, save_model_folder
from nes2net.cli import main as nes2net
from tests.tiny_models import tiny_model
from tests.training.train_helpers import build_tiny_corpus, run_command, subprocess_env
from training.llr_fitting import fit_llr_fusion
from training.data import load_built_dataset
from training.evaluate import PARTS_DIR, evaluate_model
from training.measure import read_asv_scores
from training.metrics import asv_error_rates, compute_min_tdcf_2019, split_by_label
from hub_cards.results import load_result
from training.score_files import read_scores


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", str(root / "hf-cache"))
        dataset = build_tiny_corpus(root)
        model = save_model_folder(tiny_model(seed=3), root / "model")
        yield {"root": root, "dataset": dataset, "model": model, "accelerator": Accelerator(cpu=True)}


@pytest.fixture(scope="module")
def reference_scores(setup):
    """Each eval trial scored alone, unpadded: the bona fide logit of the whole file."""
    torch.set_num_threads(1)
    model = tiny_model(seed=3)
    corpus = setup["root"] / "corpus"
    rows = load_built_dataset(setup["dataset"], "eval").select_columns(["utt_id"])
    scores = {}
    with torch.inference_mode():
        for utt_id in rows["utt_id"]:
            waveform, _ = soundfile.read(corpus / f"{utt_id}.flac", dtype="float32")
            scores[utt_id] = model(torch.from_numpy(waveform)[None]).logits[0, 1].item()
    return scores


def evaluate(setup, output: str, **options):
    options = {"split": "eval", "protocol": "full", "batch_size": 4, "num_workers": 0, "progress": False, **options}
    return evaluate_model(setup["model"], str(setup["dataset"]), setup["root"] / output,
                          accelerator=setup["accelerator"], **options)


def test_scores_follow_trial_order_and_equal_unbatched_scoring(setup, reference_scores):
    result = evaluate(setup, "full", group_by=["attack", "codec"])
    table = read_scores(setup["root"] / "full" / "scores.csv")
    assert table.utt_ids == list(reference_scores)  # trial order, although batches were sorted by length
    np.testing.assert_allclose(table.scores, list(reference_scores.values()), atol=1e-4)
    assert table.metadata["codec"][:4] == ["none"] * 4 and table.metadata["attack"][1] in ("A01", "A02")

    written = load_result(setup["root"] / "full" / "results.json")  # validated against the card schema
    assert written.n_trials == 12 and written.n_bonafide == 6 and written.protocol == "full"
    assert written.metrics == pytest.approx(result["metrics"])
    assert set(written.metrics) == {"eer", "threshold", "min_dcf", "act_dcf", "cllr"}
    attacks = written.per_group["attack"]
    assert set(attacks) == {"A01", "A02"} and attacks["A01"]["n_trials"] == 6 + 3  # all bona fide vs its spoofs
    assert written.per_group["codec"]["none"]["n_trials"] == 8
    for plot in ("det_curve.png", "score_histogram.png"):
        assert (setup["root"] / "full" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_interrupted_run_resumes_without_rescoring(setup, reference_scores):
    parts = setup["root"] / "resumed" / PARTS_DIR
    assert evaluate(setup, "resumed", max_batches=1) is None
    part = parts / "part-00000.tsv"
    assert len(part.read_text().splitlines()) == 4
    with open(part, "a") as handle:
        handle.write("5\t0.12")  # a line cut short when the process was killed
    evaluate(setup, "resumed")
    lines = part.read_text().splitlines()
    assert len(lines) == 12 and len({line.split("\t")[0] for line in lines}) == 12  # 4 kept + 8 new, none twice
    table = read_scores(setup["root"] / "resumed" / "scores.csv")
    np.testing.assert_allclose(table.scores, list(reference_scores.values()), atol=1e-4)

    with pytest.raises(ValueError, match="protocol"):
        evaluate(setup, "resumed", protocol="4sec")  # scores of another protocol are never mixed in


def test_command_filters_trials_writes_asvspoof_scores_and_tdcf(setup):
    rng = np.random.default_rng(0)
    asv = setup["root"] / "asv_scores.txt"
    asv.write_text("".join(f"LA_00{i % 10} {key} {rng.normal(mean, 1):.4f}\n" for i, (key, mean) in
                           enumerate([("target", 4.0)] * 30 + [("nontarget", -4.0)] * 30 + [("spoof", 1.0)] * 30)))
    out = setup["root"] / "cli"
    code = nes2net(["evaluate", str(setup["model"]), str(setup["dataset"]), "--split", "eval", "--protocol", "full",
                    "--output-dir", str(out), "--where", "codec=none", "--score-format", "cm", "--asv-scores",
                    str(asv), "--batch-size", "4", "--num-workers", "0"])
    assert code == 0
    result = json.loads((out / "results.json").read_text())
    assert result["n_trials"] == 8 and result["dataset"]["split"] == "eval"
    cm_lines = (out / "scores.txt").read_text().splitlines()
    assert len(cm_lines) == 8 and len(cm_lines[0].split()) == 2
    table = read_scores(out / "scores.csv")
    asv_scores = read_asv_scores(asv)
    asv_rates = asv_error_rates(asv_scores["target"], asv_scores["nontarget"], asv_scores["spoof"])
    expected = compute_min_tdcf_2019(*split_by_label(table.scores, table.labels), asv_rates)
    assert result["metrics"]["min_tdcf"] == pytest.approx(expected.cost)


@pytest.mark.slow
def test_two_processes_share_the_trials_and_gather_them_in_order(setup, reference_scores):
    out = setup["root"] / "two-processes"
    result = run_command(["evaluate", str(setup["model"]), str(setup["dataset"]), "--split", "eval", "--protocol",
                          "full", "--output-dir", str(out), "--batch-size", "2", "--num-workers", "0"],
                         subprocess_env(setup["root"] / "hf-cache-2"), processes=2)
    assert result.returncode == 0, result.stderr[-4000:]
    shards = [{int(line.split("\t")[0]) for line in (out / PARTS_DIR / f"part-{rank:05d}.tsv").read_text().splitlines()}
              for rank in (0, 1)]
    assert shards[0] and shards[1] and not shards[0] & shards[1] and shards[0] | shards[1] == set(range(12))
    table = read_scores(out / "scores.csv")
    assert table.utt_ids == list(reference_scores)
    np.testing.assert_allclose(table.scores, list(reference_scores.values()), atol=1e-4)


def test_calibrate_fits_the_log_odds_and_writes_a_calibrated_model(setup):
    """A random model ranks the trials either way: the one that ranks bona fide higher is calibrated, its mirror
    image (classifier negated) is refused."""
    model = Nes2NetForAudioClassification.from_pretrained(setup["model"])
    probe = evaluate_model(model, str(setup["dataset"]), setup["root"] / "probe", split="eval", protocol="full",
                           batch_size=4, num_workers=0, progress=False, score="log_odds",
                           accelerator=setup["accelerator"])
    probe_scores = read_scores(setup["root"] / "probe" / "scores.csv")
    reversed_ranking = np.corrcoef(probe_scores.scores, probe_scores.labels)[0, 1] < 0
    mirrored = Nes2NetForAudioClassification.from_pretrained(setup["model"])
    with torch.no_grad():
        (model if reversed_ranking else mirrored).classifier.weight.neg_()
        (model if reversed_ranking else mirrored).classifier.bias.neg_()
    ranked_dir = save_model_folder(model, setup["root"] / "ranked-model")
    with pytest.raises(ValueError, match="rank spoof above bona fide"):
        evaluate_model(mirrored, str(setup["dataset"]), setup["root"] / "mirrored", split="eval", protocol="full",
                       batch_size=4, num_workers=0, progress=False, score="log_odds", calibrate=True,
                       accelerator=setup["accelerator"])

    output = setup["root"] / "calibrate"
    code = nes2net(["evaluate", str(ranked_dir), str(setup["dataset"]), "--split", "eval", "--protocol", "full",
                    "--output-dir", str(output), "--num-workers", "0", "--batch-size", "4", "--calibrate"])
    assert code == 0
    raw = read_scores(output / "scores.csv")
    assert load_result(output / "results.json").score == "log_odds"
    (weight,), offset = fit_llr_fusion(raw.scores[:, None], raw.labels)
    calibrated = Nes2NetForAudioClassification.from_pretrained(output / "calibrated-model")
    assert calibrated.config.calibration_scale == pytest.approx(weight, rel=1e-6)
    assert calibrated.config.calibration_offset == pytest.approx(offset, rel=1e-6)
    rescored = evaluate_model(calibrated, str(setup["dataset"]), setup["root"] / "rescored", split="eval",
                              protocol="full", batch_size=4, num_workers=0, progress=False, score="log_odds",
                              accelerator=setup["accelerator"])
    np.testing.assert_allclose(read_scores(setup["root"] / "rescored" / "scores.csv").scores,
                               weight * raw.scores + offset, rtol=1e-4, atol=1e-4)
    # Logistic regression minimises the prior-weighted log-loss, which CLLR measures: it cannot get worse.
    assert rescored["metrics"]["cllr"] <= load_result(output / "results.json").metrics["cllr"] + 1e-9
