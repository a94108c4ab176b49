"""`benchmarks/render.py`: the README's measured tables are rendered from the benchmarks' JSON result files, and a
README table that differs from its JSON fails here."""

from __future__ import annotations

import json

import pytest

from benchmarks.render import BENCHMARKS, BLOCK, DOCUMENTS, GENERALISATION_BASELINES, GENERALISATION_COMPARED, \
    README, backend_table, cli_startup_table, data_table, demo_model_table, detect_table, export_table, \
    generalisation_table, localisation_table, main, metrics_table, rawboost_table, render, space_load_table, \
    state_windows_table
from training.default_model import CROSS_VALIDATED_AS

MARKER = "<!-- rendered from benchmarks/backend.json by benchmarks/render.py -->\n"
END = "<!-- end of rendered block -->"


def machine(load_after: float = 3.5, **extra) -> dict:
    return {"cpu": "Test CPU", "cpu_cores": 2, "gpu": None, "device": "cpu", "threads": 2, "torch": "2.13.0",
            "load_before": 6.25, "load_after": load_after, **extra}


def backend_record(eager_speedup: float = 1.25, load_after: float = 3.5) -> dict:
    """A result file as `benchmarks/backend.py` writes it (two of its rows)."""
    rows = [
        {"variant": "Nes2Net-X (2 logits)", "batch": batch, "frames": 201, "repeats": 5, "parameters": 512039,
         "macs": 91_800_000, "baseline": "our transcription of the authors' loop", "baseline_ms": baseline_ms,
         "paths": {"eager": {"ms": baseline_ms / eager_speedup, "speedup": eager_speedup, "max_abs_diff": 6e-8}}}
        for batch, baseline_ms in ((1, 67.0), (16, 198.0))
    ]
    return {"benchmark": "backend", "command": "backend.py --quick", "machine": machine(load_after), "rows": rows}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.parent.name + "/" + path.name)
def test_document_blocks_equal_their_json(document):
    text = document.read_text()
    assert BLOCK.search(text), f"{document} has no rendered block"
    assert render(text) == text, f"{document} differs from the benchmarks' JSON: run python benchmarks/render.py"


def test_a_block_is_replaced_by_its_json_and_the_text_around_it_kept(tmp_path):
    (tmp_path / "backend.json").write_text(json.dumps(backend_record()))
    rendered = render(f"before\n{MARKER}| hand-copied | 9.99x |\n{END}\nafter\n", folder=tmp_path)
    assert "9.99x" not in rendered
    assert rendered.startswith(f"before\n{MARKER}| back-end (D = 1024, T = 201) |")
    assert rendered.endswith(f"{END}\nafter\n")
    assert "| Nes2Net-X (2 logits) | 512,039 | 91.80 M | 67.0 / 198.0 | 1.25x / 1.25x | 6e-08 |" in rendered


def test_the_table_names_its_baseline_machine_threads_and_load():
    footer = backend_table(backend_record()).splitlines()[-1]
    assert footer.startswith("Baseline: our transcription of the authors' loop; median of 5 alternating runs.")
    assert "Test CPU (2 cores), cpu, 2 threads" in footer
    assert "load average 6.25 before / 3.5 after" in footer
    assert "`python benchmarks/backend.py --quick`" in footer


def test_cpu_time_speed_ups_get_their_own_columns_when_the_run_recorded_them():
    record = backend_record()
    for row in record["rows"]:
        row["paths"]["eager"] |= {"cpu_ms": 10.0, "cpu_speedup": 1.6}
    table = backend_table(record)
    assert "| eager: speed-up, batch 1 / 16 | eager: CPU-time speed-up, batch 1 / 16 | max abs diff |" in table
    assert "| 1.25x / 1.25x | 1.60x / 1.60x | 6e-08 |" in table
    assert "CPU-time" not in backend_table(backend_record())


def test_a_changed_figure_changes_the_table():
    assert "1.30x / 1.30x" in backend_table(backend_record(eager_speedup=1.3))
    assert "4.5 after" in backend_table(backend_record(load_after=4.5))


def test_check_fails_on_a_stale_readme(tmp_path, monkeypatch):
    import benchmarks.render as render_module

    (tmp_path / "backend.json").write_text(json.dumps(backend_record()))
    readme = tmp_path / "README.md"
    readme.write_text(f"{MARKER}| hand-copied |\n{END}\n")
    monkeypatch.setattr(render_module, "DOCUMENTS", (readme,))
    monkeypatch.setattr(render_module, "BENCHMARKS", tmp_path)
    assert main(["--check"]) == 1
    assert main([]) == 0 and "1.25x / 1.25x" in readme.read_text()
    assert main(["--check"]) == 0


def test_every_table_of_the_readmes_measured_section_is_rendered():
    """No hand-copied figures: each table line under "## Measured" sits inside a block `render` rewrites."""
    section = README.read_text().split("\n## Measured", 1)[1].split("\n## ", 1)[0]
    outside = BLOCK.sub("", section)
    assert section.count("\n|") > 20
    assert [line for line in outside.splitlines() if line.startswith("|")] == []


def test_a_block_without_its_json_says_so_and_a_block_without_renderer_is_refused(tmp_path):
    rendered = render(f"{MARKER}| hand-copied | 9.99x |\n{END}", folder=tmp_path)
    assert rendered == f"{MARKER}Not measured yet: run `python benchmarks/backend.py`, then `python benchmarks/render.py`.\n{END}"
    with pytest.raises(SystemExit, match="no renderer for benchmarks/other.json"):
        render(MARKER.replace("backend", "other") + f"old\n{END}", folder=tmp_path)


def localisation_record(head_iou_hits: float = 0.8) -> dict:
    """A result file as `benchmarks/localisation.py` writes it (two of its systems)."""
    machine = {"cpu": "Test CPU", "cpu_cores": 2, "gpu": None, "device": "cpu", "threads": 1, "torch": "2.13.0",
               "load_before": 3.0, "load_after": 4.0}
    metrics = {"segment_eer_20ms": 0.4, "segment_eer_640ms": 0.3, "range_eer": 0.35, "utterance_eer": 0.25}
    rows = [{"system": system, "model": model, "protocol": "windows", "state_windows": system == "frame head",
             "corpora": {"mini": {"utterances": 9, "spliced": 6}},
             "metrics": {name: value * scale for name, value in metrics.items()},
             "intervals": {"utterance_eer": (0.1 * scale, 0.4 * scale)}, "iou_mean": hits * 0.9,
             "iou_hit_share": hits, "called_bonafide_share": 0.5 - hits / 2, "originals_flagged_share": 0.2 + hits / 10}
            for system, model, scale, hits in (("windows", "default_model", 1.0, 0.3),
                                               ("frame head", "default_frame_model", 0.5, head_iou_hits))]
    return {"benchmark": "localisation", "command": "localisation.py --threads 1", "machine": machine, "rows": rows}


def test_the_localisation_table_has_one_column_per_system_and_every_figure():
    table = localisation_table(localisation_record())
    lines = table.splitlines()
    assert lines[0] == "| held-back splices | windows | frame head |"
    assert "| segment EER, 20ms (%) | 40.0 | 20.0 |" in lines
    assert "| utterance EER (%) | 25.0 (10.0-40.0) | 12.5 (5.0-20.0) |" in lines
    assert "| splices with IoU >= 0.5 (%) | 30 | 80 |" in lines
    assert "| splices called bona fide (%) | 35 | 10 |" in lines
    assert "| bona fide originals called spoof or partly spoofed (%) | 23 | 28 |" in lines
    assert "mini 9 (6 spliced)" in lines[-1] and "windows: `default_model`, protocol windows;" in lines[-1]
    assert "frame head: `default_frame_model`, protocol windows (state windows)" in lines[-1]
    assert "`python benchmarks/localisation.py --threads 1`" in lines[-1]
    assert "| splices with IoU >= 0.5 (%) | 30 | 65 |" in localisation_table(localisation_record(0.65))


def test_the_localisation_table_says_what_the_stretch_margin_trades_when_the_run_swept_it():
    record = localisation_record()
    assert "trade-off" not in localisation_table(record)  # a run from before the sweep: no sentence
    record["rows"][1] |= {"stretch_margin": 1.18, "margin_sweep": {
        "margins": [0.0, 1.0, 1.18], "called_bonafide_share": [0.01, 0.015, 0.02],
        "originals_flagged_share": [0.5, 0.2, 0.18]}}
    line = localisation_table(record).splitlines()[-3]
    assert line == ("The stretch margin's trade-off (`docs/localisation-margins.png`): frame head, at its margin 1.18: "
                    "2.0 % of the splices called bona fide and 18.0 % of the originals flagged; at 0: 1.0 % of the "
                    "splices called bona fide and 50.0 % of the originals flagged.")
    record["rows"][1] |= {"stretch_margin": 0.0}  # the model's own margin is 0: said once
    assert localisation_table(record).splitlines()[-3].endswith(
        "frame head, at its margin 0.00: 1.0 % of the splices called bona fide and 50.0 % of the originals flagged.")


def demo_model_record(shipped_batch_16: float = 300.0) -> dict:
    """A result file as `benchmarks/demo_model.py` writes it: two models, two paths, two batch sizes."""
    rows = []
    for model, frontend, parameters, size in (("shipped", "whisper", 4_300_000, 17_200_000),
                                              ("replaced", "spectrogram", 512_039, 2_200_000)):
        for path in ("PyTorch fp32", "ONNX Runtime int8"):
            for batch, throughput in ((1, 100.0), (16, shipped_batch_16 if model == "shipped" else 200.0)):
                rows.append({"model": model, "folder": "default_model", "frontend": frontend, "path": path,
                             "batch": batch, "samples": 64_600, "repeats": 10, "ms": 40.0,
                             "audio_seconds_per_second": throughput, "vs_fp32_batch_1": throughput / 100.0,
                             "parameters": parameters, "model_bytes": size})
    return {"benchmark": "demo_model", "command": "demo_model.py", "machine": machine(replaced_revision="abc1234"),
            "rows": rows}


def test_the_demo_table_puts_the_shipped_default_next_to_the_model_it_replaced():
    table = demo_model_table(demo_model_record())
    assert ("| model | parameters | folder | PyTorch fp32, audio s/s at batch 1 / 16 | "
            "ONNX Runtime int8, audio s/s at batch 1 / 16 |") in table
    assert "| **the shipped default** (whisper front-end) | 4,300,000 | 17.2 MB | 100 / 300 | 100 / 300 |" in table
    assert "| the default it replaced (spectrogram front-end, abc1234) | 512,039 | 2.2 MB | 100 / 200 | 100 / 200 |" in table
    assert "on 4.04 s clips, median of 10 alternating runs" in table
    assert "100 / 450" in demo_model_table(demo_model_record(shipped_batch_16=450.0))


def export_record(fp32_rtf: float = 0.5) -> dict:
    """A result file as `benchmarks/export.py` writes it."""
    rows = []
    for name, seconds, authors in (("clips", 33.0, 0.42), ("long file", 60.0, 0.35)):
        for path, rtf, drift in (("authors' loop, fp32", authors, None), ("PyTorch fp32", fp32_rtf, 0.0),
                                 ("ONNX Runtime int8", 0.21, 1e-2)):
            rows.append({"path": path, "input": name, "audio_seconds": seconds, "rtf": rtf, "speedup": authors / rtf,
                         "max_log_odds_drift": drift})
    extra = {"model": "XLS-R 300M widths with 4 of its 24 transformer layers", "baseline": "the authors' loop",
             "inputs": {"clips": "3 clips (33 s)", "long file": "60 s file"},
             "onnx_export_drift": {"fp32": 1.1e-6, "int8": 5.7e-4}}
    return {"benchmark": "export", "command": "export.py --quick", "machine": machine(**extra), "rows": rows}


def test_the_export_table_gives_each_path_against_the_authors_loop_on_each_input():
    table = export_table(export_record())
    assert "| path | RTF, 3 clips (33 s) | vs authors | RTF, 60 s file | vs authors | max log-odds drift |" in table
    assert "| authors' loop, fp32 | 0.420 | 1.00x | 0.350 | 1.00x |  |" in table
    assert "| PyTorch fp32 | 0.500 | 0.84x | 0.500 | 0.70x | 0e+00 |" in table
    assert "| ONNX Runtime int8 | 0.210 | 2.00x | 0.210 | 1.67x | 1e-02 |" in table
    assert "Baseline: the authors' loop." in table and "fp32 1.1e-06, int8 5.7e-04" in table
    assert "`python benchmarks/export.py --quick`" in table
    assert "| PyTorch fp32 | 0.250 | 1.68x |" in export_table(export_record(fp32_rtf=0.25))


def detect_record(batched_ratio: float = 2.5) -> dict:
    """A result file as `benchmarks/detect.py` writes it: throughput rows, then memory rows."""
    loop = "short clips, one file at a time"
    rows = [
        {"kind": "throughput", "case": loop, "model": "tiny", "batch": 1, "quantize": None, "audio": 170.0,
         "wall": 2.0, "audio_seconds_per_second": 85.0, "baseline": loop, "ratio": 1.0, "rss_mb": 480.0},
        {"kind": "throughput", "case": "short clips, batched", "model": "tiny", "batch": 16, "quantize": None,
         "audio": 170.0, "wall": 0.8, "audio_seconds_per_second": 85.0 * batched_ratio, "baseline": loop,
         "ratio": batched_ratio, "rss_mb": 500.0},
        {"kind": "throughput", "case": "short clips, batched, int8", "model": "tiny", "batch": 16, "quantize": "int8",
         "audio": 170.0, "wall": 1.6, "audio_seconds_per_second": 106.0, "baseline": loop, "ratio": 1.25,
         "rss_mb": 500.0},
        {"kind": "throughput", "case": "4 s clips, --quantize bf16", "model": "xlsr", "batch": 2, "quantize": "bf16",
         "audio": 16.0, "wall": 4.0, "audio_seconds_per_second": 4.0, "baseline": "4 s clips, float32", "ratio": 4.1,
         "rss_mb": 2500.0, "max_probability_drift": 0.004},
        {"kind": "memory", "case": "30 min recording, windows", "protocol": "windows", "minutes": 30.0,
         "outcome": "scored 1800 s (400 audio s/s)", "wall": 4.5, "rss_mb": 491.0, "loaded_mb": 406.0, "ratio": 0.99},
    ]
    return {"benchmark": "detect", "command": "detect.py", "machine": machine(threads=1), "rows": rows}


def test_the_detect_tables_give_throughput_and_memory_against_their_baselines():
    lines = detect_table(detect_record()).splitlines()
    throughput, memory = lines.index(""), lines.index("", lines.index("") + 1)
    assert "| short clips, batched | tiny | 16 | 212.5 | 2.50x | short clips, one file at a time | 500 |" in lines[:throughput]
    assert "| 4 s clips, --quantize bf16 | xlsr | 2 | 4.0 | 4.10x | 4 s clips, float32 | 2500 |" in lines[:throughput]
    assert lines[memory - 1] == "| windows | 30 min | scored 1800 s (400 audio s/s) | 491 | 0.99x | 406 | 85 |"
    assert lines[-1].startswith("Memory baseline: the shortest recording under the same protocol (tiny model, "
                                "batch 16). Max |difference| of p(bona fide) from float32 (XLS-R sized): bf16 0.0040.")
    assert "| short clips, batched | tiny | 16 | 255.0 | 3.00x |" in detect_table(detect_record(batched_ratio=3.0))


def space_load_record(idle_mib: float = 700.0) -> dict:
    """A result file as `benchmarks/space_load.py` writes it: two rounds, no baseline."""
    rounds = [{"sent": 40, "answered": 40, "failed": 0, "lost": 0, "requests_per_second": 2.0, "p50_s": 1.5,
               "p90_s": 2.5, "p99_s": 3.0, "rss_mib": rss, "uploads_left": 0, "failures": []} for rss in (700.0, 770.0)]
    return {"benchmark": "space_load", "command": "space_load.py --clients 4", "machine": machine(), "rows": rounds,
            "model": "embedded default model", "clients": 4, "seconds": 10.0, "concurrency": 2, "threads": 1,
            "sequential": {"p50_s": 0.5, "p90_s": 0.6, "p99_s": 0.7, "requests": 9, "requests_per_second": 1.8,
                           "median_s": 0.5}, "rss_started_mib": 600.0, "idle_seconds": 40.0,
            "rss_after_idle_mib": idle_mib, "rss_after_idle_vs_first": idle_mib / 700.0,
            "rss_last_round_vs_first": 1.1, "every_request_answered": True}


def test_the_space_load_table_gives_each_round_and_the_memory_after_idle():
    lines = space_load_table(space_load_record()).splitlines()
    assert "| 4 clients, round 2 | 40 / 40 | 2.00 | 1.50 | 3.00 | 770 (1.10x) | 0 |" in lines
    assert "| 1 client, sequential | 9 / 9 | 1.80 | 0.50 | 0.70 | | |" in lines
    assert "700 MiB after 40 s idle (1.00x round 1's; goal: within 10 %)" in lines[-1]
    assert "`python benchmarks/space_load.py --clients 4`" in lines[-1]
    assert "(1.20x round 1's" in space_load_table(space_load_record(idle_mib=840.0))


def metrics_record(all_metrics_s: float = 0.07) -> dict:
    """A result file as `benchmarks/metrics.py` writes it: two loop sizes and the large run."""
    rows = [{"trials": trials, "loop_s": loop_s, "vectorised_s": loop_s / speedup, "speedup": speedup,
             "eer_difference": 0.0, "interpolation_difference": 1e-5}
            for trials, loop_s, speedup in ((2_000, 0.005, 34.0), (200_000, 6.6, 244.0))]
    large = {"trials": 1_000_000, "repeats": 5, "eer_s": 0.05, "all_metrics_s": all_metrics_s,
             "metrics": {"eer": 0.07, "min_dcf": 0.18, "act_dcf": 0.21, "cllr": 0.33}}
    return {"benchmark": "metrics", "command": "metrics.py", "machine": machine(threads=1), "rows": rows,
            "large": large}


def test_the_metrics_table_gives_the_loop_against_the_vectorised_code_and_the_four_metrics_time():
    table = metrics_table(metrics_record())
    assert "| 200,000 | 6.600 | 0.0270 | 244x | 0e+00 |" in table
    assert table.splitlines()[-1].startswith("EER + minDCF + actDCF + CLLR on 1,000,000 trials: 0.07 s (EER alone "
                                             "0.05 s), best of 5. Baseline: the per-threshold loop")
    assert "on 1,000,000 trials: 0.33 s" in metrics_table(metrics_record(all_metrics_s=0.33))


def rawboost_record(authors: float | None = None) -> dict:
    """A result file as `benchmarks/rawboost.py` writes it; `authors`, the authors' throughput where it was timed."""
    rows = [{"algorithm": algorithm, "audio_seconds_per_second": ours, "authors_audio_seconds_per_second": authors,
             "speedup": ours / authors if authors else None} for algorithm, ours in ((4, 420.0), (8, 760.0))]
    return {"benchmark": "rawboost", "command": "rawboost.py", "machine": machine(threads=1), "rows": rows,
            "clips": 20, "seconds": 4.0, "repeats": 3}


def test_the_rawboost_table_has_the_authors_columns_only_when_the_run_timed_their_code():
    table = rawboost_table(rawboost_record())
    assert table.splitlines()[0] == "| RawBoost algorithm | nes2net, audio s/s |"
    assert "| 4 | 420 |" in table and "The authors' code was not timed in this run" in table
    timed = rawboost_table(rawboost_record(authors=80.0))
    assert timed.splitlines()[0] == "| RawBoost algorithm | nes2net, audio s/s | authors' code, audio s/s | speed-up |"
    assert "| 8 | 760 | 80 | 9.5x |" in timed and "Baseline: the authors' code under numpy < 2" in timed


def data_record(build_seconds: float = 2.0) -> dict:
    """A result file as `benchmarks/data.py` writes it: two build steps and two readers."""
    rows = [{"kind": "build", "step": step, "seconds": seconds, "files_per_second": 1000 / seconds,
             "vs_baseline": 9.2 / seconds}
            for step, seconds in (("baseline: Dataset.from_generator + to_parquet", 9.2),
                                  ("nes2net build_dataset (check + write shards)", build_seconds))]
    rows += [{"kind": "read", "reader": reader, "crop_samples": 64_600, "samples_per_second": rate,
              "files_per_second": rate / 64_600, "vs_baseline": rate / 129_200_000}
             for reader, rate in (("baseline: soundfile.read + numpy crop", 129_200_000),
                                  ("nes2net load_training_dataset", 96_900_000))]
    return {"benchmark": "data", "command": "data.py --num-files 1000", "machine": machine(threads=1), "rows": rows,
            "num_files": 1000, "seconds": 4.0, "corpus_bytes": 52_000_000, "repeats": 3}


def test_the_data_tables_give_the_build_against_from_generator_and_the_readers_against_soundfile():
    table = data_table(data_record())
    assert "| nes2net build_dataset (check + write shards) | 2.00 | 500 | 4.60x |" in table
    assert "| nes2net load_training_dataset | 64,600 | 1,500 | 96.9 M | 0.75x |" in table
    assert "1,000 synthetic 4 s FLAC files (52.0 MB); readers: best of 3 passes." in table
    assert "| 2.30 | 435 | 4.00x |" in data_table(data_record(build_seconds=2.3))


def cli_startup_record(today_help_s: float = 0.4) -> dict:
    """A result file as `benchmarks/cli_startup.py` writes it."""
    rows = [{"option": option, "baseline_s": baseline, "today_s": today, "ratio": baseline / today,
             "baseline_imports_torch": True, "today_imports_torch": False}
            for option, baseline, today in (("--help", 38.4, today_help_s), ("--version", 26.4, 0.3))]
    return {"benchmark": "cli_startup", "command": "cli_startup.py --repeats 3", "machine": machine(threads=1),
            "rows": rows, "baseline_revision": "abc1234", "repeats": 3}


def test_the_cli_startup_table_gives_each_option_against_the_old_cli():
    table = cli_startup_table(cli_startup_record())
    assert "| `nes2net --help` | 38.40 | 0.40 | 96x | yes / no |" in table
    assert "| `nes2net --version` | 26.40 | 0.30 | 88x | yes / no |" in table
    assert "Baseline: the CLI inside `modeling_nes2net` at abc1234" in table and "median of 3 fresh processes" in table
    assert "| 38.40 | 0.80 | 48x |" in cli_startup_table(cli_startup_record(today_help_s=0.8))


def test_the_state_windows_table_gives_each_path_against_one_pass():
    machine = {"cpu": "Test CPU", "cpu_cores": 2, "gpu": None, "device": "cpu", "threads": 2, "torch": "2.13.0",
               "load_before": 1.0, "load_after": 1.5}
    row = {"model": "XLS-R sized", "default": "state windows", "recording": "concatenated mini-antispoof test clips",
           "recording_seconds": 120.0, "windows": 59,
           "seconds": {"windows of audio": 40.0, "state windows": 22.0, "one pass in 30 s pieces": 20.0},
           "max_abs_diff": 0.15, "median_abs_diff": 0.03, "window_spread": 0.2, "verdict_agreement": 0.95}
    record = {"benchmark": "state_windows", "command": "state_windows.py", "machine": machine,
              "rows": [{**row, "seconds": {**row["seconds"], "authors' whole-file loop": 25.0}},
                       {**row, "model": "Whisper", "default": "windows of audio"}]}
    lines = state_windows_table(record).splitlines()
    assert lines[2] == ("| XLS-R sized | state windows | 40.0 s (2.00x) | 22.0 s (1.10x) | 20.0 s (1x) | 25.0 s (1.25x) | "
                        "0.150 / 0.030 (0.20) | 95% of 59 |")
    assert lines[3].startswith("| Whisper | windows of audio |") and "| - |" in lines[3]
    assert lines[-1].startswith("One recording of 120 s of concatenated mini-antispoof test clips")


def test_the_state_windows_table_adds_each_test_splits_verdicts_both_ways():
    machine = {"cpu": "Test CPU", "cpu_cores": 2, "gpu": None, "device": "cpu", "threads": 2, "torch": "2.13.0",
               "load_before": 1.0, "load_after": 1.5}
    row = {"model": "Whisper", "default": "state windows", "recording": "concatenated test clips",
           "recording_seconds": 120.0, "windows": 59, "max_abs_diff": 8.0, "median_abs_diff": 1.0, "window_spread": 6.0,
           "verdict_agreement": 0.9, "seconds": {"windows of audio": 2.0, "state windows": 1.5,
                                                 "one pass in 30 s pieces": 1.4}}

    def path(eer, unseen, seconds):
        return {"seconds": seconds, "eer": eer, "unseen_eer": unseen, "fakes_passed": 0.25, "genuine_flagged": 0.125}

    splits = [{"corpus": "plus", "clips": 479, "unseen_spoofs": 144, "longer_than_a_window": 330,
               "paths": {"windows of audio": path(0.184, 0.179, 53.2), "state windows": path(0.157, 0.166, 40.4)},
               "verdict_agreement": 0.94, "max_abs_diff": 1.95},
              {"corpus": "mini", "clips": 88, "unseen_spoofs": 0, "longer_than_a_window": 58,
               "paths": {"windows of audio": path(0.08, None, 8.6), "state windows": path(0.09, None, 7.1)},
               "verdict_agreement": 0.95, "max_abs_diff": 1.35}]
    record = {"benchmark": "state_windows", "command": "state_windows.py", "machine": machine, "rows": [row],
              "splits": splits}
    lines = state_windows_table(record).splitlines()
    first = lines.index(next(line for line in lines if line.startswith("| test split")))
    assert lines[first + 2] == ("| plus (479; 330) | 18.4 / 15.7 | 17.9 / 16.6 (144 spoofs) | 25 / 12 % | 25 / 12 % | "
                                "94% | 1.95 | 53.2 / 40.4 |")
    assert lines[first + 3].startswith("| mini (88; 58) | 8.0 / 9.0 | - |")
    assert "test split" not in state_windows_table({**record, "splits": []})  # an older record renders as before


def generalisation_record(pooled_eers: dict[str, float]) -> dict:
    """A result file as `benchmarks/generalisation.py` writes it: the compared model and a candidate per
    `pooled_eers` name (its pooled EER; unseen-generator EER on the one test split 10 points above it)."""

    def rates(eer: float) -> dict:
        return {"eer": eer, "eer_low": eer - 2, "eer_high": eer + 2, "spoof_passed": 30.0, "bonafide_flagged": 20.0,
                "bonafide": 40, "spoof": 90}

    return {"corpora": ["toy"], "folds": [{"family": "neural vocoder", "genuine_sources": ["toy/LJSpeech"]}],
            "candidates": {name: {"description": name, "pooled": rates(eer), "folds": {"neural vocoder": rates(eer)}}
                           for name, eer in pooled_eers.items()},
            "test": {name: {"toy": {"all": rates(eer + 5), "unseen": rates(eer + 10)}}
                     for name, eer in {GENERALISATION_COMPARED: 20.0, **pooled_eers}.items()},
            "machine": "test machine, 2 cores, 1 torch thread(s), cpu"}


def test_the_generalisation_table_shows_the_shipped_recipe_and_a_better_candidate_as_not_shipped():
    baselines = dict.fromkeys(GENERALISATION_BASELINES, 36.0)
    lines = generalisation_table(generalisation_record({**baselines, CROSS_VALIDATED_AS: 33.2,
                                                        "other-candidate": 31.0})).splitlines()
    assert lines[5] == (f"| the shipped default's recipe, `{CROSS_VALIDATED_AS}` (three sets) | 33.2 (31.2-35.2) | "
                        "43.2 (41.2-45.2) | - |")
    assert lines[6] == ("| lowest pooled EER of the candidates, `other-candidate` (three sets; not the shipped "
                        "recipe) | 31.0 (29.0-33.0) | 41.0 (39.0-43.0) | - |")
    alone = generalisation_table(generalisation_record({**baselines, CROSS_VALIDATED_AS: 30.0,
                                                        "other-candidate": 31.0}))
    assert f"`{CROSS_VALIDATED_AS}` (three sets) | 30.0" in alone and "other-candidate" not in alone


def test_the_generalisation_table_gives_the_most_points_a_row_loses_under_a_codec():
    record = generalisation_record({**dict.fromkeys(GENERALISATION_BASELINES, 36.0), CROSS_VALIDATED_AS: 33.2})
    shipped = record["test"][GENERALISATION_COMPARED]["toy"]  # clean EER 25
    shipped["channels"] = {"mp3-32k": {**shipped["all"], "eer": 27.5}, "g711": {**shipped["all"], "eer": 34.1},
                           "opus-16k": {**shipped["all"], "eer": 24.0}}
    lines = generalisation_table(record).splitlines()
    assert lines[2].startswith("| **the shipped default**") and lines[2].endswith(" | +9.1 (g711, toy) |")
    assert all(line.endswith(" | - |") for line in lines[3:6])
    shipped["channels"]["g711"]["eer"] = 20.0
    assert generalisation_table(record).splitlines()[2].endswith(" | +2.5 (mp3-32k, toy) |")


def test_a_generalisation_record_without_the_shipped_recipe_is_named():
    with pytest.raises(SystemExit, match=f"no row for the shipped default's recipe '{CROSS_VALIDATED_AS}'"):
        generalisation_table(generalisation_record({"other-candidate": 31.0}))


def test_the_readme_row_of_the_shipped_recipe_is_its_cross_validation():
    """The README's cross-validation row for the shipped default's recipe is `CROSS_VALIDATED_AS`'s pooled EER, however
    another candidate ranks."""
    pooled = json.loads((BENCHMARKS / "generalisation.json").read_text())["candidates"][CROSS_VALIDATED_AS]["pooled"]
    rows = [line for line in README.read_text().splitlines() if f"`{CROSS_VALIDATED_AS}` (three sets)" in line]
    assert len(rows) == 1 and rows[0].startswith("| the shipped default's recipe")
    assert f"| {pooled['eer']:.1f} ({pooled['eer_low']:.1f}-{pooled['eer_high']:.1f}) |" in rows[0]
