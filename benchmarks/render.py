"""Render the measured tables of README.md and space/README.md from the benchmarks' JSON result files, so no figure
is copied by hand.

    python benchmarks/render.py           # rewrite every rendered block of both documents
    python benchmarks/render.py --check   # exit 1 if a block differs from what its JSON renders to

A rendered block sits between `<!-- rendered from benchmarks/NAME.json by benchmarks/render.py -->` and
`<!-- end of rendered block -->`; NAME picks the renderer. Each table is followed by the line naming its baseline,
the machine, threads and load average of the run, and the command that made it. A block whose JSON file has not been
written yet renders as one line naming the command that writes it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.default_model import CROSS_VALIDATED_AS  # noqa: E402

BENCHMARKS = Path(__file__).resolve().parent
README = BENCHMARKS.parent / "README.md"
DOCUMENTS = (README, BENCHMARKS.parent / "space" / "README.md")
"""The documents with rendered blocks."""
BLOCK = re.compile(
    r"(<!-- rendered from benchmarks/(?P<name>[\w.-]+\.json) by benchmarks/render.py -->\n)"
    r".*?"
    r"(<!-- end of rendered block -->)",
    re.DOTALL,
)


def run_line(record: dict) -> str:
    """One sentence on where and how the figures were measured."""
    machine = record["machine"]
    where = machine["gpu"] or f"{machine['cpu']} ({machine['cpu_cores']} cores)"
    return (f"Measured on {where}, {machine['device']}, {machine['threads']} threads, torch {machine['torch']}; "
            f"1-minute load average {machine['load_before']:g} before / {machine['load_after']:g} after "
            f"(`python benchmarks/{record['command']}`).")


def _pair(rows: list[dict], value: Callable[[dict], str]) -> str:
    return " / ".join(value(row) for row in rows)


def backend_table(record: dict) -> str:
    """`benchmarks/backend.py`: one row per variant, batch 1 / batch 16 side by side; the speed-up in wall-clock time
    and, where the run recorded it, in CPU time."""
    rows = record["rows"]
    paths = list(rows[0]["paths"])
    clocks = ["speedup"] + (["cpu_speedup"] if all("cpu_speedup" in row["paths"][path] for row in rows
                                                   for path in paths) else [])
    header = ["back-end (D = 1024, T = {})".format(rows[0]["frames"]), "parameters", "MACs (ptflops rules)",
              "baseline ms, batch 1 / 16"]
    header += [f"{path}: {'CPU-time ' if clock == 'cpu_speedup' else ''}speed-up, batch 1 / 16"
               for path in paths for clock in clocks] + ["max abs diff"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant in dict.fromkeys(row["variant"] for row in rows):
        pair = sorted((row for row in rows if row["variant"] == variant), key=lambda row: row["batch"])
        cells = [variant, f"{pair[0]['parameters']:,}", f"{pair[0]['macs'] / 1e6:.2f} M",
                 _pair(pair, lambda row: f"{row['baseline_ms']:.1f}")]
        cells += [_pair(pair, lambda row, path=path, clock=clock: f"{row['paths'][path][clock]:.2f}x")
                  for path in paths for clock in clocks]
        cells.append(f"{max(row['paths'][path]['max_abs_diff'] for row in pair for path in paths):.0e}")
        lines.append("| " + " | ".join(cells) + " |")
    baseline = rows[0]["baseline"]
    lines += ["", f"Baseline: {baseline}; median of {rows[0]['repeats']} alternating runs. {run_line(record)}"]
    return "\n".join(lines)


def demo_model_table(record: dict) -> str:
    """`benchmarks/demo_model.py`: audio seconds scored per second by each model (the shipped default, the default it
    replaced) and inference path, batch 1 / batched side by side."""
    rows = record["rows"]
    paths = list(dict.fromkeys(row["path"] for row in rows))
    batches = sorted({row["batch"] for row in rows})
    header = ["model", "parameters", "folder", *(f"{path}, audio s/s at batch {' / '.join(map(str, batches))}"
                                                 for path in paths)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    names = {"shipped": "**the shipped default**", "replaced": "the default it replaced"}
    for model in dict.fromkeys(row["model"] for row in rows):
        own = [row for row in rows if row["model"] == model]
        first = own[0]
        revision = f", {record['machine']['replaced_revision']}" if model == "replaced" else ""
        cells = [f"{names[model]} ({first['frontend']} front-end{revision})", f"{first['parameters']:,}",
                 f"{first['model_bytes'] / 1e6:.1f} MB"]
        for path in paths:
            measured = {row["batch"]: row for row in own if row["path"] == path}
            cells.append(" / ".join(f"{measured[batch]['audio_seconds_per_second']:.0f}" if batch in measured else "-"
                                    for batch in batches))
        lines.append("| " + " | ".join(cells) + " |")
    clip = rows[0]["samples"] / 16_000
    lines += ["", f"Throughput: audio seconds scored per wall-clock second on {clip:.2f} s clips, median of "
                  f"{rows[0]['repeats']} alternating runs; the baseline is each model's PyTorch fp32 at batch 1. "
                  f"{run_line(record)}"]
    return "\n".join(lines)


def export_table(record: dict) -> str:
    """`benchmarks/export.py`: real-time factor of each `detect` path on clips and on one long file, against the
    authors' loop on the same input."""
    rows = record["rows"]
    inputs = list(dict.fromkeys(row["input"] for row in rows))
    header = ["path"]
    for name in inputs:
        header += [f"RTF, {record['machine']['inputs'][name]}", "vs authors"]
    header.append("max log-odds drift")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for path in dict.fromkeys(row["path"] for row in rows):
        measured = {row["input"]: row for row in rows if row["path"] == path}
        cells = [path]
        for name in inputs:
            row = measured.get(name)
            cells += [f"{row['rtf']:.3f}", f"{row['speedup']:.2f}x"] if row else ["-", "-"]
        drifts = [row["max_log_odds_drift"] for row in measured.values() if row["max_log_odds_drift"] is not None]
        cells.append(f"{max(drifts):.0e}" if drifts else "")
        lines.append("| " + " | ".join(cells) + " |")
    machine = record["machine"]
    exports = ", ".join(f"{variant} {drift:.1e}" for variant, drift in machine["onnx_export_drift"].items())
    lines += ["", f"RTF: wall seconds per audio second (lower is faster). Baseline: {machine['baseline']}. Model: "
                  f"{machine['model']}; the ONNX export's max log-odds difference from PyTorch on a 4 s clip: "
                  f"{exports or 'not exported'}. {run_line(record)}"]
    return "\n".join(lines)


def detect_table(record: dict) -> str:
    """`benchmarks/detect.py`: throughput of each case against its baseline, then peak memory against the recording's
    length."""
    rows = record["rows"]
    lines = ["| case | model | batch | audio s/s | vs baseline | baseline | peak RSS MB |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        if row["kind"] == "throughput":
            lines.append(f"| {row['case']} | {row['model']} | {row['batch']} | {row['audio_seconds_per_second']:.1f} | "
                         f"{row['ratio']:.2f}x | {row['baseline']} | {row['rss_mb']:.0f} |")
    lines += ["", "| protocol | length | outcome | peak RSS MB | vs baseline | loaded MB | scoring adds MB |",
              "|---|---|---|---|---|---|---|"]
    for row in rows:
        if row["kind"] == "memory":
            lines.append(f"| {row['protocol']} | {row['minutes']:g} min | {row['outcome']} | {row['rss_mb']:.0f} | "
                         f"{row['ratio']:.2f}x | {row['loaded_mb']:.0f} | {row['rss_mb'] - row['loaded_mb']:.0f} |")
    drifts = [f"{row['quantize']} {row['max_probability_drift']:.4f}" for row in rows if "max_probability_drift" in row]
    lines += ["", "Memory baseline: the shortest recording under the same protocol (tiny model, batch 16). "
                  + (f"Max |difference| of p(bona fide) from float32 (XLS-R sized): {', '.join(drifts)}. " if drifts
                     else "") + run_line(record)]
    return "\n".join(lines)


GENERALISATION_BASELINES = ("logistic", "logistic-clean")
"""Rows of `benchmarks/generalisation.json` that are baselines, not Nes2Net candidates."""
GENERALISATION_COMPARED = "compared model"
"""Its test-split row of the model folder the run compared against (the shipped default), scored without retraining."""


def worst_channel_loss(row: dict) -> tuple[float, str, str] | None:
    """The most EER points a model's test row (`{corpus: test_report}` of `benchmarks/generalisation.py`) loses under
    a channel against the same split clean: `(points, channel, corpus)`; None when no channel was measured."""
    losses = [(rates["eer"] - report["all"]["eer"], channel, corpus) for corpus, report in row.items()
              for channel, rates in report.get("channels", {}).items()]
    return max(losses) if losses else None


def generalisation_table(record: dict) -> str:
    """`benchmarks/generalisation.py`: pooled leave-one-family-out EER and the unseen-generator EER of each test split,
    for the shipped default, the baselines, the shipped default's recipe (`CROSS_VALIDATED_AS` of
    `training.default_model`) and, when another candidate has a lower pooled EER, that one."""
    if CROSS_VALIDATED_AS not in record["candidates"]:
        raise SystemExit(f"benchmarks/generalisation.json has no row for the shipped default's recipe "
                         f"{CROSS_VALIDATED_AS!r} (training.default_model.CROSS_VALIDATED_AS)")
    best = min((name for name in record["candidates"] if name not in GENERALISATION_BASELINES),
               key=lambda name: record["candidates"][name]["pooled"]["eer"])
    corpora = [corpus for corpus in record["corpora"] if "unseen" in record["test"][CROSS_VALIDATED_AS][corpus]]
    lines = ["| model | leave-one-family-out EER | " + " | ".join(f"{corpus} unseen generators" for corpus in corpora)
             + " | most EER points lost under MP3 32 kbit/s, Opus 16 kbit/s or G.711 (test split) |",
             "|---|---|" + "---|" * len(corpora) + "---|"]
    names = {GENERALISATION_COMPARED: "**the shipped default** (scored as shipped; it was trained on every "
                                      "family, so it has no fold)",
             "logistic": "logistic-regression baseline (three sets)",
             "logistic-clean": "the same on the clean view only, L2 C = 0.01 (three sets)",
             CROSS_VALIDATED_AS: f"the shipped default's recipe, `{CROSS_VALIDATED_AS}` (three sets)"}
    if best != CROSS_VALIDATED_AS:
        names[best] = f"lowest pooled EER of the candidates, `{best}` (three sets; not the shipped recipe)"
    for name, label in names.items():
        if name not in record["test"]:
            continue
        folds = record["candidates"].get(name)
        cells = [f"{folds['pooled']['eer']:.1f} ({folds['pooled']['eer_low']:.1f}-{folds['pooled']['eer_high']:.1f})"
                 if folds else "-"]
        for corpus in corpora:
            unseen = record["test"][name][corpus]["unseen"]
            cells.append(f"{unseen['eer']:.1f} ({unseen['eer_low']:.1f}-{unseen['eer_high']:.1f})")
        worst = worst_channel_loss(record["test"][name])
        cells.append("-" if worst is None else f"{worst[0]:+.1f} ({worst[1]}, {worst[2]})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", f"Machine: {record['machine']}; `python benchmarks/generalisation.py` (every candidate, fold and "
                  "test split, and each candidate's minutes: `docs/generalisation.md`)."]
    return "\n".join(lines)


def state_windows_table(record: dict) -> str:
    """`benchmarks/state_windows.py`: per model, the wall seconds of `detect` with windows of audio and with state
    windows against one pass in 30 s pieces (and the authors' whole-file loop where run), and how far state windows
    move the windows' log-odds and verdicts."""
    rows = record["rows"]
    lines = ["| model | `windows` default | detect, windows of audio | detect, state windows | one pass in 30 s "
             "pieces | authors' whole-file loop | \\|log-odds difference\\| per window: max / median (spread) | "
             "window verdicts kept |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        seconds = row["seconds"]
        one_pass = seconds["one pass in 30 s pieces"]
        authors = seconds.get("authors' whole-file loop")
        cells = [row["model"], row["default"]]
        cells += [f"{seconds[path]:.1f} s ({seconds[path] / one_pass:.2f}x)" for path in ("windows of audio",
                                                                                           "state windows")]
        cells += [f"{one_pass:.1f} s (1x)", "-" if authors is None else f"{authors:.1f} s ({authors / one_pass:.2f}x)"]
        cells += [f"{row['max_abs_diff']:.3f} / {row['median_abs_diff']:.3f} ({row['window_spread']:.2f})",
                  f"{row['verdict_agreement']:.0%} of {row['windows']}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"One recording of {rows[0]['recording_seconds']:g} s of {rows[0]['recording']}; "
                  f"wall seconds (and their ratio to one pass in 30 s pieces). {run_line(record)}"]
    if record.get("splits"):
        lines += ["", state_windows_splits_table(record["splits"])]
    return "\n".join(lines)


def state_windows_splits_table(splits: list[dict]) -> str:
    """The shipped default's verdicts on each test split through both paths of `detect`."""
    paths = ("windows of audio", "state windows")
    lines = ["| test split (clips; longer than a window) | EER %: windows of audio / state windows | unseen-generator "
             "EER %: audio / states | fakes passed / genuine flagged: audio | the same: states | clip verdicts kept | "
             "largest clip log-odds shift | seconds: audio / states |", "|---|---|---|---|---|---|---|---|"]
    for split in splits:
        audio, states = (split["paths"][path] for path in paths)
        unseen = ("-" if audio["unseen_eer"] is None
                  else f"{100 * audio['unseen_eer']:.1f} / {100 * states['unseen_eer']:.1f} ({split['unseen_spoofs']} spoofs)")
        cells = [f"{split['corpus']} ({split['clips']}; {split['longer_than_a_window']})",
                 f"{100 * audio['eer']:.1f} / {100 * states['eer']:.1f}", unseen]
        cells += [f"{100 * path['fakes_passed']:.0f} / {100 * path['genuine_flagged']:.0f} %" for path in (audio, states)]
        cells += [f"{split['verdict_agreement']:.0%}", f"{split['max_abs_diff']:.2f}",
                  f"{audio['seconds']:.1f} / {states['seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "The shipped default's `detect` (default settings but the path) on every clip of each test split, "
                  "decoded beforehand; fakes passed and genuine clips flagged at threshold 0."]
    return "\n".join(lines)


def localisation_table(record: dict) -> str:
    """`benchmarks/localisation.py`: one column per system, EER % (95 % intervals where measured), then the flagged
    stretches' IoU with the inserted spans, the splices called bona fide and the bona fide originals flagged."""
    rows = record["rows"]
    lines = ["| held-back splices | " + " | ".join(row["system"] for row in rows) + " |",
             "|---" * (len(rows) + 1) + "|"]
    for metric in rows[0]["metrics"]:
        label = metric.replace("segment_eer_", "segment EER, ").replace("range_eer", "range-based EER")
        label = label.replace("utterance_eer", "utterance EER") + " (%)"
        cells = []
        for row in rows:
            cell = f"{100 * row['metrics'][metric]:.1f}"
            if metric in row["intervals"]:
                low, high = row["intervals"][metric]
                cell += f" ({100 * low:.1f}-{100 * high:.1f})"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| IoU of the flagged stretches, mean | " + " | ".join(f"{row['iou_mean']:.2f}" for row in rows)
                 + " |")
    lines.append("| splices with IoU >= 0.5 (%) | " + " | ".join(f"{100 * row['iou_hit_share']:.0f}" for row in rows)
                 + " |")
    lines.append("| splices called bona fide (%) | "
                 + " | ".join(f"{100 * row['called_bonafide_share']:.0f}" for row in rows) + " |")
    lines.append("| bona fide originals called spoof or partly spoofed (%) | "
                 + " | ".join(f"{100 * row['originals_flagged_share']:.0f}" for row in rows) + " |")
    margins = [margin_sentence(row) for row in rows if "margin_sweep" in row]
    if margins:
        lines += ["", "The stretch margin's trade-off (`docs/localisation-margins.png`): " + "; ".join(margins) + "."]
    corpora = rows[0]["corpora"]
    counts = ", ".join(f"{name} {count['utterances']} ({count['spliced']} spliced)" for name, count in corpora.items())
    models = "; ".join(f"{row['system']}: `{row['model']}`, protocol {row['protocol']}"
                       + (" (state windows)" if row.get("state_windows") else "") for row in rows)
    lines += ["", f"Utterances: {counts}. Models: {models}. {run_line(record)}"]
    return "\n".join(lines)


def margin_sentence(row: dict) -> str:
    """One system's `margin_sweep` in words: the shares of splices called bona fide and of originals flagged at its
    model's own stretch margin and, when that is not 0, at margin 0, where it calls the fewest splices bona fide."""
    sweep = row["margin_sweep"]

    def at(margin: float) -> str:
        index = sweep["margins"].index(margin)
        return (f"{100 * sweep['called_bonafide_share'][index]:.1f} % of the splices called bona fide and "
                f"{100 * sweep['originals_flagged_share'][index]:.1f} % of the originals flagged")

    sentence = f"{row['system']}, at its margin {row['stretch_margin']:.2f}: {at(row['stretch_margin'])}"
    return sentence + (f"; at 0: {at(0.0)}" if row["stretch_margin"] else "")


def space_load_table(record: dict) -> str:
    """`benchmarks/space_load.py`: each load round (answered requests, latency percentiles, the app's memory against
    the first round's), the sequential service time and the in-process baseline, then the memory after idle."""
    rounds = record["rows"]
    first = rounds[0]["rss_mib"]
    lines = ["| phase | requests answered / sent | req/s | p50 s | p99 s | app RSS MiB (vs round 1) | uploads left |",
             "|---|---|---|---|---|---|---|"]
    sequential = record["sequential"]
    lines.append(f"| 1 client, sequential | {sequential['requests']} / {sequential['requests']} | "
                 f"{sequential['requests_per_second']:.2f} | {sequential['p50_s']:.2f} | {sequential['p99_s']:.2f} | | |")
    for index, phase in enumerate(rounds, 1):
        lines.append(f"| {record['clients']} clients, round {index} | {phase['answered']} / {phase['sent']} | "
                     f"{phase['requests_per_second']:.2f} | {phase['p50_s']:.2f} | {phase['p99_s']:.2f} | "
                     f"{phase['rss_mib']:.0f} ({phase['rss_mib'] / first:.2f}x) | {phase['uploads_left']} |")
    baseline = record.get("in_process")
    if baseline:
        lines.append(f"| detection API in-process (baseline), {record['concurrency']} at a time | "
                     f"{baseline['requests']} / {baseline['requests']} | {baseline['requests_per_second']:.2f} | "
                     f"{baseline['p50_s']:.2f} | {baseline['p99_s']:.2f} | | |")
    lines += ["", f"Model: {record['model']}; {record['clients']} clients for {record['seconds']:g} s per round, app "
                  f"concurrency {record['concurrency']}. App RSS {record['rss_started_mib']:.0f} MiB at start, "
                  f"{record['rss_after_idle_mib']:.0f} MiB after {record['idle_seconds']:g} s idle "
                  f"({record['rss_after_idle_vs_first']:.2f}x round 1's; goal: within 10 %); every request answered: "
                  f"{'yes' if record['every_request_answered'] else 'no'}. {run_line(record)}"]
    return "\n".join(lines)


def metrics_table(record: dict) -> str:
    """`benchmarks/metrics.py`: the per-threshold loop against the vectorised EER at each trial count, then the time
    of all four metrics on the large run."""
    lines = ["| trials | per-threshold loop s (baseline) | vectorised EER s | speed-up | max abs EER difference |",
             "|---|---|---|---|---|"]
    for row in record["rows"]:
        lines.append(f"| {row['trials']:,} | {row['loop_s']:.3f} | {row['vectorised_s']:.4f} | {row['speedup']:.0f}x | "
                     f"{row['eer_difference']:.0e} |")
    large = record["large"]
    lines += ["", f"EER + minDCF + actDCF + CLLR on {large['trials']:,} trials: {large['all_metrics_s']:.2f} s (EER "
                  f"alone {large['eer_s']:.2f} s), best of {large['repeats']}. Baseline: the per-threshold loop of the "
                  f"authors' In-the-Wild scoring script, one run, same EER rule. {run_line(record)}"]
    return "\n".join(lines)


def rawboost_table(record: dict) -> str:
    """`benchmarks/rawboost.py`: audio seconds augmented per second by each RawBoost algorithm; the authors' code and
    the speed-up over it only where the run timed it."""
    rows = record["rows"]
    authors = all(row["authors_audio_seconds_per_second"] for row in rows)
    header = ["RawBoost algorithm", "nes2net, audio s/s"]
    header += ["authors' code, audio s/s", "speed-up"] if authors else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row["algorithm"]), f"{row['audio_seconds_per_second']:.0f}"]
        if authors:
            cells += [f"{row['authors_audio_seconds_per_second']:.0f}", f"{row['speedup']:.1f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    baseline = ("Baseline: the authors' code under numpy < 2, in its own interpreter." if authors else
                "The authors' code was not timed in this run (it needs `--authors DIR --authors-python PYTHON`).")
    lines += ["", f"{record['clips']} clips of {record['seconds']:g} s, best of {record['repeats']} runs. {baseline} "
                  f"{run_line(record)}"]
    return "\n".join(lines)


def data_table(record: dict) -> str:
    """`benchmarks/data.py`: each build step's wall-clock seconds against `Dataset.from_generator`, then each reader's
    output samples per CPU-second against a `soundfile.read` loop."""
    rows = record["rows"]
    lines = ["| build step (wall clock) | seconds | files/s | speed-up vs from_generator |", "|---|---|---|---|"]
    lines += [f"| {row['step']} | {row['seconds']:.2f} | {row['files_per_second']:,.0f} | {row['vs_baseline']:.2f}x |"
              for row in rows if row["kind"] == "build"]
    lines += ["", "| reader (per CPU-second, 1 thread) | crop (samples) | files/s | samples/s | vs baseline |",
              "|---|---|---|---|---|"]
    lines += [f"| {row['reader']} | {row['crop_samples']:,} | {row['files_per_second']:,.0f} | "
              f"{row['samples_per_second'] / 1e6:,.1f} M | {row['vs_baseline']:.2f}x |"
              for row in rows if row["kind"] == "read"]
    lines += ["", f"{record['num_files']:,} synthetic {record['seconds']:g} s FLAC files "
                  f"({record['corpus_bytes'] / 1e6:.1f} MB); readers: best of {record['repeats']} passes. "
                  f"{run_line(record)}"]
    return "\n".join(lines)


def cli_startup_table(record: dict) -> str:
    """`benchmarks/cli_startup.py`: start-up seconds of each CLI option against the CLI inside `modeling_nes2net`."""
    lines = ["| option | baseline s | today s | speed-up | torch imported (baseline / today) |",
             "|---|---|---|---|---|"]
    for row in record["rows"]:
        imported = " / ".join("yes" if row[f"{name}_imports_torch"] else "no" for name in ("baseline", "today"))
        lines.append(f"| `nes2net {row['option']}` | {row['baseline_s']:.2f} | {row['today_s']:.2f} | "
                     f"{row['ratio']:.0f}x | {imported} |")
    lines += ["", f"Baseline: the CLI inside `modeling_nes2net` at {record['baseline_revision']} (`python -m "
                  f"modeling_nes2net.cli`; it had no `--version`, so that row times its `--help`); median of "
                  f"{record['repeats']} fresh processes each, the two alternating. {run_line(record)}"]
    return "\n".join(lines)


RENDERERS: dict[str, Callable[[dict], str]] = {
    "backend.json": backend_table,
    "cli_startup.json": cli_startup_table,
    "data.json": data_table,
    "demo_model.json": demo_model_table,
    "detect.json": detect_table,
    "export.json": export_table,
    "generalisation.json": generalisation_table,
    "localisation.json": localisation_table,
    "metrics.json": metrics_table,
    "rawboost.json": rawboost_table,
    "space_load.json": space_load_table,
    "state_windows.json": state_windows_table,
}


def render(text: str, folder: Path = BENCHMARKS) -> str:
    """`text` with every rendered block replaced by what its JSON file in `folder` renders to."""

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in RENDERERS:
            raise SystemExit(f"README block: no renderer for benchmarks/{name} (known: {', '.join(RENDERERS)})")
        path = folder / name
        if not path.is_file():
            script = name.removesuffix(".json") + ".py"
            return (match[1] + f"Not measured yet: run `python benchmarks/{script}`, then `python benchmarks/render.py`."
                    + "\n" + match[3])
        return match[1] + RENDERERS[name](json.loads(path.read_text())) + "\n" + match[3]

    return BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    differing = []
    for document in DOCUMENTS:
        text = document.read_text()
        rendered = render(text, BENCHMARKS)
        if rendered != text:
            differing.append(document)
            if not args.check:
                document.write_text(rendered)
    if args.check and differing:
        names = ", ".join(str(document.relative_to(BENCHMARKS.parent)) for document in differing)
        print(f"{names} differ from the benchmarks' JSON: run python benchmarks/render.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
