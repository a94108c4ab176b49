"""`nes2net data build|check` through the real command-line entry point."""

from __future__ import annotations

import argparse
import logging
import zlib

import pytest

from nes2net.cli import main
from training.data import read_build_info
from training.data.cli import format_size, parse_size
from training.data.synthetic import write_synthetic_audio


@pytest.fixture
def ctrsvdd(tmp_path):
    """A CtrSVDD layout with train and dev only: test.txt and test_set/ are missing."""
    root = tmp_path / "CtrSVDD"
    for split, lines in {
        "train": [
            "m4singer CtrSVDD_0110 CtrSVDD_0110_D_0015416 - - bonafide",
            "jvsmusic CtrSVDD_0097 CtrSVDD_0097_D_0010993 - A06 deepfake",
        ],
        "dev": ["kising CtrSVDD_0120 CtrSVDD_0120_D_0020000 - A03 deepfake"],
    }.items():
        (root / f"{split}.txt").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
        for index, line in enumerate(lines):
            utt_id = line.split()[2]  # one clip per file: a copy in two splits would be refused
            write_synthetic_audio(root / f"{split}_set" / f"{utt_id}.flac", 0.2, seed=zlib.crc32(utt_id.encode()))
    return root


def test_build_writes_the_folder_and_records_its_command(ctrsvdd, tmp_path):
    (ctrsvdd / "test.txt").write_text("acesinger CtrSVDD_0115 CtrSVDD_0115_E_0092590 - - bonafide\n")
    write_synthetic_audio(ctrsvdd / "test_set" / "CtrSVDD_0115_E_0092590.flac", 0.2)
    out = tmp_path / "out"
    code = main(["data", "build", "ctrsvdd", str(ctrsvdd), str(out), "--max-shard-size", "2MB", "--no-progress"])
    assert code == 0
    info = read_build_info(out)
    assert {split: info["splits"][split]["num_rows"] for split in info["splits"]} == {"train": 2, "dev": 1, "test": 1}
    # published in build_info.json and the card: absolute paths by their last part only
    assert info["build_command"] == f"nes2net data build ctrsvdd {ctrsvdd.name} out --max-shard-size 2MB"
    assert info["source_root"] == ctrsvdd.name and str(tmp_path) not in (out / "README.md").read_text()


def test_build_of_a_broken_layout_fails_and_logs_every_problem(ctrsvdd, tmp_path, caplog):
    (ctrsvdd / "dev.txt").write_text("kising CtrSVDD_0120 CtrSVDD_0120_D_0020000 - A03 fake\nkising CtrSVDD_0121\n")
    with caplog.at_level(logging.ERROR):
        code = main(["data", "build", "ctrsvdd", str(ctrsvdd), str(tmp_path / "out"), "--no-progress"])
    assert code == 1
    assert f"{ctrsvdd / 'dev.txt'}:1: unknown key 'fake' (expected 'bonafide' or 'deepfake')" in caplog.text
    assert f"{ctrsvdd / 'dev.txt'}:2: expected 6 fields, found 2" in caplog.text
    assert "test protocol not found (expected test.txt)" in caplog.text
    assert "test audio folder not found (expected test_set)" in caplog.text
    assert not (tmp_path / "out").exists()


def test_check_reports_a_missing_audio_file_unless_told_to_skip_it(ctrsvdd, tmp_path, caplog):
    (ctrsvdd / "test.txt").write_text("acesinger CtrSVDD_0115 CtrSVDD_0115_E_0092590 - - bonafide\n")
    (ctrsvdd / "test_set").mkdir()
    assert main(["data", "check", "ctrsvdd", str(ctrsvdd), "--skip-missing-audio"]) == 0
    with caplog.at_level(logging.ERROR):
        assert main(["data", "check", "ctrsvdd", str(ctrsvdd)]) == 1
    assert "test.txt:1: audio file" in caplog.text and "CtrSVDD_0115_E_0092590.flac not found" in caplog.text


def test_sizes_parse_and_print_in_decimal_units():
    assert parse_size("500MB") == 500_000_000 and parse_size("1.5gb") == 1_500_000_000 and parse_size("2048") == 2048
    assert (
        format_size(500_000_000) == "500MB" and format_size(1_500_000_000) == "1500MB" and format_size(1001) == "1001B"
    )
    with pytest.raises(argparse.ArgumentTypeError, match="not a size"):
        parse_size("lots")
