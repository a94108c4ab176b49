"""Shortcut audit: how well do trivial clip statistics alone separate bona fide from spoofed speech?

Before an EER is trusted, check that the classes cannot be told apart by how the clips were recorded, cut and
stored rather than by the speech itself. `clip_statistics` measures seven such cues on each waveform; a gradient
boosting classifier is fitted on the train split's statistics and its EER is reported per split (and on the
`unseen_in_train` subset where a corpus marks one), with each statistic's own EER next to it. An audit EER far below
50 % means a model can score well on that corpus for the wrong reason; `remove_shortcuts` is the data
transformation that takes those cues away (run the audit with `--remove-shortcuts` to see what it leaves).

Each folder is also audited on its own (`audit_sets`): the classifier fitted on its train split, and how well duration,
silence and loudness alone separate its classes (AUC and EER of each, on all its clips and on its test split). `--json`
writes the whole report; `--render` puts the report's tables into a Markdown file between the `RENDERED_BEGIN` and
`RENDERED_END` markers of its kind (as stored, or after `ShortcutRemoval`), so the figures in `docs/shortcut-audit.md`
come from the JSON files next to it, never typed by hand.

    python -m training.shortcut_audit ../shared/data/mini-antispoof ../shared/data/antispoof-plus
    python -m training.shortcut_audit ../shared/data/antispoof-plus --remove-shortcuts
    python -m training.shortcut_audit ../shared/data/{mini-antispoof,antispoof-plus,antispoof-modern} \
        --json docs/shortcut-audit.json
    python -m training.shortcut_audit --render docs/shortcut-audit.json docs/shortcut-audit.md

Input: folders in the generic layout (`metadata.csv` with `file_name`, `label` = bonafide|spoof, `split`, optional
`unseen_in_train`, and the audio files: FLAC, WAV, Ogg Vorbis or Opus, ...), decoded to 16 kHz mono.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.signal
import soxr
from tqdm.auto import tqdm

from modeling_nes2net.audio import load_audio
from modeling_nes2net.protocols import SAMPLING_RATE
from training.metrics import compute_eer

STATISTICS = (
    "duration_s",
    "leading_silence_s",
    "trailing_silence_s",
    "rms_dbfs",
    "peak_dbfs",
    "rolloff_hz",
    "cutoff_hz",
)
"""The audited cues: length, silence at either end, level, bandwidth (99 % spectral roll-off) and the sample-rate
trace (the highest frequency still within 60 dB of the spectrum's peak: an upsampled or band-limited source stops
short of 8 kHz)."""
SEPARATION_STATISTICS = {
    "duration_s": "duration",
    "leading_silence_s": "leading silence",
    "trailing_silence_s": "trailing silence",
    "rms_dbfs": "RMS level",
}
"""The cues `audit_sets` reports alone per set (length, silence at either end, loudness), with their table headings."""
RENDERED_BEGIN = "<!-- shortcut-audit report ({kind}): rendered by `python -m training.shortcut_audit --render` -->"
RENDERED_END = "<!-- end of the shortcut-audit report ({kind}) -->"
"""The markers `render_into` writes a report between; `kind` is `as stored` or `after ShortcutRemoval`."""

_FRAME_S, _HOP_S = 0.025, 0.010
_SILENCE_BELOW_PEAK_DB = 40.0
_SILENCE_FLOOR_DBFS = -60.0
_CUTOFF_BELOW_PEAK_DB = 60.0


def _decibels(power: np.ndarray | float) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(power, 1e-20))


def frame_levels(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Level in dBFS of 25 ms frames every 10 ms: `(samples,)` -> `(frames,)`."""
    frame, hop = round(_FRAME_S * sample_rate), round(_HOP_S * sample_rate)
    if waveform.size < frame:
        return _decibels(np.mean(waveform**2, keepdims=True))
    frames = np.lib.stride_tricks.sliding_window_view(waveform, frame)[::hop]
    return _decibels(np.mean(frames**2, axis=1))


def mean_power_spectrum(waveform: np.ndarray, sample_rate: int, frame: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Welch's estimate with Hann frames of `frame` samples at 50 % overlap: `(samples,)` -> frequencies and
    powers, each `(frame // 2 + 1,)`."""
    frame = min(frame, waveform.size)
    frames = np.lib.stride_tricks.sliding_window_view(waveform, frame)[:: max(frame // 2, 1)]
    spectra = np.fft.rfft(frames * scipy.signal.get_window("hann", frame), axis=1)
    return np.fft.rfftfreq(frame, 1 / sample_rate), np.mean(np.abs(spectra) ** 2, axis=0)


def speech_bounds(waveform: np.ndarray, sample_rate: int) -> tuple[int, int]:
    """First and one-past-last sample of the non-silent part: frames louder than both 40 dB below the loudest frame
    and -60 dBFS. The whole clip when no frame qualifies."""
    levels = frame_levels(waveform, sample_rate)
    loud = np.flatnonzero(levels > max(levels.max() - _SILENCE_BELOW_PEAK_DB, _SILENCE_FLOOR_DBFS))
    if loud.size == 0:
        return 0, waveform.size
    hop, frame = round(_HOP_S * sample_rate), round(_FRAME_S * sample_rate)
    return int(loud[0] * hop), int(min(loud[-1] * hop + frame, waveform.size))


def clip_statistics(waveform: np.ndarray, sample_rate: int = SAMPLING_RATE) -> dict[str, float]:
    """The seven `STATISTICS` of a mono waveform `(samples,)` in [-1, 1]."""
    waveform = np.asarray(waveform, dtype=np.float64)
    start, end = speech_bounds(waveform, sample_rate)
    frequencies, power = mean_power_spectrum(waveform, sample_rate)
    cumulative = np.cumsum(power) / max(power.sum(), 1e-20)
    above = np.flatnonzero(_decibels(power) > _decibels(power.max()) - _CUTOFF_BELOW_PEAK_DB)
    return {
        "duration_s": waveform.size / sample_rate,
        "leading_silence_s": start / sample_rate,
        "trailing_silence_s": (waveform.size - end) / sample_rate,
        "rms_dbfs": float(_decibels(np.mean(waveform**2))),
        "peak_dbfs": float(_decibels(np.max(np.abs(waveform)) ** 2)),
        "rolloff_hz": float(frequencies[min(np.searchsorted(cumulative, 0.99), frequencies.size - 1)]),
        "cutoff_hz": float(frequencies[above[-1]]) if above.size else 0.0,
    }


@dataclass(frozen=True)
class ShortcutRemoval:
    """Take the audited cues away from a training or audit waveform `(samples,)` -> `(samples',)`:

    - trim leading and trailing silence (`speech_bounds`), keeping at least `min_seconds`;
    - set the RMS level to a level drawn uniformly in `level_dbfs` (both classes get the same spread of levels),
      then scale down if that would clip;
    - with probability `band_limit_p`, band-limit to a Nyquist frequency drawn from `band_limit_hz` by resampling
      down and back up with soxr (so neither class owns the narrow-band sources).
    """

    min_seconds: float = 1.0
    level_dbfs: tuple[float, float] = (-32.0, -18.0)
    band_limit_p: float = 0.5
    band_limit_hz: tuple[int, ...] = (4000, 5512, 8000)

    def __call__(self, waveform: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        waveform = np.asarray(waveform, dtype=np.float64)
        start, end = speech_bounds(waveform, sample_rate)
        keep = min(round(self.min_seconds * sample_rate), waveform.size)
        if end - start < keep:
            start = max(0, min(start, waveform.size - keep))
            end = start + keep
        waveform = waveform[start:end]
        if rng.random() < self.band_limit_p:
            nyquist = int(rng.choice(self.band_limit_hz))
            if 2 * nyquist < sample_rate:
                narrow = soxr.resample(waveform, sample_rate, 2 * nyquist)
                waveform = soxr.resample(narrow, 2 * nyquist, sample_rate)[: end - start]
        rms = math.sqrt(float(np.mean(waveform**2)))
        if rms > 0:
            level = rng.uniform(*self.level_dbfs)
            waveform = waveform * (10 ** (level / 20) / rms)
            peak = float(np.max(np.abs(waveform)))
            if peak > 0.999:
                waveform = waveform * (0.999 / peak)
        return waveform.astype(np.float32)


def remove_shortcuts(waveform: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """`ShortcutRemoval()` with its defaults."""
    return ShortcutRemoval()(waveform, sample_rate, rng)


@dataclass(frozen=True)
class Clip:
    """One audited clip: its statistics and the metadata the audit splits on."""

    corpus: str
    file_name: str
    label: int  # 1 bona fide, 0 spoof
    split: str
    unseen_in_train: bool
    system: str
    statistics: dict[str, float]


def audit_clips(
    folders: Sequence[str | Path], remove: ShortcutRemoval | None = None, seed: int = 0, progress: bool = True
) -> list[Clip]:
    """Statistics of every clip listed in each folder's `metadata.csv`, after `remove` when given (drawn from a
    generator seeded by `(seed, clip number)`, so the audit is reproducible)."""
    rows: list[tuple[Path, dict[str, str]]] = []
    for folder in map(Path, folders):
        metadata = folder / "metadata.csv"
        if not metadata.is_file():
            raise FileNotFoundError(f"{metadata}: not found (a folder in the generic layout has a metadata.csv)")
        with metadata.open(newline="", encoding="utf-8-sig") as handle:
            rows.extend((folder, row) for row in csv.DictReader(handle))
    clips = []
    for number, (folder, row) in enumerate(tqdm(rows, desc="clip statistics", unit="clip", disable=not progress)):
        waveform = load_audio(folder / row["file_name"], target_rate=SAMPLING_RATE)
        if remove is not None:
            waveform = remove(waveform, SAMPLING_RATE, np.random.default_rng((seed, number)))
        clips.append(
            Clip(
                corpus=folder.name,
                file_name=row["file_name"],
                label=1 if row["label"] == "bonafide" else 0,
                split=row["split"],
                unseen_in_train=row.get("unseen_in_train", "false").lower() == "true",
                system=row.get("system", ""),
                statistics=clip_statistics(waveform),
            )
        )
    return clips


@dataclass(frozen=True)
class AuditRow:
    """One evaluated subset: its size and the EER (%) of the classifier and of each statistic alone."""

    subset: str
    bonafide: int
    spoof: int
    classifier_eer: float
    statistic_eers: dict[str, float]


def _eer_percent(scores: np.ndarray, labels: np.ndarray) -> float:
    return 100.0 * compute_eer(scores[labels == 1], scores[labels == 0]).eer


def _single_statistic_eer(values: np.ndarray, labels: np.ndarray) -> float:
    """EER of one statistic used as a score in whichever direction separates better (a shortcut either way)."""
    eer = _eer_percent(values, labels)
    return min(eer, 100.0 - eer)


def audit_subsets(clips: Sequence[Clip]) -> list[str]:
    """The subsets reported: every evaluation split, and for `test` its seen / unseen parts when marked."""
    splits = sorted({clip.split for clip in clips} - {"train"}, key=lambda name: (name != "dev", name))
    subsets = []
    for split in splits:
        subsets.append(split)
        in_split = [clip for clip in clips if clip.split == split]
        if any(clip.unseen_in_train for clip in in_split) and not all(clip.unseen_in_train for clip in in_split):
            subsets += [f"{split} (seen generators)", f"{split} (unseen generators)"]
    return subsets


def run_audit(clips: Sequence[Clip], seed: int = 0) -> list[AuditRow]:
    """Fit the classifier on the train clips, report every subset (`audit_subsets`).

    On the seen / unseen parts of a split the bona fide trials are all that split's bona fide clips (unseen genuine
    sources included in the unseen part), against the spoofed clips of seen or of unseen generators.
    """
    from sklearn.ensemble import GradientBoostingClassifier

    def matrix(selected: Sequence[Clip]) -> tuple[np.ndarray, np.ndarray]:
        features = np.array([[clip.statistics[name] for name in STATISTICS] for clip in selected])
        return features, np.array([clip.label for clip in selected])

    train_features, train_labels = matrix([clip for clip in clips if clip.split == "train"])
    if len(set(train_labels.tolist())) < 2:
        raise ValueError("the audit needs bona fide and spoofed clips in the train split")
    classifier = GradientBoostingClassifier(random_state=seed).fit(train_features, train_labels)
    rows = []
    for subset in audit_subsets(clips):
        features, labels = matrix([clip for clip in clips if _subset_member(clip, subset)])
        if len(set(labels.tolist())) < 2:
            continue
        scores = classifier.predict_proba(features)[:, 1]
        rows.append(
            AuditRow(
                subset=subset,
                bonafide=int(labels.sum()),
                spoof=int((labels == 0).sum()),
                classifier_eer=_eer_percent(scores, labels),
                statistic_eers={
                    name: _single_statistic_eer(features[:, column], labels) for column, name in enumerate(STATISTICS)
                },
            )
        )
    return rows


def _subset_member(clip: Clip, subset: str) -> bool:
    split, _, part = subset.partition(" (")
    if clip.split != split:
        return False
    if clip.label == 1 or not part:
        return True
    return clip.unseen_in_train == part.startswith("unseen")


@dataclass(frozen=True)
class Separation:
    """How well one statistic alone separates the classes of some clips: AUC and EER in %, each taken in the
    statistic's better direction (50 = no separation, 100 AUC / 0 EER = complete)."""

    auc: float
    eer: float


def statistic_separation(
    clips: Sequence[Clip], statistics: Sequence[str] = tuple(SEPARATION_STATISTICS)
) -> dict[str, Separation]:
    """Each of `statistics` used alone as a score over `clips` (which hold both classes)."""
    from sklearn.metrics import roc_auc_score

    labels = np.array([clip.label for clip in clips])
    separation = {}
    for name in statistics:
        values = np.array([clip.statistics[name] for clip in clips])
        auc = 100.0 * roc_auc_score(labels, values)
        separation[name] = Separation(auc=max(auc, 100.0 - auc), eer=_single_statistic_eer(values, labels))
    return separation


@dataclass(frozen=True)
class SetAudit:
    """One corpus audited on its own: its class counts, the classifier fitted on its train split (`rows`, as
    `run_audit`), and the separation by each `SEPARATION_STATISTICS` alone on all its clips and on its test split."""

    corpus: str
    bonafide: int
    spoof: int
    rows: list[AuditRow]
    separation_all: dict[str, Separation]
    separation_test: dict[str, Separation]


def audit_sets(clips: Sequence[Clip], seed: int = 0) -> list[SetAudit]:
    """`SetAudit` of every corpus among `clips`, in order of appearance."""
    audits = []
    for corpus in dict.fromkeys(clip.corpus for clip in clips):
        own = [clip for clip in clips if clip.corpus == corpus]
        test = [clip for clip in own if clip.split == "test"]
        audits.append(
            SetAudit(
                corpus=corpus,
                bonafide=sum(clip.label for clip in own),
                spoof=sum(1 - clip.label for clip in own),
                rows=run_audit(own, seed=seed),
                separation_all=statistic_separation(own),
                separation_test=statistic_separation(test) if len({clip.label for clip in test}) == 2 else {},
            )
        )
    return audits


def audit_report(
    folders: Sequence[str | Path], clips: Sequence[Clip], removed: bool, seed: int = 0
) -> dict[str, object]:
    """The JSON-ready report of one audit run: the pooled rows (`run_audit` over all folders) and `audit_sets`."""
    return {
        "folders": [Path(folder).name for folder in folders],
        "shortcuts_removed": removed,
        "seed": seed,
        "statistics": list(STATISTICS),
        "pooled": [asdict(row) for row in run_audit(clips, seed=seed)],
        "sets": [asdict(audit) for audit in audit_sets(clips, seed=seed)],
    }


def format_audit(rows: Sequence[AuditRow]) -> str:
    """A Markdown table: one row per subset, the classifier's EER and each statistic's."""
    header = ["subset", "bona fide", "spoof", "classifier EER %", *STATISTICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.subset, str(row.bonafide), str(row.spoof), f"{row.classifier_eer:.1f}"]
        cells += [f"{row.statistic_eers[name]:.1f}" for name in STATISTICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_report(report: dict) -> str:
    """The Markdown tables of an `audit_report`: per set, the separation by each cue alone and the classifier's EER on
    the test split; then the pooled rows."""
    names = [name for name in SEPARATION_STATISTICS if name in report["sets"][0]["separation_all"]]
    header = ["set", "clips (bona fide / spoof)", *(f"{SEPARATION_STATISTICS[name]} AUC / EER" for name in names),
              "7 cues, test EER %"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for audit in report["sets"]:
        for scope, key in (("all clips", "separation_all"), ("test split", "separation_test")):
            if not audit[key]:
                continue
            test_rows = [row for row in audit["rows"] if row["subset"] == "test"]
            classifier = f"{test_rows[0]['classifier_eer']:.1f}" if test_rows and scope == "test split" else ""
            counts = f"{audit['bonafide']} / {audit['spoof']}" if scope == "all clips" else ""
            cells = [f"{audit['corpus']}, {scope}", counts]
            cells += [f"{audit[key][name]['auc']:.1f} / {audit[key][name]['eer']:.1f}" for name in names]
            lines.append("| " + " | ".join([*cells, classifier]) + " |")
    pooled = [AuditRow(**row) for row in report["pooled"]]
    return "\n".join(lines) + "\n\nPooled over " + ", ".join(report["folders"]) + ":\n\n" + format_audit(pooled)


def render_into(markdown_file: str | Path, report: dict) -> None:
    """Replace what lies between the report's `RENDERED_BEGIN` and `RENDERED_END` markers in `markdown_file` by
    `format_report(report)`."""
    path = Path(markdown_file)
    kind = "after ShortcutRemoval" if report["shortcuts_removed"] else "as stored"
    begin, end = RENDERED_BEGIN.format(kind=kind), RENDERED_END.format(kind=kind)
    text = path.read_text(encoding="utf-8")
    if text.count(begin) != 1 or text.count(end) != 1:
        raise ValueError(f"{path}: needs exactly one pair of shortcut-audit report markers ({begin!r} ...)")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    path.write_text(f"{head}{begin}\n{format_report(report)}\n{end}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.shortcut_audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", help="corpora in the generic layout (metadata.csv + audio)")
    parser.add_argument("--remove-shortcuts", action="store_true", help="audit the clips after ShortcutRemoval")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the report (pooled and per set) as JSON")
    parser.add_argument("--render", nargs=2, metavar=("REPORT_JSON", "MARKDOWN"),
                        help="only render a --json report into MARKDOWN between the report markers")
    args = parser.parse_args(argv)
    if bool(args.folders) == bool(args.render):
        parser.error("give the corpus folders to audit, or --render REPORT_JSON MARKDOWN")
    try:
        if args.render:
            render_into(args.render[1], json.loads(Path(args.render[0]).read_text(encoding="utf-8")))
            return 0
        clips = audit_clips(args.folders, ShortcutRemoval() if args.remove_shortcuts else None, seed=args.seed)
        report = audit_report(args.folders, clips, removed=args.remove_shortcuts, seed=args.seed)
    except (FileNotFoundError, ValueError, KeyError) as error:  # AudioInputError and JSONDecodeError are ValueErrors
        print(f"shortcut audit: {error}", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
