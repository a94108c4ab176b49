"""Hostile and careless corpus folders through `nes2net data check|build`: each refused with one line naming the file
(and line), nothing executed, nothing read from outside the corpus, nothing written."""

from __future__ import annotations

import logging
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from nes2net.cli import main
from tests.hostile.make_corpus import speech_like, wav_bytes
from tests.training.corpus_layouts import make_partialspoof
from tests.training.train_helpers import PicklePayload
from training.data import load_built_dataset, read_build_info
from training.data.partialspoof import read_segment_labels
from training.data.synthetic import write_synthetic_audio


@pytest.fixture
def corpus(tmp_path):
    """ROOT with a.flac and b.flac; `write_table(text)` writes ROOT/metadata.csv (bytes or UTF-8 text)."""
    root = tmp_path / "corpus"
    for index, name in enumerate(("a.flac", "b.flac")):
        write_synthetic_audio(root / name, 0.2, seed=index)

    def write_table(content: str | bytes, name: str = "metadata.csv") -> Path:
        path = root / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    return root, write_table


def data_command(caplog, *args: str) -> tuple[int, list[str]]:
    """Run `nes2net data ARGS`; returns the exit code and the lines it logged at WARNING or above."""
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        code = main(["data", *args])
    return code, [line for record in caplog.records for line in record.getMessage().splitlines()]


def assert_refused(caplog, root: Path, expected_line: str, tmp_path: Path) -> None:
    """`check` and `build` both fail with `expected_line` in their report, and `build` writes nothing."""
    code, lines = data_command(caplog, "check", "generic", str(root))
    assert code == 1 and expected_line in [line.strip() for line in lines], lines
    out = tmp_path / "out"
    code, lines = data_command(caplog, "build", "generic", str(root), str(out), "--no-progress")
    assert code == 1 and expected_line in [line.strip() for line in lines], lines
    assert not out.exists() and not list(tmp_path.glob(f".{out.name}.*"))  # no staging folder left behind either


def test_a_table_saved_with_a_utf8_byte_order_mark_builds(corpus, tmp_path, caplog):
    root, write_table = corpus
    write_table(b"\xef\xbb\xbfpath,label\na.flac,bonafide\nb.flac,spoof\n")
    code, lines = data_command(caplog, "build", "generic", str(root), str(tmp_path / "out"), "--no-progress")
    assert code == 0, lines
    train = load_built_dataset(tmp_path / "out", "train", cache_dir=str(tmp_path / "cache"))
    assert dict(zip(train["utt_id"], train["label"], strict=True)) == {"a": 1, "b": 0}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("path;label\na.flac;bonafide\nb.flac;spoof\n",  # saved with another delimiter
         "malformed: {table}:1: header ['path;label'] has no path column (path|file_name|file|audio) and no label "
         "column; its fields look ';'-separated, but a .csv table is read ','-separated"),
        ("path,speaker\na.flac,x\nb.flac,y\n", "malformed: {table}:1: header ['path', 'speaker'] has no label column"),
        ("path,label,speaker\na.flac,bonafide,Ana\nb.flac,spoof,José\n".encode("latin-1"),
         "malformed: {table}:3: not UTF-8 text (byte 0xe9): save it as UTF-8"),
        ("path,label,utt_id\na.flac,bonafide,u1\nb.flac,spoof,u1\n",
         "duplicate: {table}:3: u1 already listed on line 2"),
    ],
    ids=["delimiter", "no-label-column", "latin-1", "duplicate-id"],
)
def test_a_bad_table_is_refused_in_one_line_naming_it(corpus, tmp_path, caplog, content, problem):
    root, write_table = corpus
    table = write_table(content)
    assert_refused(caplog, root, problem.format(table=table), tmp_path)


def test_an_unreadable_audio_file_is_named_with_libsndfiles_reason(corpus, tmp_path, caplog):
    root, write_table = corpus
    (root / "c.flac").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    write_table("path,label\na.flac,bonafide\nb.flac,spoof\nc.flac,spoof\n")
    code, lines = data_command(caplog, "build", "generic", str(root), str(tmp_path / "out"), "--no-progress")
    assert code == 1 and f"unreadable: {root / 'c.flac'}: not a readable audio file (Format not recognised)" in [
        line.strip() for line in lines
    ], lines
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------- what the audio itself gets wrong


@pytest.mark.parametrize("copy", [False, True], ids=["same-file", "copy"])
@pytest.mark.parametrize(
    ("listing", "problem"),
    [
        ("bonafide,test", "leak: {path}: the same audio is in test and in train{where}: a clip shared between splits "
                          "inflates held-out results"),
        ("spoof,train", "conflicting-label: {path}: the same audio is labelled spoof as c in train and bonafide as a "
                        "in train{where}"),
    ],
    ids=["leak", "both-labels"],
)
def test_a_clip_in_two_splits_or_with_both_labels_is_refused_naming_both(corpus, tmp_path, caplog, copy, listing,
                                                                           problem):
    root, write_table = corpus
    listed = "copy.flac" if copy else "a.flac"
    if copy:
        shutil.copyfile(root / "a.flac", root / "copy.flac")
    write_table(f"path,label,split,utt_id\na.flac,bonafide,train,a\nb.flac,spoof,train,b\n{listed},{listing},c\n")
    where = f" ({root / 'a.flac'})" if copy else ""
    assert_refused(caplog, root, problem.format(path=root / listed, where=where), tmp_path)


def _nan_float_wav() -> bytes:
    waveform = speech_like(1.0)
    waveform[4000:4100] = np.nan
    return wav_bytes(waveform, subtype="FLOAT")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (_nan_float_wav, "contains NaN or infinite samples"),
        (lambda: wav_bytes(speech_like(1.0))[:8_044],
         "truncated: the header promises 1.00 s, the file holds 0.25 s (an incomplete copy or download?)"),
        (lambda: wav_bytes(np.zeros((16_000, 1), np.float32)), "no sample is non-zero (digital silence)"),
    ],
    ids=["nan", "truncated", "all-zero"],
)
def test_a_damaged_wav_fails_the_build_naming_it(corpus, tmp_path, caplog, content, problem):
    root, write_table = corpus
    (root / "c.wav").write_bytes(content())
    write_table("path,label\na.flac,bonafide\nb.flac,spoof\nc.wav,spoof\n")
    assert_refused(caplog, root, f"damaged: {root / 'c.wav'}: {problem}", tmp_path)


def test_a_root_that_is_a_file_is_not_reported_missing(corpus, caplog):
    root, write_table = corpus
    table = write_table("path,label\na.flac,bonafide\n")
    code, lines = data_command(caplog, "check", "generic", str(table))
    assert code == 1 and lines == [f"generic: {table} is a file; ROOT is the corpus folder"]


@pytest.fixture
def outside(tmp_path):
    """An audio file outside the corpus folder, that an attacker wants packed into the shards."""
    path = tmp_path / "private" / "secret.flac"
    write_synthetic_audio(path, 0.2, seed=7)
    return path


@pytest.mark.parametrize("how", ["dot-dot", "absolute", "symlink"])
def test_a_table_path_leading_outside_the_root_is_refused_unless_allowed(corpus, outside, tmp_path, caplog, how):
    root, write_table = corpus
    if how == "symlink":
        (root / "inside.flac").symlink_to(outside)
    listed = {"dot-dot": "../private/secret.flac", "absolute": str(outside), "symlink": "inside.flac"}[how]
    table = write_table(f"path,label\na.flac,bonafide\n{listed},spoof\n")
    expected = (f"outside-root: {table}:3: {listed!r} leads outside the corpus root, to {outside}: pass "
                "--allow-outside-root to read it")
    assert_refused(caplog, root, expected, tmp_path)

    out = tmp_path / "allowed"
    code, lines = data_command(caplog, "build", "generic", str(root), str(out), "--no-progress", "--allow-outside-root")
    assert code == 0, lines
    assert read_build_info(out)["splits"]["train"]["num_rows"] == 2
    assert "--allow-outside-root" in read_build_info(out)["build_command"]


def test_a_symlink_in_a_label_folder_leading_outside_the_root_is_refused(tmp_path, outside, caplog):
    root = tmp_path / "folders"
    write_synthetic_audio(root / "bonafide" / "a.flac", 0.2, seed=1)
    (root / "spoof").mkdir()
    (root / "spoof" / "b.flac").symlink_to(outside)
    expected = (f"outside-root: {root / 'spoof' / 'b.flac'}: leads outside the corpus root, to {outside}: pass "
                "--allow-outside-root to read it")
    assert_refused(caplog, root, expected, tmp_path)


def test_the_outside_root_flag_belongs_to_the_generic_builder(tmp_path, caplog):
    make_partialspoof(tmp_path / "database")
    code, lines = data_command(caplog, "check", "partialspoof", str(tmp_path / "database"), "--allow-outside-root")
    assert code == 1 and lines == ["--allow-outside-root only applies to the generic builder, not partialspoof"]


# ----------------------------------------------------------------------------------------------- PartialSpoof labels


def test_a_pickle_payload_in_partialspoof_segment_labels_runs_nothing(tmp_path, caplog):
    root = tmp_path / "database"
    make_partialspoof(root)
    marker = tmp_path / "payload-ran"
    labels = root / "segment_labels" / "train_seglab_0.01.npy"
    np.save(labels, {"CON_T_0000029": PicklePayload(marker)}, allow_pickle=True)
    for action in (["check", "partialspoof", str(root)], ["build", "partialspoof", str(root), str(tmp_path / "out")]):
        code, lines = data_command(caplog, *action)
        assert code == 1 and not marker.exists()
        assert (f"malformed: {labels}: not a pickled dict of NumPy arrays (refused to load posix.system)"
                in [line.strip() for line in lines]), lines
    assert not (tmp_path / "out").exists()


def test_segment_labels_pickled_by_numpy_1_with_protocol_2_are_read(tmp_path):
    """The corpus' files predate NumPy 2: their pickles name `numpy.core.multiarray`; protocol 2 pickles the bytes of
    each array through `_codecs.encode`."""
    labels = {"CON_T_0000029": np.array(["1", "1", "0"]), "LA_T_1138215": np.array(["1", "1", "1"])}
    path = tmp_path / "train_seglab_0.64.npy"
    array = np.array(labels, dtype=object)
    with open(path, "wb") as file:  # what np.save wrote then: the .npy header, then the pickled array
        np.lib.format.write_array_header_1_0(file, np.lib.format.header_data_from_array_1_0(array))
        pickle.dump(array, file, protocol=2)
    data = path.read_bytes()
    assert b"cnumpy._core.multiarray\n_reconstruct" in data and b"_codecs" in data
    path.write_bytes(data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))
    read = read_segment_labels(path)
    assert read.keys() == labels.keys()
    for utt_id, segments in labels.items():
        np.testing.assert_array_equal(read[utt_id], segments)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (lambda path: np.save(path, np.zeros(3, dtype=np.int8)), "holds a int8 array of shape (3,), not a pickled"),
        (lambda path: np.save(path, ["1", "0"], allow_pickle=True), "holds a <U1 array of shape (2,), not a pickled"),
        (lambda path: np.save(path, np.array(None, dtype=object), allow_pickle=True), "holds a NoneType, not a dict"),
        (lambda path: path.write_bytes(pickle.dumps({"a": [1]})), "not a NumPy .npy file"),
    ],
)
def test_segment_label_files_of_another_shape_say_what_they_hold(tmp_path, content, reason):
    path = tmp_path / "dev_seglab_0.64.npy"
    content(path)
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        read_segment_labels(path)
