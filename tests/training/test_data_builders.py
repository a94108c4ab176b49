"""Every corpus builder on a miniature copy of the corpus in its owners' exact layout, with synthetic audio."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from hub_cards.push import plan_upload
from modeling_nes2net.audio import AUDIO_EXTENSIONS
from tests.training.corpus_layouts import SECONDS, make_partialspoof, write_protocol_corpus
from training.data import (
    CorpusLayoutError,
    build_dataset,
    load_built_dataset,
    read_build_info,
    scan_corpus,
    stream_corpus,
)
from training.data.synthetic import write_synthetic_audio


def build(corpus: str, root: Path, tmp_path: Path, **options):
    """Build into tmp_path/out and load every split back (Arrow cache kept inside tmp_path)."""
    out = tmp_path / "out"
    info = build_dataset(corpus, root, out, progress=False, **options)
    return info, load_built_dataset(out, cache_dir=str(tmp_path / "cache"))


def decoded(row) -> np.ndarray:
    return row["audio"].get_all_samples().data[0].numpy()


def rows_by_id(split) -> dict[str, dict]:
    return {row["utt_id"]: row for row in split}


ASVSPOOF2019 = {
    "train": (
        "trn",
        ["LA_0079 LA_T_1138215 - - bonafide", "LA_0079 LA_T_1271820 - A01 spoof", "LA_0080 LA_T_1000001 - A02 spoof"],
    ),
    "dev": ("trl", ["LA_0069 LA_D_1047731 - - bonafide", "LA_0069 LA_D_1105538 - A03 spoof"]),
    "eval": ("trl", ["LA_0039 LA_E_2834763 - A11 spoof", "LA_0040 LA_E_1000002 - - bonafide"]),
}


def make_asvspoof2019(root: Path) -> dict[str, np.ndarray]:
    written = {}
    for split, (kind, lines) in ASVSPOOF2019.items():
        written |= write_protocol_corpus(
            root,
            f"ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{split}.{kind}.txt",
            lines,
            f"ASVspoof2019_LA_{split}/flac",
        )
    return written


def test_asvspoof2019_la_builds_every_split(tmp_path):
    root = tmp_path / "LA"
    written = make_asvspoof2019(root)
    info, dataset = build("asvspoof2019-la", root, tmp_path)
    assert list(dataset) == ["train", "dev", "eval"]
    assert {split: dataset[split].num_rows for split in dataset} == {"train": 3, "dev": 2, "eval": 2}
    assert info["splits"]["train"]["label_counts"] == {"spoof": 2, "bonafide": 1}
    assert info["attacks"] == ["A01", "A02", "A03", "A11"]
    train = rows_by_id(dataset["train"])
    assert train["LA_T_1138215"]["label"] == 1 and train["LA_T_1138215"]["attack"] == "bonafide"
    assert train["LA_T_1271820"]["label"] == 0 and train["LA_T_1271820"]["attack"] == "A01"
    assert train["LA_T_1000001"]["speaker"] == "LA_0080"
    assert dataset["train"].features["label"].names == ["spoof", "bonafide"]
    assert dataset["train"].column_names == ["audio", "label", "utt_id", "speaker", "attack"]
    assert np.allclose(decoded(train["LA_T_1271820"]), written["LA_T_1271820"], atol=1e-6)


ASVSPOOF2021 = {  # track: protocol lines, metadata columns, expected fields of some rows
    "LA": (
        [
            "LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval",
            "LA_0009 LA_E_1000001 none - bonafide bonafide notrim progress",
            "LA_0010 LA_E_1000002 g722 sin_tx A19 spoof trim hidden",
        ],
        ["codec", "transmission", "trim", "subset"],
        {
            "LA_E_9332881": {"label": 0, "speaker": "LA_0009", "attack": "A07", "codec": "alaw",
                             "transmission": "ita_tx", "trim": "notrim", "subset": "eval"},
            "LA_E_1000001": {"attack": "bonafide", "subset": "progress"},
            "LA_E_1000002": {"subset": "hidden"},
        },
    ),
    "DF": (
        [
            "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -",
            "VCC2018 DF_E_2000012 mp3m4a vcc2018 bonafide bonafide notrim eval bonafide - - - -",
            "LA_0024 DF_E_2000013 ogg vcc2020 Task1-team20 spoof trim hidden neural_vocoder_autoregressive - - - -",
        ],
        ["codec", "source", "trim", "subset", "vocoder"],
        {
            "DF_E_2000011": {"source": "asvspoof", "vocoder": "traditional_vocoder"},
            "DF_E_2000012": {"label": 1, "codec": "mp3m4a"},
            "DF_E_2000013": {"attack": "Task1-team20", "subset": "hidden"},
        },
    ),
}


@pytest.mark.parametrize("track", list(ASVSPOOF2021))
def test_asvspoof2021_keeps_the_metadata_columns_of_its_keys(track, tmp_path):
    """The list of trial ids each release ships next to its audio folder is there too: the builder reads the keys."""
    lines, metadata_columns, expected = ASVSPOOF2021[track]
    root = tmp_path / "2021"
    write_protocol_corpus(root, f"keys/{track}/CM/trial_metadata.txt", lines, f"ASVspoof2021_{track}_eval/flac")
    trial_list = root / f"ASVspoof2021_{track}_eval" / f"ASVspoof2021.{track}.cm.eval.trl.txt"
    trial_list.write_text(lines[0].split()[1] + "\n")
    _, dataset = build(f"asvspoof2021-{track.lower()}", root, tmp_path)
    assert dataset["eval"].column_names[5:] == metadata_columns
    rows = rows_by_id(dataset["eval"])
    for utt_id, fields in expected.items():
        assert {name: rows[utt_id][name] for name in fields} == fields


def test_asvspoof5_reads_the_track_1_protocols(tmp_path):
    root = tmp_path / "asvspoof5"
    write_protocol_corpus(
        root,
        "ASVspoof5_protocols/ASVspoof5.train.tsv",
        ["T_4850 T_0000000000 F - - - AC3 A05 spoof -", "T_4851 T_0000000001 M - - - bonafide bonafide bonafide -"],
        "flac_T",
    )
    write_protocol_corpus(
        root,
        "ASVspoof5_protocols/ASVspoof5.dev.track_1.tsv",
        ["D_0062 D_0000000001 F C05 1 3 AC1 A11 spoof -"],
        "flac_D",
    )
    write_protocol_corpus(
        root,
        "ASVspoof5_protocols/ASVspoof5.eval.track_1.tsv",
        ["E_0001 E_0000000001 M C08 8 1 AC2 A17 spoof -", "E_0002 E_0000000002 F C00 - - bonafide bonafide bonafide -"],
        "flac_E_eval",
    )
    info, dataset = build("asvspoof5", root, tmp_path)
    assert {split: dataset[split].num_rows for split in dataset} == {"train": 2, "dev": 1, "eval": 2}
    dev = dataset["dev"][0]
    assert dev["utt_id"] == "D_0000000001" and dev["attack"] == "A11" and dev["label"] == 0
    assert (dev["gender"], dev["codec"], dev["codec_quality"], dev["codec_seed"], dev["attack_tag"]) == (
        "F",
        "C05",
        "1",
        "3",
        "AC1",
    )
    assert info["splits"]["eval"]["label_counts"] == {"spoof": 1, "bonafide": 1}


def test_ctrsvdd_maps_deepfake_to_spoof(tmp_path):
    root = tmp_path / "ctrsvdd"
    splits = {
        "train": [
            "m4singer CtrSVDD_0110 CtrSVDD_0110_D_0015416 - - bonafide",
            "jvsmusic CtrSVDD_0097 CtrSVDD_0097_D_0010993 - A06 deepfake",
        ],
        "dev": ["kising CtrSVDD_0120 CtrSVDD_0120_D_0020000 - A03 deepfake"],
        "test": [
            "acesinger CtrSVDD_0115 CtrSVDD_0115_E_0092590 - - bonafide",
            "opencpop CtrSVDD_0116 CtrSVDD_0116_E_0092591 - A14 deepfake",
        ],
    }
    for split, lines in splits.items():
        write_protocol_corpus(root, f"{split}.txt", lines, f"{split}_set", id_field=2)
    _, dataset = build("ctrsvdd", root, tmp_path)
    rows = rows_by_id(dataset["train"])
    deepfake = rows["CtrSVDD_0097_D_0010993"]
    assert (deepfake["label"], deepfake["attack"], deepfake["speaker"], deepfake["source"]) == (
        0,
        "A06",
        "CtrSVDD_0097",
        "jvsmusic",
    )
    assert rows["CtrSVDD_0110_D_0015416"]["label"] == 1
    assert dataset["test"]["attack"] == ["bonafide", "A14"]


def make_in_the_wild(root: Path) -> dict[str, np.ndarray]:
    root.mkdir(parents=True)
    (root / "meta.csv").write_text(
        'file,speaker,label\n0.wav,Alec Guinness,spoof\n1.wav,"Biden, Joe",bona-fide\n2.wav,Alec Guinness,bona-fide\n'
    )
    return {str(index): write_synthetic_audio(root / f"{index}.wav", SECONDS, seed=index) for index in range(3)}


def test_in_the_wild_reads_meta_csv(tmp_path):
    written = make_in_the_wild(tmp_path / "release_in_the_wild")
    info, dataset = build("in-the-wild", tmp_path / "release_in_the_wild", tmp_path)
    rows = rows_by_id(dataset["test"])
    assert info["splits"]["test"]["label_counts"] == {"spoof": 1, "bonafide": 2}
    assert (rows["0"]["label"], rows["0"]["attack"], rows["0"]["speaker"]) == (0, "unknown", "Alec Guinness")
    assert rows["1"]["speaker"] == "Biden, Joe" and rows["1"]["attack"] == "bonafide"
    assert np.allclose(decoded(rows["1"]), written["1"], atol=1e-6)


def test_partialspoof_has_segment_labels_at_every_resolution(tmp_path):
    root = tmp_path / "database"
    make_partialspoof(root)
    info, dataset = build("partialspoof", root, tmp_path)
    assert info["metadata_columns"] == ["segment_labels_10ms", "segment_labels_640ms"]
    rows = rows_by_id(dataset["train"])
    spoof, bonafide = rows["CON_T_0000029"], rows["LA_T_1138215"]
    assert spoof["label"] == 0 and spoof["attack"] == "CON" and bonafide["attack"] == "bonafide"
    assert spoof["segment_labels_10ms"] == [1] * 19 + [0]
    assert spoof["segment_labels_640ms"] == [0] and bonafide["segment_labels_640ms"] == [1]
    assert dataset["eval"].features["segment_labels_10ms"].feature.dtype == "int8"


def test_partialspoof_reports_a_resolution_missing_from_one_split(tmp_path):
    root = tmp_path / "database"
    make_partialspoof(root)
    (root / "segment_labels" / "dev_seglab_0.64.npy").unlink()
    with pytest.raises(CorpusLayoutError, match=r"dev_seglab_0\.64\.npy: segment labels of this resolution not found"):
        scan_corpus("partialspoof", root)


def test_generic_table_layout_makes_splits_and_typed_metadata(tmp_path):
    root = tmp_path / "generic"
    for index in range(4):
        write_synthetic_audio(root / "clips" / f"c{index}.wav", SECONDS, seed=index)
    (root / "labels.tsv").write_text(
        "path\tlabel\tsplit\tspeaker\tsystem\tduration_s\tage\n"
        "clips/c0.wav\tbonafide\ttrain\tspk1\tvctk\t0.2\t31\n"
        "clips/c1.wav\tfake\ttrain\t\thifigan\t0.2\t\n"
        "clips/c2.wav\treal\ttest\tspk2\tvctk\t0.2\t40\n"
        "clips/c3.wav\tspoof\tvalidation\tspk2\tmelgan\t0.25\t40\n"
    )
    info, dataset = build("generic", root, tmp_path)
    assert list(dataset) == ["train", "validation", "test"]
    assert info["metadata_columns"] == ["system", "duration_s", "age"]
    features = dataset["train"].features
    assert (features["system"].dtype, features["duration_s"].dtype, features["age"].dtype) == (
        "string",
        "float64",
        "int64",
    )
    first, second = dataset["train"]
    assert (first["utt_id"], first["label"], first["speaker"], first["age"]) == ("clips/c0", 1, "spk1", 31)
    assert (second["label"], second["speaker"], second["age"], second["attack"]) == (0, None, None, "unknown")


def test_generic_folder_layout_with_split_folders(tmp_path):
    root = tmp_path / "folders"
    for split, count in (("train", 3), ("test", 2)):
        for index in range(count):
            label = ("bonafide", "spoof")[index % 2]
            name = f"{split}/{label}/{index}.flac"  # one clip per file: a copy in two splits would be refused
            write_synthetic_audio(root / name, SECONDS, seed=zlib.crc32(name.encode()))
    info, dataset = build("generic", root, tmp_path)
    assert {split: dataset[split].num_rows for split in dataset} == {"train": 3, "test": 2}
    assert sorted(zip(dataset["train"]["utt_id"], dataset["train"]["label"], strict=True)) == [
        ("bonafide/0", 1),
        ("bonafide/2", 1),
        ("spoof/1", 0),
    ]
    assert info["splits"]["test"]["label_counts"] == {"spoof": 1, "bonafide": 1}


def test_mini_antispoof_builds_with_its_split_column(mini_antispoof, tmp_path):
    info, dataset = build("generic", mini_antispoof, tmp_path)
    assert {split: dataset[split].num_rows for split in dataset} == {"train": 350, "test": 88}
    assert info["splits"]["train"]["label_counts"] == {"spoof": 207, "bonafide": 143}
    assert info["splits"]["test"]["label_counts"] == {"spoof": 52, "bonafide": 36}
    assert info["splits"]["train"]["source_sampling_rates"] == {"16000": 350}
    assert {"system", "speaker", "duration_s"} <= set(dataset["test"].column_names)
    row = dataset["test"][0]
    assert row["audio"].get_all_samples().data.shape[1] == pytest.approx(row["duration_s"] * 16000, abs=160)
    assert info["license"] is None


def test_built_folder_passes_the_push_checks(tmp_path):
    root = tmp_path / "LA"
    make_asvspoof2019(root)
    info = build_dataset("asvspoof2019-la", root, tmp_path / "out", progress=False, license_id="cc-by-4.0")
    assert info["license"] == "cc-by-4.0" and "license: cc-by-4.0" in (tmp_path / "out" / "README.md").read_text()
    planned = {item.path for item in plan_upload(tmp_path / "out", "dataset")}
    assert planned == {"README.md", "build_info.json"} | {
        f"data/{s}-00000-of-00001.parquet" for s in ("train", "dev", "eval")
    }


def broken_asvspoof2019(root: Path) -> None:
    """A 2019 LA layout with one problem of every kind in train, and no dev protocol."""
    make_asvspoof2019(root)
    protocol = root / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.train.trn.txt"
    protocol.write_text(
        "LA_0079 LA_T_1138215 - - bonafide\n"
        "LA_0079 LA_T_1271820 - spoof\n"
        "LA_0080 LA_T_1000001 - A02 genuine\n"
        "LA_0080 LA_T_9999999 - A02 spoof\n"
        "LA_0079 LA_T_1138215 - - bonafide\n"
    )
    write_synthetic_audio(root / "ASVspoof2019_LA_train" / "flac" / "LA_T_5555555.flac", SECONDS)
    (root / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.dev.trl.txt").unlink()


def test_broken_layout_reports_every_problem_with_its_line_and_writes_nothing(tmp_path):
    root = tmp_path / "LA"
    broken_asvspoof2019(root)
    with pytest.raises(CorpusLayoutError) as raised:
        build_dataset("asvspoof2019-la", root, tmp_path / "out", progress=False)
    reported = [str(problem) for problem in raised.value.problems]
    protocol = root / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.train.trn.txt"
    assert reported == [
        f"malformed: {protocol}:2: expected 5 fields, found 4",
        f"malformed: {protocol}:3: unknown key 'genuine' (expected 'bonafide' or 'spoof')",
        f"missing-audio: {protocol}:4: audio file {root}/ASVspoof2019_LA_train/flac/LA_T_9999999.flac not found",
        f"duplicate: {protocol}:5: LA_T_1138215 already listed on line 1",
        f"missing: {root}/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.dev.trl.txt: dev protocol not found "
        "(expected ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.dev.trl.txt)",
    ]
    assert all(problem in str(raised.value) for problem in reported)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["LA"]


def test_extra_files_are_reported_but_fail_only_when_strict(tmp_path):
    root = tmp_path / "LA"
    make_asvspoof2019(root)
    extra = root / "ASVspoof2019_LA_eval" / "flac" / "LA_E_0000001.flac"
    write_synthetic_audio(extra, SECONDS)
    info, dataset = build("asvspoof2019-la", root, tmp_path)
    assert info["layout_warnings"] == [f"extra: {extra}: not listed in ASVspoof2019.LA.cm.eval.trl.txt"]
    assert "LA_E_0000001" not in dataset["eval"]["utt_id"]
    with pytest.raises(CorpusLayoutError, match="LA_E_0000001.flac: not listed"):
        scan_corpus("asvspoof2019-la", root, strict=True)


def test_skip_missing_audio_leaves_those_rows_out(tmp_path):
    root = tmp_path / "LA"
    make_asvspoof2019(root)
    (root / "ASVspoof2019_LA_dev" / "flac" / "LA_D_1105538.flac").unlink()
    info, dataset = build("asvspoof2019-la", root, tmp_path, skip_missing_audio=True)
    assert dataset["dev"]["utt_id"] == ["LA_D_1047731"]
    assert any("LA_D_1105538.flac not found" in warning for warning in info["layout_warnings"])


def test_unreadable_audio_fails_the_build_and_leaves_no_output(tmp_path):
    root = tmp_path / "LA"
    make_asvspoof2019(root)
    broken = root / "ASVspoof2019_LA_eval" / "flac" / "LA_E_2834763.flac"
    broken.write_bytes(b"not audio at all")
    with pytest.raises(CorpusLayoutError, match=r"unreadable: .*LA_E_2834763\.flac: not a readable audio file"):
        build_dataset("asvspoof2019-la", root, tmp_path / "out", progress=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["LA"]


def test_shards_are_bounded_and_named_for_the_hub(tmp_path):
    root = tmp_path / "folders"
    for index in range(5):
        write_synthetic_audio(root / ("bonafide", "spoof")[index % 2] / f"{index}.flac", SECONDS, seed=index)
    info, dataset = build("generic", root, tmp_path, max_shard_bytes=1)
    files = info["splits"]["train"]["files"]
    assert files == [f"data/train-{index:05d}-of-00005.parquet" for index in range(5)]
    assert sorted(path.name for path in (tmp_path / "out" / "data").iterdir()) == [Path(name).name for name in files]
    assert sorted(dataset["train"]["utt_id"]) == ["bonafide/0", "bonafide/2", "bonafide/4", "spoof/1", "spoof/3"]
    info = build_dataset("generic", root, tmp_path / "one", progress=False)
    assert info["splits"]["train"]["files"] == ["data/train-00000-of-00001.parquet"]


def test_existing_output_is_replaced_only_with_overwrite(tmp_path):
    root = tmp_path / "LA"
    make_asvspoof2019(root)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        build_dataset("asvspoof2019-la", root, out, progress=False)
    assert (out / "old.txt").read_text() == "keep me"
    build_dataset("asvspoof2019-la", root, out, progress=False, overwrite=True)
    assert sorted(path.name for path in out.iterdir()) == ["README.md", "build_info.json", "data"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["LA", "out"]


def test_build_info_and_card_describe_the_build(tmp_path):
    root = tmp_path / "LA"
    make_asvspoof2019(root)
    info, _ = build("asvspoof2019-la", root, tmp_path, build_command="nes2net data build asvspoof2019-la LA out")
    on_disk = read_build_info(tmp_path / "out")
    assert on_disk == json.loads(json.dumps(info))
    assert on_disk["corpus"] == "asvspoof2019-la" and on_disk["num_rows"] == 7
    assert on_disk["columns"] == ["audio", "label", "utt_id", "speaker", "attack"]
    assert on_disk["splits"]["dev"]["attack_counts"] == {"A03": 1, "bonafide": 1}
    assert on_disk["build_command"] == "nes2net data build asvspoof2019-la LA out"
    assert "ASVspoof2019_LA_{train,dev,eval}/flac" in on_disk["source_layout"]
    card = (tmp_path / "out" / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["configs"][0]["data_files"] == [
        {"split": split, "path": f"data/{split}-*.parquet"} for split in ("train", "dev", "eval")
    ]
    assert header["license"] == "odc-by"
    assert "| train | 3 | 1 | 2 |" in card and "| A01 | 1 | 0 | 0 |" in card  # the hub_cards dataset card


def test_stream_corpus_reads_the_same_rows_without_building(tmp_path):
    root = tmp_path / "release_in_the_wild"
    written = make_in_the_wild(root)
    rows = list(stream_corpus("in-the-wild", root, "test"))
    assert [row["utt_id"] for row in rows] == ["0", "1", "2"]
    assert [row["label"] for row in rows] == [0, 1, 1]
    assert np.allclose(decoded(rows[2]), written["2"], atol=1e-6)
    with pytest.raises(ValueError, match="no split 'train'"):
        stream_corpus("in-the-wild", root, "train")


def test_in_the_wild_rejects_a_wrong_header(tmp_path):
    root = tmp_path / "release_in_the_wild"
    make_in_the_wild(root)
    (root / "meta.csv").write_text("file,label\n0.wav,spoof\n")
    with pytest.raises(CorpusLayoutError, match=r"meta\.csv:1: header must be file,speaker,label"):
        scan_corpus("in-the-wild", root)


def test_generic_table_errors_name_the_line(tmp_path):
    root = tmp_path / "generic"
    write_synthetic_audio(root / "a.wav", SECONDS)
    write_synthetic_audio(root / "unlisted.wav", SECONDS)
    (root / "metadata.csv").write_text(
        "file_name,label\na.wav,bonafide\nb.wav,spoof\nnotes.txt,spoof\na.wav,maybe\na.wav,spoof,extra\n"
    )
    with pytest.raises(CorpusLayoutError) as raised:
        scan_corpus("generic", root)
    table = root / "metadata.csv"
    assert [str(problem) for problem in raised.value.problems] == [
        f"malformed: {table}:4: 'notes.txt' is not an audio file ({', '.join(sorted(AUDIO_EXTENSIONS))})",
        f"malformed: {table}:5: unknown key 'maybe' (expected 'bonafide' or 'bona-fide' or 'bona fide' or 'genuine' "
        "or 'real' or 'spoof' or 'spoofed' or 'fake' or 'deepfake')",
        f"malformed: {table}:6: expected 2 fields, found 3",
        f"missing-audio: {table}:3: audio file {root}/b.wav not found",
    ]
    assert "expected layout: ROOT holds a CSV/TSV table" in str(raised.value)
    (root / "other.tsv").write_text("path\tlabel\n")
    (root / "metadata.csv").rename(root / "labels.csv")
    with pytest.raises(CorpusLayoutError, match=r"several metadata tables \(labels.csv, other.tsv\): pick one"):
        scan_corpus("generic", root)
