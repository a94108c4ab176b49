"""`nes2net fuse` on constructed score files whose systems are complementary: each sees one attack the other
misses, so the fusion must lower CLLR and minCLLR below both."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nes2net.cli import main as nes2net
from training.fusion import fuse_score_files
from training.metrics import compute_cllr, split_by_label
from training.score_files import ScoreTable, read_scores, write_scores


def complementary_systems(seed: int, n: int = 200) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Bona fide scores ~ N(2, 1) in both systems; attack A1 spoofs ~ N(-2, 1) in system a but ~ N(2, 1) (missed)
    in system b, attack A2 the reverse."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([1, 0, 0], n)
    attack = np.repeat(["-", "A1", "A2"], n)
    a = np.where((attack == "A1"), rng.normal(-2, 1, 3 * n), rng.normal(2, 1, 3 * n))
    b = np.where((attack == "A2"), rng.normal(-2, 1, 3 * n), rng.normal(2, 1, 3 * n))
    return [f"utt{seed}_{index}" for index in range(3 * n)], labels, a, b


def write_pair(folder, seed: int):
    utt_ids, labels, a, b = complementary_systems(seed)
    paths = [folder / f"a{seed}.csv", folder / f"b{seed}.txt"]
    write_scores(paths[0], ScoreTable(utt_ids, a, labels))
    shuffled = np.random.default_rng(99).permutation(len(utt_ids))  # the second file lists trials in another order
    write_scores(paths[1], ScoreTable([utt_ids[i] for i in shuffled], b[shuffled]), fmt="cm")
    return paths, labels, a, b


def test_fusion_of_complementary_systems_lowers_cllr(tmp_path):
    paths, labels, a, b = write_pair(tmp_path, seed=0)
    report = fuse_score_files(paths, tmp_path / "fused.csv")
    fused = read_scores(tmp_path / "fused.csv")
    assert fused.utt_ids == read_scores(paths[0]).utt_ids
    np.testing.assert_array_equal(fused.labels, labels)
    best_single = min(compute_cllr(*split_by_label(a, labels)), compute_cllr(*split_by_label(b, labels)))
    assert report["fused"]["cllr"] == pytest.approx(compute_cllr(*split_by_label(fused.scores, labels)))
    assert report["fused"]["cllr"] < 0.5 * best_single
    assert report["fused"]["min_cllr"] < min(system["min_cllr"] for system in report["systems"])
    assert report["fused"]["eer"] < min(system["eer"] for system in report["systems"])
    assert all(system["weight"] > 0 for system in report["systems"])  # both systems contribute
    assert json.loads((tmp_path / "fusion.json").read_text()) == report


def test_weights_fitted_on_dev_generalise_to_eval(tmp_path, capsys):
    dev, _, _, _ = write_pair(tmp_path, seed=1)
    evaluation, labels, a, b = write_pair(tmp_path, seed=2)
    code = nes2net(["fuse", *map(str, evaluation), "--dev", *map(str, dev), "--output", str(tmp_path / "f.csv")])
    assert code == 0
    report = json.loads((tmp_path / "fusion.json").read_text())
    assert report["fitted_on"] == list(map(str, dev))
    assert report["fused"]["cllr"] < min(system["cllr"] for system in report["systems"])
    assert "minCLLR" in capsys.readouterr().out


def test_labels_from_a_protocol_and_missing_trials_named(tmp_path, capsys):
    utt_ids, labels, a, b = complementary_systems(3, n=20)
    write_scores(tmp_path / "a.txt", ScoreTable(utt_ids, a), fmt="cm")
    write_scores(tmp_path / "b.txt", ScoreTable(utt_ids[:-1], b[:-1]), fmt="cm")
    (tmp_path / "keys.csv").write_text("utt_id,label\n" + "".join(
        f"{u},{'bonafide' if l else 'spoof'}\n" for u, l in zip(utt_ids, labels)))
    code = nes2net(["fuse", str(tmp_path / "a.txt"), str(tmp_path / "b.txt"), "--protocol",
                    str(tmp_path / "keys.csv"), "--output", str(tmp_path / "f.csv")])
    assert code == 2
    assert f"b.txt: 1 of 60 trials have no score (e.g. {utt_ids[-1]})" in capsys.readouterr().err
    write_scores(tmp_path / "b.txt", ScoreTable(utt_ids, b), fmt="cm")
    assert nes2net(["fuse", str(tmp_path / "a.txt"), str(tmp_path / "b.txt"), "--protocol",
                    str(tmp_path / "keys.csv"), "--output", str(tmp_path / "f.csv")]) == 0
    assert nes2net(["fuse", str(tmp_path / "a.txt"), str(tmp_path / "b.txt"), "--output",
                    str(tmp_path / "g.csv")]) == 2
    assert "has no labels" in capsys.readouterr().err
