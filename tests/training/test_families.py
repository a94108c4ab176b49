"""The family table: every spoof system of the shared sets (when present) and every vocoder has one family."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from training.data.families import FAMILIES, FAMILY_OF, UnknownSystemError, family_of
from training.data.vocoders import VOCODERS

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SETS = ("mini-antispoof", "antispoof-plus", "antispoof-modern")


def spoof_systems(name: str) -> set[str]:
    table = SHARED / name / "metadata.csv"
    if not table.is_file():
        pytest.skip(f"{name} not found at {table.parent.resolve()}")
    with open(table, encoding="utf-8", newline="") as handle:
        return {row["system"] for row in csv.DictReader(handle) if row["label"] == "spoof"}


@pytest.mark.parametrize("name", SETS)
def test_every_spoof_system_of_a_shared_set_has_a_family(name):
    systems = spoof_systems(name)
    assert systems
    assert {system: family_of(system) for system in systems}.keys() == systems


def test_every_listed_system_exists_and_most_families_span_two_sets():
    present = {name: spoof_systems(name) for name in SETS} | {"vocoded": set(VOCODERS)}
    everywhere = set().union(*present.values())
    assert sorted(set(FAMILY_OF) - everywhere) == []  # no typo, no system of no set
    spans = {family: {name for name, systems in present.items() if systems & set(members)}
             for family, members in FAMILIES.items()}
    assert {family for family, names in spans.items() if len(names) < 2} == {"end-to-end-tts"}
    assert 8 <= len(FAMILIES) <= 10


def test_no_system_is_in_two_families_and_every_vocoder_has_one():
    counts = Counter(system for members in FAMILIES.values() for system in members)
    assert [system for system, count in counts.items() if count > 1] == []
    assert {family_of(name) for name in VOCODERS} == {"classic-signal-processing", "neural-vocoder"}


def test_an_unknown_system_is_a_one_line_error_naming_it():
    with pytest.raises(UnknownSystemError) as error:
        family_of("MysteryTTS")
    assert str(error.value) == (
        "spoof system 'MysteryTTS' has no generator family: add it to training.data.families.FAMILIES"
    )
    assert isinstance(error.value, KeyError)
