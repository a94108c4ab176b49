"""Encode once, window the states (`modeling_nes2net.state_windows`): what it costs and how far it moves scores and
verdicts, in one run, against windows of audio (each window encoded alone).

    python benchmarks/state_windows.py [--seconds 120] [--threads 2] [--output benchmarks/state_windows.json]

The recording is real speech: the mini-antispoof test clips (bona fide and spoofed) decoded at 16 kHz and
concatenated up to `--seconds` (`--data`, default `../shared/data/mini-antispoof` beside the repository). Models:

- XLS-R 300M's widths with 4 of its 24 layers and random weights (as `benchmarks/export.py --quick`): the cost of
  `detect` (default settings) with windows of audio and with state windows, against one pass of the same model over
  the audio in 30 s pieces and our transcription of the authors' whole-file loop (`benchmarks/export.authors_loop`:
  the file read whole, one fp32 forward pass);
- the shipped default (`modeling_nes2net/default_model`, the Whisper tiny.en encoder, whose `config.state_windows`
  makes state windows its `detect` default: consecutive 30 s chunks, as `full` reads long audio);
- a random spectrogram model (the package's defaults: 1024 bins, 20 ms hop).

Per model: wall seconds of each path, and per window of the same timeline the |log-odds difference| between the two
paths (max, median, against the spread of the windows' scores) and the share of windows whose verdict (threshold 0)
is the same. Random weights say nothing about verdicts on real data; the shipped default's row does.

Then the verdicts that matter, in the same run: every clip of the test split of each corpus of `--corpora` (default:
mini-antispoof, antispoof-plus and antispoof-modern beside the repository) scored by the shipped default's `detect`
both ways: EER (all spoofs, and the `unseen_in_train` ones where the set flags them), the share of fakes passed and
of genuine clips flagged at threshold 0, the share of clips whose verdict is the same both ways, the largest shift of
a clip's log-odds, and the wall seconds of each path (decoding excluded). Writes JSON (`benchmarks/results.py`);
`benchmarks/render.py` renders the README's tables from it.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))  # run as a script from anywhere

from benchmarks.export import authors_loop  # noqa: E402
from benchmarks.results import add_device_argument, cuda_missing, machine_record, synchronize, write_results  # noqa: E402
from modeling_nes2net import Nes2NetConfig, Nes2NetForAudioClassification  # noqa: E402
from modeling_nes2net.audio import load_audio  # noqa: E402
from modeling_nes2net.configuration_nes2net import XLSR_300M_FRONTEND  # noqa: E402
from modeling_nes2net.detection import Nes2NetDetector  # noqa: E402
from modeling_nes2net.protocols import WINDOW_SAMPLES  # noqa: E402
from modeling_nes2net.model_loading import load_model  # noqa: E402
from training.metrics import compute_eer  # noqa: E402

RATE = 16_000
PIECE_SECONDS = 30
SHARED_DATA = REPOSITORY.parent / "shared" / "data"
DEFAULT_DATA = SHARED_DATA / "mini-antispoof"
DEFAULT_CORPORA = [SHARED_DATA / name for name in ("mini-antispoof", "antispoof-plus", "antispoof-modern")]


def concatenated_test_clips(data: Path, seconds: float) -> np.ndarray:
    """The test clips of a corpus folder (`metadata.csv` with `file_name`, `split`), in order, joined up to
    `seconds` at 16 kHz."""
    with open(data / "metadata.csv", newline="", encoding="utf-8") as handle:
        files = [data / row["file_name"] for row in csv.DictReader(handle) if row["split"] == "test"]
    parts, total = [], 0
    for file in files:
        if total >= seconds * RATE:
            break
        parts.append(load_audio(str(file)))
        total += len(parts[-1])
    if total < seconds * RATE:
        raise SystemExit(f"--data: {data} holds {total / RATE:.0f} s of test clips, fewer than --seconds {seconds:g}")
    return np.concatenate(parts)[: round(seconds * RATE)]


def timed_windows(detector: Nes2NetDetector, audio: np.ndarray, device: str) -> tuple[float, np.ndarray]:
    """Seconds of `detect` on `audio`, and its windows' log-odds."""
    start = time.perf_counter()
    result = detector.detect(audio, sampling_rate=RATE)
    synchronize(device)
    return time.perf_counter() - start, np.array([segment.log_odds for segment in result.segments])


def verdicts_on_test_split(model: Nes2NetForAudioClassification, data: Path, device: str) -> dict:
    """The test split of the corpus folder `data` (`metadata.csv`: `file_name`, `label`, `split`, optionally
    `unseen_in_train`) through `detect` (default settings) with windows of audio and with state windows."""
    with open(data / "metadata.csv", newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    clips = [(load_audio(str(data / row["file_name"])), RATE) for row in rows]
    labels = np.array([row["label"] == "bonafide" for row in rows])
    unseen = np.array([row.get("unseen_in_train") == "true" for row in rows])
    paths = {}
    for name, windowed in (("windows of audio", False), ("state windows", True)):
        detector = Nes2NetDetector(model, device=device, state_windows=windowed)
        start = time.perf_counter()
        odds = np.array([result.log_odds for result in detector.detect_many(clips)])
        synchronize(device)
        seconds = time.perf_counter() - start
        paths[name] = {
            "seconds": seconds,
            "eer": compute_eer(odds[labels], odds[~labels]).eer,
            "unseen_eer": compute_eer(odds[labels], odds[~labels & unseen]).eer if unseen.any() else None,
            "fakes_passed": float(np.mean(odds[~labels] > 0)),
            "genuine_flagged": float(np.mean(odds[labels] <= 0)),
            "log_odds": odds,
        }
    audio_odds, states_odds = (paths[name].pop("log_odds") for name in ("windows of audio", "state windows"))
    row = {"corpus": data.name, "clips": len(clips), "unseen_spoofs": int((~labels & unseen).sum()),
           "longer_than_a_window": sum(len(clip) > WINDOW_SAMPLES for clip, _ in clips), "paths": paths,
           "verdict_agreement": float(np.mean((audio_odds > 0) == (states_odds > 0))),
           "max_abs_diff": float(np.abs(states_odds - audio_odds).max())}
    print(f"{data.name}: " + ", ".join(f"{name} EER {100 * path['eer']:.1f} %" for name, path in paths.items())
          + f", verdicts kept {row['verdict_agreement']:.0%}", flush=True)
    return row


@torch.inference_mode()
def one_pass_in_pieces(model: Nes2NetForAudioClassification, audio: np.ndarray, device: str) -> float:
    """Seconds of one forward pass of `model` over `audio` in consecutive 30 s pieces (the last one shorter)."""
    start = time.perf_counter()
    for offset in range(0, len(audio), PIECE_SECONDS * RATE):
        model(input_values=torch.from_numpy(audio[offset : offset + PIECE_SECONDS * RATE])[None].to(device))
    synchronize(device)
    return time.perf_counter() - start


def measure(name: str, model: Nes2NetForAudioClassification, audio: np.ndarray, recording: str, device: str) -> dict:
    """Both paths of `detect` on `audio` (state windows from the front-end's own chunking), one pass in 30 s pieces,
    and the per-window differences."""
    model = model.eval().to(device)
    audio_path = Nes2NetDetector(model, device=device, state_windows=False)
    states_path = Nes2NetDetector(model, device=device, state_windows=True)
    default = "state windows" if Nes2NetDetector(model, device=device).scorer.state_windows else "windows of audio"
    timed_windows(states_path, audio[: 5 * RATE], device)  # warm-up
    audio_seconds, audio_odds = timed_windows(audio_path, audio, device)
    states_seconds, states_odds = timed_windows(states_path, audio, device)
    difference = np.abs(states_odds - audio_odds)
    row = {
        "model": name,
        "default": default,
        "recording": recording,
        "recording_seconds": len(audio) / RATE,
        "windows": len(audio_odds),
        "seconds": {"windows of audio": audio_seconds, "state windows": states_seconds,
                    "one pass in 30 s pieces": one_pass_in_pieces(model, audio, device)},
        "max_abs_diff": float(difference.max()),
        "median_abs_diff": float(np.median(difference)),
        "window_spread": float(np.ptp(audio_odds)),
        "verdict_agreement": float(np.mean((audio_odds > 0) == (states_odds > 0))),
        "recording_log_odds": {"windows of audio": float(audio_odds.mean()), "state windows": float(states_odds.mean())},
    }
    print(f"{name}: {row['seconds']}, max |diff| {row['max_abs_diff']:.3f}, verdicts kept "
          f"{row['verdict_agreement']:.0%}", flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the concatenated recording")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a corpus folder with test clips")
    parser.add_argument("--corpora", type=Path, nargs="*", default=DEFAULT_CORPORA,
                        help="corpus folders whose test splits the shipped default scores both ways")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_suffix(".json"))
    add_device_argument(parser)
    args = parser.parse_args(argv)
    if cuda_missing(args.device):
        return
    torch.set_num_threads(args.threads)
    machine = machine_record(args.device, args.threads)
    audio = concatenated_test_clips(args.data, args.seconds)
    recording = f"concatenated {args.data.name} test clips"
    rows = []

    torch.manual_seed(0)
    xlsr = Nes2NetForAudioClassification(Nes2NetConfig(frontend_config={**XLSR_300M_FRONTEND, "num_hidden_layers": 4}))
    rows.append(measure("XLS-R 300M widths, 4 layers, random weights", xlsr, audio, recording, args.device))
    with tempfile.TemporaryDirectory(prefix="nes2net-state-windows-") as folder:
        wav = Path(folder) / "recording.wav"
        soundfile.write(wav, audio, RATE, subtype="FLOAT")
        rows[-1]["seconds"]["authors' whole-file loop"] = authors_loop(xlsr.to(args.device), [wav])[0]

    default = load_model(None)
    rows.append(measure("the shipped default (Whisper tiny.en encoder, trained)", default, audio, recording, args.device))

    torch.manual_seed(0)
    spectrogram = Nes2NetForAudioClassification(Nes2NetConfig(frontend_type="spectrogram"))
    rows.append(measure("spectrogram (1024 bins), random weights", spectrogram, audio, recording, args.device))
    splits = [verdicts_on_test_split(default, corpus, args.device) for corpus in args.corpora]
    write_results(args.output, "state_windows", machine, rows, {"splits": splits})


if __name__ == "__main__":
    main()
