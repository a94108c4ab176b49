"""Helpers of the training and evaluation tests: a tiny corpus of real audio files built with the generic builder,
and `nes2net` commands run in fresh processes (alone or under `accelerate launch`)."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import datasets

from training.data import LABEL_NAMES, build_dataset, corpus_features
from training.data.synthetic import write_synthetic_audio

REPO = Path(__file__).resolve().parents[2]
SPLIT_SIZES = {"train": 16, "dev": 8, "eval": 12}


def build_tiny_corpus(root: Path) -> Path:
    """FLAC files of 0.3 to 1.2 s in train / dev / eval splits, alternately bona fide and spoof, with `attack`
    (A01 / A02 for spoofs) and `codec` (none / mp3) columns, built with the generic builder. Returns the built
    folder."""
    corpus = root / "corpus"
    rows = []
    for split, count in SPLIT_SIZES.items():
        for index in range(count):
            label = "bonafide" if index % 2 == 0 else "spoof"
            path = f"{split}/{label}/{split}_{index:02d}.flac"
            seconds = 0.3 + 0.9 * ((index * 7) % count) / count
            write_synthetic_audio(corpus / path, seconds, seed=1000 * len(rows) + index)
            attack = "-" if label == "bonafide" else ("A01", "A02")[(index // 2) % 2]
            rows.append({"file_name": path, "label": label, "split": split, "attack": attack,
                         "codec": ("none", "mp3")[(index // 4) % 2]})
    with open(corpus / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    built = root / "built"
    build_dataset("generic", corpus, built, progress=False)
    return built


def write_unchecked_set(folder: Path, rows: list[tuple[str, str, str, bytes]]) -> Path:
    """A set of `(path, label, split, file bytes)` rows in the shared schema written straight to Parquet, as other
    tools may write one: unlike `nes2net data build`, which refuses a damaged file, nothing reads its audio first.
    `utt_id` is the path without its suffix. Returns `folder`."""
    for split in dict.fromkeys(split for _, _, split, _ in rows):
        chosen = [row for row in rows if row[2] == split]
        columns = {"audio": [{"bytes": data, "path": path} for path, _, _, data in chosen],
                   "label": [LABEL_NAMES.index(label) for _, label, _, _ in chosen],
                   "utt_id": [str(Path(path).with_suffix("")) for path, _, _, _ in chosen],
                   "speaker": [None] * len(chosen),
                   "attack": [label if label == "bonafide" else "unknown" for _, label, _, _ in chosen]}
        shard = folder / "data" / f"{split}-00000-of-00001.parquet"
        datasets.Dataset.from_dict(columns, features=corpus_features()).to_parquet(shard)
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def subprocess_env(cache_dir: Path) -> dict[str, str]:
    """One thread per process (comparable float results), offline, a private datasets cache."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_CACHE": str(cache_dir), "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}


def run_command(
    args: list[str],
    env: dict[str, str],
    processes: int = 1,
    timeout: float = 300,
    entry: str = "nes2net",
    cwd: Path = REPO,
) -> subprocess.CompletedProcess:
    """`nes2net ARGS` in a new process run from `cwd`, or under `accelerate launch` on CPU with `processes`
    processes; `entry` is the module run as `nes2net` (`tests.training.train_probe` injects test probes)."""
    module = [sys.executable, "-m", entry, *args]
    if processes > 1:
        accelerate = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                      str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                      "--main_process_port", str(free_port()), "-m", entry]
        module = [*accelerate, *args]
        env = {**env, "ACCELERATE_USE_CPU": "true"}
    return subprocess.run(module, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


class PicklePayload:
    """Unpickling this object runs `touch MARKER`: what an attacker plants to run code on whoever loads the file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def plant_pickle_payload(path: Path, marker: Path) -> None:
    """Write a `torch.save` file at `path` (the format Accelerate's `*.bin` / `*.pkl` states use) that creates
    `marker` when unpickled."""
    import torch

    torch.save(PicklePayload(marker), path)
