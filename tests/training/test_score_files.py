"""Tests of training.score_files: the ASVspoof score-file formats, atomic writes and the protocol join."""

import logging
import os

import numpy as np
import pytest

from training.metrics import compute_eer
from modeling_nes2net.atomic import atomic_output
from training.score_files import (
    ScoreTable,
    join_with_protocol,
    read_protocol,
    read_scores,
    utterance_key,
    write_scores,
)


@pytest.fixture
def table() -> ScoreTable:
    rng = np.random.default_rng(0)
    return ScoreTable(
        utt_ids=["LA_E_1", "LA_E_2", "LA_E_3", "LA_E_4"],
        scores=np.r_[rng.normal(size=3), 1e-17],  # full-precision doubles must survive the text round trip
        labels=[1, 0, 0, 1],
        metadata={"attack": ["-", "A07", "A19", "-"], "codec": ["alaw", "none", "opus", "none"]},
    )


def test_cm_file_is_one_id_and_score_per_line(tmp_path, table):
    path = write_scores(tmp_path / "scores.txt", table)
    lines = path.read_text().splitlines()
    assert lines[0] == f"LA_E_1 {float(table.scores[0])!r}"
    assert len(lines) == 4
    loaded = read_scores(path)
    assert loaded.utt_ids == table.utt_ids
    np.testing.assert_array_equal(loaded.scores, table.scores)
    assert loaded.labels is None


def test_cm_keyed_file_has_attack_key_score(tmp_path, table):
    path = write_scores(tmp_path / "cm_scores.txt", table, fmt="cm-keyed")
    assert path.read_text().splitlines()[1] == f"LA_E_2 A07 spoof {float(table.scores[1])!r}"
    loaded = read_scores(path)
    np.testing.assert_array_equal(loaded.scores, table.scores)
    np.testing.assert_array_equal(loaded.labels, table.labels)
    assert loaded.metadata == {"attack": table.metadata["attack"]}


@pytest.mark.parametrize(("fmt", "fields"), [("cm", 2), ("arena", 2), ("cm-keyed", 4), ("asvspoof5", 2)])
def test_any_id_keeps_its_fields_and_survives_the_round_trip(tmp_path, fmt, fields):
    """Ids with spaces, tabs, line breaks and `%` are percent-escaped on writing and unescaped on reading."""
    ids = ["two words", "tab\there", "line\nbreak", "100%", "%41", "plain"]
    table = ScoreTable(ids, np.arange(6) / 4, labels=[1, 0, 1, 0, 1, 0],
                       metadata={"attack": ["-", "A 07", "-", "A%", "-", "x\ty"]})
    path = write_scores(tmp_path / "scores.txt", table, fmt=fmt)
    lines = path.read_text(encoding="utf-8").splitlines()[1 if fmt == "asvspoof5" else 0:]
    assert len(lines) == len(ids) and all(len(line.split()) == fields for line in lines)
    assert lines[0].split()[0] == "two%20words" and lines[3].split()[0] == "100%25"
    loaded = read_scores(path, fmt)
    assert loaded.utt_ids == ids
    np.testing.assert_array_equal(loaded.scores, table.scores)
    if fmt == "cm-keyed":
        assert loaded.metadata == {"attack": table.metadata["attack"]}


def test_asvspoof5_file_is_tab_separated_with_header(tmp_path, table):
    path = write_scores(tmp_path / "scores.tsv", table)
    lines = path.read_text().splitlines()
    assert lines[0] == "filename\tcm-score"
    assert lines[4] == f"LA_E_4\t{float(table.scores[3])!r}"
    loaded = read_scores(path)
    assert loaded.utt_ids == table.utt_ids
    np.testing.assert_array_equal(loaded.scores, table.scores)


def test_csv_round_trip_keeps_labels_and_metadata(tmp_path, table):
    path = write_scores(tmp_path / "scores.csv", table)
    assert path.read_text().splitlines()[0] == "utt_id,score,label,attack,codec"
    loaded = read_scores(path)
    assert loaded.utt_ids == table.utt_ids
    np.testing.assert_array_equal(loaded.scores, table.scores)
    np.testing.assert_array_equal(loaded.labels, table.labels)
    assert loaded.metadata == table.metadata


def test_bad_tables_and_files_raise(tmp_path, table):
    with pytest.raises(ValueError, match="1 utterance ids occur more than once: a"):
        ScoreTable(["a", "b", "a"], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="2 utterance ids but 3 values in 'scores'"):
        ScoreTable(["a", "b"], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="needs labels"):
        write_scores(tmp_path / "x.txt", ScoreTable(["a"], [0.0]), fmt="cm-keyed")
    with pytest.raises(ValueError, match="needs non-empty utterance ids"):
        write_scores(tmp_path / "x.txt", ScoreTable([""], [0.0]))
    bad = tmp_path / "bad.txt"
    bad.write_text("LA_E_1 0.5\nLA_E_2 high\n")
    with pytest.raises(ValueError, match="not a number"):
        read_scores(bad)
    bad.write_text("LA_E_1 0.5\nLA_E_2 0.1 extra\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected 2 fields, got 3"):
        read_scores(bad)


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, table):
    path = write_scores(tmp_path / "scores.txt", table)
    before = path.read_text()
    with pytest.raises(RuntimeError):
        with atomic_output(path) as temporary:
            temporary.write_text("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["scores.txt"]


def test_join_orders_by_protocol_and_takes_its_labels(table):
    protocol = {
        "speaker": ["LA_0001", "LA_0002", "LA_0003", "LA_0004"],
        "utt_id": ["LA_E_4", "LA_E_3", "LA_E_2", "LA_E_1"],
        "attack": ["-", "A19", "A07", "-"],
        "label": ["bonafide", "spoof", "spoof", "bonafide"],
    }
    unlabelled = ScoreTable(table.utt_ids, table.scores)
    joined = join_with_protocol(unlabelled, protocol)
    assert joined.missing_ids == joined.extra_ids == []
    assert joined.table.utt_ids == ["LA_E_4", "LA_E_3", "LA_E_2", "LA_E_1"]
    np.testing.assert_array_equal(joined.table.scores, table.scores[::-1])
    np.testing.assert_array_equal(joined.table.labels, [1, 0, 0, 1])
    assert joined.table.metadata["speaker"] == ["LA_0001", "LA_0002", "LA_0003", "LA_0004"]


def test_join_reports_missing_and_extra_ids(table, caplog):
    protocol = {"utt_id": ["LA_E_1", "LA_E_2", "LA_E_9"], "label": ["bonafide", "spoof", "spoof"]}
    with pytest.raises(
        ValueError,
        match=r"1 of 3 protocol trials have no score \(LA_E_9\); 2 of 4 scored trials are not in the protocol "
        r"\(LA_E_3, LA_E_4\)",
    ):
        join_with_protocol(table, protocol)
    with caplog.at_level(logging.WARNING, logger="training.score_files"):
        joined = join_with_protocol(table, protocol, strict=False)
    assert (joined.missing_ids, joined.extra_ids) == (["LA_E_9"], ["LA_E_3", "LA_E_4"])
    assert joined.table.utt_ids == ["LA_E_1", "LA_E_2"]
    assert "have no score" in caplog.text and "not in the protocol" in caplog.text


def test_utterance_key_drops_folders_and_audio_suffixes():
    assert utterance_key("audio/test/bonafide/LJ001-0015.flac") == "LJ001-0015"
    assert utterance_key("0.wav") == "0"
    assert utterance_key("LA_E_2834763") == "LA_E_2834763"
    assert utterance_key("T_0000000000.5") == "T_0000000000.5"


def test_read_2021_df_keys_with_trailing_fields(tmp_path):
    keys = tmp_path / "trial_metadata.txt"
    keys.write_text(
        "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -\n"
        "LA_0031 DF_E_2000013 low_mp3 vcc2018 bonafide bonafide notrim eval - - - - -\n"
    )
    names = ["speaker", "utt_id", "codec", "source", "attack", "label", "trim", "subset", "vocoder"]
    protocol = read_protocol(keys, names)
    assert protocol["utt_id"] == ["DF_E_2000011", "DF_E_2000013"]
    assert protocol["vocoder"] == ["traditional_vocoder", "-"]
    too_many = [*names, *(f"field_{i}" for i in range(5))]
    with pytest.raises(ValueError, match="trial_metadata.txt:1: expected 14 fields"):
        read_protocol(keys, too_many)


def test_scores_joined_with_real_metadata_csv(tmp_path, mini_antispoof):
    protocol = read_protocol(mini_antispoof / "metadata.csv")
    rng = np.random.default_rng(1)
    is_bonafide = np.array(protocol["label"]) == "bonafide"
    scores = np.where(is_bonafide, rng.normal(2, 1, is_bonafide.size), rng.normal(-2, 1, is_bonafide.size))
    utt_ids = [utterance_key(name) for name in protocol["file_name"]]
    write_scores(tmp_path / "scores.txt", ScoreTable(utt_ids[::-1], scores[::-1]))

    joined = join_with_protocol(read_scores(tmp_path / "scores.txt"), read_protocol(mini_antispoof / "metadata.csv"),
                                id_column="file_name")
    assert len(joined.table) == len(protocol["file_name"]) > 400
    np.testing.assert_array_equal(joined.table.scores, scores)
    np.testing.assert_array_equal(joined.table.labels, is_bonafide.astype(int))
    assert set(joined.table.metadata["split"]) == {"train", "test"}
    labels = joined.table.labels
    assert compute_eer(scores[labels == 1], scores[labels == 0]).eer < 0.1
