"""The one schema every built anti-spoofing corpus shares.

Every row has `audio` (the original encoded file, decoded at 16 kHz), `label` (1 = bona fide, 0 = spoof),
`utt_id`, `speaker` and `attack`, followed by the corpus' own metadata columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Audio, ClassLabel, Features, Value

from modeling_nes2net.configuration_nes2net import BONAFIDE_LABEL, ID2LABEL
from modeling_nes2net.protocols import SAMPLING_RATE

LABEL_NAMES = [ID2LABEL[2][index] for index in range(2)]  # the model's class ids: 0 spoof, 1 bona fide
SPOOF, BONAFIDE = 0, 1
ATTACK_BONAFIDE = BONAFIDE_LABEL
"""The `attack` of every bona fide row, whatever the corpus writes (`-` in ASVspoof 2019, `bonafide` in 2021)."""
ATTACK_UNKNOWN = "unknown"
"""The `attack` of a spoofed row whose corpus does not name the system that made it."""
SHARED_COLUMNS = ("audio", "label", "utt_id", "speaker", "attack")


@dataclass
class Utterance:
    """One row before its audio is read: where the file is and what the corpus says about it."""

    utt_id: str
    audio_path: Path
    label: int
    speaker: str | None
    attack: str
    metadata: dict[str, Any] = field(default_factory=dict)


def attack_name(system: str, label: int) -> str:
    """The `attack` column value: `bonafide` for real speech, else the corpus' system id (or `unknown`)."""
    if label == BONAFIDE:
        return ATTACK_BONAFIDE
    return system if system not in ("", "-") else ATTACK_UNKNOWN


def corpus_features(metadata_features: dict[str, Any] | None = None) -> Features:
    """The shared columns followed by a corpus' metadata columns (all string-valued unless told otherwise)."""
    features = Features(
        {
            "audio": Audio(sampling_rate=SAMPLING_RATE),
            "label": ClassLabel(names=LABEL_NAMES),
            "utt_id": Value("string"),
            "speaker": Value("string"),
            "attack": Value("string"),
        }
    )
    for name, feature in (metadata_features or {}).items():
        if name in features:
            raise ValueError(f"metadata column {name!r} clashes with a shared column")
        features[name] = feature
    return features
