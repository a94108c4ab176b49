"""The family table names only systems that exist, each once, and covers the vocoded copies' systems
(every spoof system of the shared sets having a family is checked in test_cross_validation.py)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from training.data.families import FAMILIES, family_of
from training.data.vocoders import VOCODERS

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SETS = ("mini-antispoof", "antispoof-plus", "antispoof-modern")


def spoof_systems(name: str) -> set[str]:
    table = SHARED / name / "metadata.csv"
    if not table.is_file():
        pytest.skip(f"{name} not found at {table.parent.resolve()}")
    with open(table, encoding="utf-8", newline="") as handle:
        return {row["system"] for row in csv.DictReader(handle) if row["label"] == "spoof"}


def test_every_listed_system_exists_and_all_families_but_vits_style_span_two_sets():
    present = {name: spoof_systems(name) for name in SETS} | {"vocoded": set(VOCODERS)}
    listed = {system for members in FAMILIES.values() for system in members}
    assert sorted(listed - set().union(*present.values())) == []  # no typo, no system of no set
    spans = {family: {name for name, systems in present.items() if systems & set(members)}
             for family, members in FAMILIES.items()}
    assert {family for family, names in spans.items() if len(names) < 2} == {"end-to-end TTS"}


def test_no_system_is_in_two_families_and_every_vocoder_has_one():
    counts = Counter(system for members in FAMILIES.values() for system in members)
    assert [system for system, count in counts.items() if count > 1] == []
    assert {name: family_of(name) for name in VOCODERS} == {
        "griffin-lim": "signal vocoder", "world": "signal vocoder", "hifigan": "neural vocoder"}


def test_an_unknown_system_is_a_one_line_error_naming_it():
    with pytest.raises(KeyError, match="no generator family for system 'MysteryTTS'") as error:
        family_of("MysteryTTS")
    assert "\n" not in str(error.value)
