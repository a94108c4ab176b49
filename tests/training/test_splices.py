"""The splices builder: word-like boundaries, exact segment labels, the PartialSpoof layout, held-out sources."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile

from training.data import build_dataset, load_built_dataset
from training.data.splices import (
    FRAME_SAMPLES,
    RESOLUTIONS_MS,
    SpliceOptions,
    make_paired_splice,
    make_splice,
    segment_labels,
    word_boundaries,
    write_splice_corpus,
)

RATE = 16000


def bursts(pattern: list[tuple[float, float]], seed: int = 0) -> np.ndarray:
    """Speech-like test signal: (seconds, amplitude) stretches of noise-modulated 220 Hz tone, 0 = silence."""
    rng = np.random.default_rng(seed)
    parts = []
    for seconds, amplitude in pattern:
        samples = round(seconds * RATE)
        tone = np.sin(2 * np.pi * 220 * np.arange(samples) / RATE) * (1 + 0.1 * rng.standard_normal(samples))
        parts.append((amplitude * tone + 1e-4 * rng.standard_normal(samples)).astype(np.float32))
    return np.concatenate(parts)


def test_word_boundaries_fall_in_the_pauses():
    waveform = bursts([(0.5, 0.3), (0.2, 0.0), (0.6, 0.3), (0.3, 0.0), (0.4, 0.3)])
    boundaries = word_boundaries(waveform) * FRAME_SAMPLES / RATE
    pauses = [(0.5, 0.7), (1.3, 1.6)]
    for start, end in pauses:
        assert any(start <= b < end for b in boundaries), (start, end, boundaries)


def test_segment_labels_mark_a_segment_spoof_when_any_frame_is():
    frames = np.array([1] * 16 + [0] + [1] * 20, np.int8)  # 37 frames of 10 ms; frame 16 spoof
    np.testing.assert_array_equal(segment_labels(frames, 160), [1, 0, 1])
    np.testing.assert_array_equal(segment_labels(frames, 10), frames)
    assert len(segment_labels(frames, 640)) == 1 and segment_labels(frames, 640)[0] == 0


def test_inserted_pieces_leave_the_host_untouched_and_are_labelled_exactly():
    host = bursts([(0.6, 0.2), (0.15, 0.0), (0.7, 0.2), (0.2, 0.0), (0.8, 0.2)])
    spoof = bursts([(2.0, 0.5)], seed=1) * -1
    options = SpliceOptions(substitute_probability=0.0, crossfade_probability=0.0, max_segments=3)
    for seed in range(5):
        splice = make_splice(host, [("tts", spoof)], np.random.default_rng(seed), options)
        frames = splice.waveform.reshape(-1, FRAME_SAMPLES)
        assert len(splice.frame_labels) == len(frames)
        np.testing.assert_array_equal(frames[splice.frame_labels == 1].reshape(-1), host[: len(host) // 160 * 160])
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[1], splice.frame_labels, [1]]))))[::2]
        assert len(runs) == len(splice.generators) >= 1 and runs.min() >= 20  # pieces of at least 0.2 s


def test_crossfades_mix_one_frame_per_joint_and_label_it_spoof():
    host = bursts([(0.8, 0.2), (0.2, 0.0), (0.8, 0.2)])
    spoof = bursts([(2.0, 0.2)], seed=1)
    options = SpliceOptions(substitute_probability=0.0, crossfade_probability=1.0, max_segments=1)
    splice = make_splice(host, [("tts", spoof)], np.random.default_rng(0), options)
    spoof_frames = int((splice.frame_labels == 0).sum())
    host_frames = len(host) // FRAME_SAMPLES
    # each of the two joints overlaps one frame: the output is two frames shorter than host + piece
    assert len(splice.frame_labels) == host_frames + spoof_frames - 2
    assert int((splice.frame_labels == 1).sum()) == host_frames - 2


def _mini_corpus(root: Path, mini_antispoof: Path) -> Path:
    """A generic-layout corpus of 3 s crops of real clips, with an `unseen_in_train` column."""
    rows = list(csv.DictReader(open(mini_antispoof / "metadata.csv", encoding="utf-8")))
    picked = []
    counts = (("train", "bonafide", 2), ("train", "spoof", 2), ("test", "bonafide", 2), ("test", "spoof", 3))
    for split, label, count in counts:
        picked += [row for row in rows if row["split"] == split and row["label"] == label][:count]
    table = []
    for index, row in enumerate(picked):
        audio, rate = soundfile.read(mini_antispoof / row["file_name"], dtype="float32")
        name = f"clips/{index:02d}.wav"
        (root / "clips").mkdir(parents=True, exist_ok=True)
        soundfile.write(root / name, audio[: 3 * rate], rate)
        held_out = row["split"] == "test" and not (row["label"] == "spoof" and len(table) == len(picked) - 1)
        attack = row["system"] if row["label"] == "spoof" else ""
        table.append({"file_name": name, "label": row["label"], "split": row["split"], "attack": attack,
                      "unseen_in_train": str(held_out).lower()})
    with open(root / "metadata.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    return root


def test_splice_corpus_is_in_the_partialspoof_layout(tmp_path, mini_antispoof):
    source = _mini_corpus(tmp_path / "source", mini_antispoof)
    splits = write_splice_corpus(source, tmp_path / "corpus", SpliceOptions(splices_per_host=1))
    assert splits == ["train", "eval"]
    labels = np.load(tmp_path / "corpus" / "segment_labels" / "eval_seglab_0.16.npy", allow_pickle=True).item()
    protocol = (tmp_path / "corpus/protocols/PartialSpoof_LA_cm_protocols/PartialSpoof.LA.cm.eval.trl.txt").read_text()
    ids = [line.split()[1] for line in protocol.splitlines()]
    assert sorted(labels) == sorted(ids) and all(set(value) <= {"0", "1"} for value in labels.values())
    for utt_id in ids:
        samples = soundfile.info(tmp_path / "corpus" / "eval" / "con_wav" / f"{utt_id}.wav").frames
        assert len(labels[utt_id]) == -(-samples // (16 * FRAME_SAMPLES))


def test_build_splices_keeps_held_out_sources_and_is_deterministic(tmp_path, mini_antispoof):
    source = _mini_corpus(tmp_path / "source", mini_antispoof)
    table = list(csv.DictReader(open(source / "metadata.csv", encoding="utf-8")))
    seen_only = {row["attack"] for row in table if row["split"] == "test" and row["unseen_in_train"] == "false"}
    held_out = {row["attack"] for row in table if row["split"] == "test" and row["unseen_in_train"] == "true"} - {""}
    info = build_dataset("splices", source, tmp_path / "built", progress=False)
    assert info["metadata_columns"] == [f"segment_labels_{r}ms" for r in RESOLUTIONS_MS]
    assert list(info["splits"]) == ["train", "eval"]
    eval_rows = load_built_dataset(tmp_path / "built", "eval")
    attacks = {part for attack in eval_rows["attack"] if attack != "bonafide" for part in attack.split("+")}
    assert attacks and attacks <= held_out and not attacks & (seen_only - held_out)
    for row in eval_rows:
        frames = np.asarray(row["segment_labels_10ms"])
        assert (row["label"] == 1) == bool(frames.min() == 1)
        np.testing.assert_array_equal(row["segment_labels_160ms"], segment_labels(frames, 160))
    build_dataset("splices", source, tmp_path / "again", progress=False)
    first = sorted((tmp_path / "built" / "data").iterdir())
    again = sorted((tmp_path / "again" / "data").iterdir())
    assert [path.read_bytes() for path in first] == [path.read_bytes() for path in again]


def test_data_cli_builds_splices(tmp_path, mini_antispoof):
    from training.data.cli import add_arguments, run
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    source = _mini_corpus(tmp_path / "source", mini_antispoof)
    args = parser.parse_args(["build", "splices", str(source), str(tmp_path / "out"), "--no-progress"])
    assert run(args) == 0
    assert (tmp_path / "out" / "data").is_dir() and "splices" in (tmp_path / "out" / "build_info.json").read_text()


def test_a_paired_splice_replaces_stretches_of_the_host_by_the_same_stretches_of_its_copy():
    host = bursts([(0.6, 0.2), (0.15, 0.0), (0.7, 0.2), (0.2, 0.0), (0.8, 0.2), (0.1, 0.0), (0.5, 0.2)])
    copy = -0.5 * host  # a "copy-synthesis": same length, every sample told apart from the host's
    options = SpliceOptions(crossfade_probability=0.0, max_segments=3, max_segment_seconds=0.8)
    for seed in range(5):
        splice = make_paired_splice(host, ("world", copy), np.random.default_rng(seed), options)
        frames = len(host) // FRAME_SAMPLES
        assert len(splice.waveform) == frames * FRAME_SAMPLES and len(splice.frame_labels) == frames
        spoofed = np.repeat(splice.frame_labels == 0, FRAME_SAMPLES)
        np.testing.assert_array_equal(splice.waveform[~spoofed], host[: frames * FRAME_SAMPLES][~spoofed])
        np.testing.assert_array_equal(splice.waveform[spoofed], copy[: frames * FRAME_SAMPLES][spoofed])
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[1], splice.frame_labels, [1]]))))[::2]
        assert 1 <= len(runs) <= 3 and runs.min() >= 20 and runs.max() <= 80 and splice.generators == ("world",)
        assert splice.frame_labels[:2].all() and splice.frame_labels[-2:].all()  # the host's own start and end
    with pytest.raises(ValueError, match="not a paired copy"):
        make_paired_splice(host, ("world", copy[:-160]), np.random.default_rng(0), options)


def write_vocoded_source(folder: Path, copies: list) -> None:
    """A generic-layout corpus in `folder` as `nes2net data build vocoded` writes one: for each `copy` function, a
    bona fide host clip and `copy(host)` as its WORLD copy, sharing a `pair_id`, all in the train split."""
    rows = []
    for index, copy in enumerate(copies):
        host = bursts([(0.6, 0.2), (0.15, 0.0), (0.7, 0.2), (0.2, 0.0), (0.8, 0.2)], seed=index)
        for label, system, waveform in (("bonafide", "genuine", host), ("spoof", "world", copy(host))):
            name = f"audio/train/{label}/{index}.flac"
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(folder / name, waveform, RATE, subtype="PCM_16")
            rows.append({"file_name": name, "label": label, "split": "train", "system": system,
                         "pair_id": f"clip{index}"})
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_a_vocoded_corpus_gets_paired_splices_of_each_hosts_own_copies(tmp_path):
    write_vocoded_source(tmp_path / "vocoded", [lambda host: -0.5 * host] * 3)
    write_splice_corpus(tmp_path / "vocoded", tmp_path / "corpus", SpliceOptions(crossfade_probability=0.0))
    labels = np.load(tmp_path / "corpus" / "segment_labels" / "train_seglab_0.01.npy", allow_pickle=True).item()
    for index in range(3):
        host = soundfile.read(tmp_path / "vocoded" / f"audio/train/bonafide/{index}.flac", dtype="float32")[0]
        for version in (1, 2):
            utt_id = f"SPL_T_{index:05d}_{version}"
            spliced = soundfile.read(tmp_path / "corpus" / "train" / "con_wav" / f"{utt_id}.wav", dtype="float32")[0]
            spoofed = np.repeat(labels[utt_id].astype(int) == 0, FRAME_SAMPLES)
            assert len(spliced) == len(spoofed) == len(host) // FRAME_SAMPLES * FRAME_SAMPLES and spoofed.any()
            np.testing.assert_allclose(spliced[~spoofed], host[: len(spliced)][~spoofed], atol=1e-4)
            np.testing.assert_allclose(spliced[spoofed], -0.5 * host[: len(spliced)][spoofed], atol=1e-4)


def test_a_paired_splice_that_sounds_like_its_host_is_not_written(tmp_path):
    """A copy equal to its host where it goes in (a vocoder's digital silence, say) would make a "spoof" that is the
    genuine clip again, the same audio under two labels: that host keeps its original alone."""
    write_vocoded_source(tmp_path / "vocoded", [lambda host: host, lambda host: -0.5 * host])
    write_splice_corpus(tmp_path / "vocoded", tmp_path / "corpus", SpliceOptions(crossfade_probability=0.0))
    written = sorted(path.stem for path in (tmp_path / "corpus" / "train" / "con_wav").iterdir())
    assert written == ["SPL_T_00000_0", "SPL_T_00001_0", "SPL_T_00001_1", "SPL_T_00001_2"]
