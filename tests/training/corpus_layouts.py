"""Miniature corpora in their owners' exact layouts, for the data-builder, localiser and bad-input tests: protocol
files with one synthetic clip per line, and PartialSpoof's layout made from synthetic or from real clips."""

from __future__ import annotations

import csv
import zlib
from pathlib import Path

import numpy as np
import soundfile

from training.data.synthetic import write_synthetic_audio

SECONDS = 0.2  # the length of every synthetic clip
PARTIALSPOOF_RESOLUTIONS = ("0.01", "0.02", "0.04", "0.08", "0.16", "0.32", "0.64")


def write_protocol_corpus(
    root: Path, protocol: str, lines: list[str], audio_dir: str, suffix: str = ".flac", id_field: int = 1
) -> dict[str, np.ndarray]:
    """Write `lines` to `root/protocol` and one synthetic file per line to `root/audio_dir`; returns the
    samples written, by utterance id."""
    (root / protocol).parent.mkdir(parents=True, exist_ok=True)
    (root / protocol).write_text("".join(line + "\n" for line in lines))
    written = {}
    for line in lines:
        utt_id = line.split()[id_field]
        seed = zlib.crc32(utt_id.encode())
        written[utt_id] = write_synthetic_audio(root / audio_dir / f"{utt_id}{suffix}", SECONDS, seed=seed)
    return written


def make_partialspoof(root: Path, resolutions=("0.01", "0.64")) -> None:
    """PartialSpoof's layout with synthetic clips: protocols, `con_wav` folders and segment labels at `resolutions`
    (each spoof's last segment spoofed)."""
    splits = {
        "train": ["LA_0079 CON_T_0000029 - CON spoof", "LA_0079 LA_T_1138215 - - bonafide"],
        "dev": ["LA_0069 CON_D_0000001 - CON spoof"],
        "eval": ["LA_0039 CON_E_0000002 - CON spoof"],
    }
    for split, lines in splits.items():
        written = write_protocol_corpus(
            root,
            f"protocols/PartialSpoof_LA_cm_protocols/PartialSpoof.LA.cm.{split}.trl.txt",
            lines,
            f"{split}/con_wav",
            ".wav",
        )
        (root / "segment_labels").mkdir(exist_ok=True)
        for seconds in resolutions:
            count = max(1, round(SECONDS / float(seconds)))
            labels = {
                utt_id: np.array(["1"] * count if utt_id.startswith("LA_") else ["1"] * (count - 1) + ["0"])
                for utt_id in written
            }
            np.save(root / "segment_labels" / f"{split}_seglab_{seconds}.npy", labels)


def write_partialspoof(root, mini_antispoof, count: int = 6) -> None:
    """Real bona fide clips with a real spoofed clip's second (on the 10 ms grid) pasted in, in PartialSpoof's layout:
    `SPEAKER FILE - SYSTEM KEY` protocols and `{split}_seglab_{seconds}.npy` dicts of '1' / '0' string arrays."""
    rows = list(csv.DictReader(open(mini_antispoof / "metadata.csv", encoding="utf-8")))
    bonafide = [row for row in rows if row["label"] == "bonafide"]
    spoof = [row for row in rows if row["label"] == "spoof"][:count]
    for number, split in enumerate(("train", "dev", "eval")):
        (root / split / "con_wav").mkdir(parents=True)
        lines, labels = [], {seconds: {} for seconds in PARTIALSPOOF_RESOLUTIONS}
        hosts = bonafide[number * count : (number + 1) * count]  # other clips in each split: a copy would be refused
        for index, (host, piece) in enumerate(zip(hosts, spoof)):
            host_audio = soundfile.read(mini_antispoof / host["file_name"], dtype="float32")[0][:32_000]
            piece_audio = soundfile.read(mini_antispoof / piece["file_name"], dtype="float32")[0][8_000:24_000]
            utt_id = f"CON_{split[0].upper()}_{index:07d}"
            if index % 2:  # bona fide
                audio, cells = host_audio, np.ones(200, np.int8)
                lines.append(f"LA_{index:04d} {utt_id} - - bonafide")
            else:
                audio = np.concatenate([host_audio[:16_000], piece_audio, host_audio[16_000:]])
                cells = np.concatenate([np.ones(100), np.zeros(100), np.ones(100)]).astype(np.int8)
                lines.append(f"LA_{index:04d} {utt_id} - CON spoof")
            soundfile.write(root / split / "con_wav" / f"{utt_id}.wav", audio, 16_000)
            for seconds in PARTIALSPOOF_RESOLUTIONS:
                step = round(float(seconds) * 100)
                segments = np.minimum.reduceat(cells, np.arange(0, len(cells), step))
                labels[seconds][utt_id] = segments.astype(str)
        protocols = root / "protocols" / "PartialSpoof_LA_cm_protocols"
        protocols.mkdir(parents=True, exist_ok=True)
        (protocols / f"PartialSpoof.LA.cm.{split}.trl.txt").write_text("\n".join(lines) + "\n")
        (root / "segment_labels").mkdir(exist_ok=True)
        for seconds, by_utterance in labels.items():
            np.save(root / "segment_labels" / f"{split}_seglab_{seconds}.npy", by_utterance)
