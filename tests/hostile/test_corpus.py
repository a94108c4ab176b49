"""The hostile-input corpus (`make_corpus.py`) through `nes2net detect` and `nes2net data check|build`, each in one run
over every file and a good recording: each file the surface refuses gets one line naming it, the run fails, every
file it accepts is still processed, and nothing but the output changes (the corpus folder is hashed before and after).
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
from pathlib import Path

import pytest
import soundfile

from modeling_nes2net.audio import printable
from nes2net.cli import main
from tests.hostile.make_corpus import HostileCase, snapshot, speech_like, write_corpus

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the corpus is encoded by the ffmpeg executable")
GOOD_NAME = "good/speech.wav"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[HostileCase]]:
    """The corpus folder and its cases; the folder also holds a good recording (`GOOD_NAME`) and the generic
    builder's table, which lists every file as a bona fide `train` clip (its own name as `utt_id`)."""
    folder = tmp_path_factory.mktemp("hostile") / "corpus"
    cases = write_corpus(folder)
    (folder / GOOD_NAME).parent.mkdir()
    soundfile.write(folder / GOOD_NAME, speech_like(3.0, seed=7), 16_000, subtype="PCM_16")
    names = [case.path.name for case in cases] + [GOOD_NAME]
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as table:
        csv.writer(table).writerows([("path", "label", "utt_id"), *((name, "bonafide", name) for name in names)])
    return folder, cases


def _run(surface: str, folder: Path, cases: list[HostileCase], output: Path, model_dir, capsys, caplog):
    """Run `surface` over the whole corpus; returns the exit status, the lines of its report (stderr, or what it
    logged at WARNING and above) and the names of the files it processed."""
    caplog.clear()
    capsys.readouterr()
    if surface == "detect":
        inputs = [str(case.path) for case in cases] + [str(folder / GOOD_NAME)]
        code = main(["detect", *inputs, "--model", str(model_dir), "--format", "csv", "--output", str(output),
                     "--device", "cpu"])
        rows = csv.DictReader(io.StringIO(output.read_text(encoding="utf-8")))
        return code, capsys.readouterr().err.splitlines(), {Path(row["file"]).name for row in rows}
    action = surface.removeprefix("data ")
    with caplog.at_level(logging.WARNING):
        code = main(["data", action, "generic", str(folder), *([str(output)] if action == "build" else []),
                     "--no-progress"])
    lines = [line for record in caplog.records for line in record.getMessage().splitlines()]
    return code, lines, None


@pytest.mark.parametrize("surface", ["detect", "data check", "data build"])
def test_each_hostile_file_gets_one_line_naming_it_and_the_good_files_are_kept(
    surface, corpus, model_dir, tmp_path, capsys, caplog
):
    folder, cases = corpus
    before = snapshot(folder)
    output = tmp_path / ("scores.csv" if surface == "detect" else "built")
    code, lines, processed = _run(surface, folder, cases, output, model_dir, capsys, caplog)
    assert snapshot(folder) == before

    def lines_naming(case: HostileCase) -> list[str]:
        return [line.strip() for line in lines if f"{printable(case.path)}: " in line]

    expected = {case.path.name: case.detect if surface == "detect" else case.data for case in cases}
    refused = {name for name, message in expected.items() if message is not None}
    assert refused and code == 1
    for case in cases:
        named = lines_naming(case)
        if case.pending and surface == "detect":
            assert named == [], f"{case.kind}: now refused ({named}): drop its `pending` and check its message"
            assert case.path.name in processed
        elif case.path.name in refused:
            assert len(named) == 1 and expected[case.path.name] in named[0], (case.kind, named)
        else:
            assert named == [], (case.kind, named)
    if surface == "detect":
        scored = {case.path.name for case in cases if case.path.name not in refused or case.pending}
        assert processed == scored | {Path(GOOD_NAME).name}
    elif surface == "data build":
        assert not output.exists() and not list(tmp_path.glob(f".{output.name}.*"))  # nothing half-written
