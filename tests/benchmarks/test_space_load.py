"""`benchmarks/space_load.py` at a tiny size: the real app under concurrent clients answers every request, and the
JSON report holds latency percentiles and the app's memory per round and after idle."""

from __future__ import annotations

import json

import pytest

from benchmarks import space_load


def test_the_load_benchmark_answers_every_request_and_reports_memory_per_round_and_after_idle(model_dir, tmp_path):
    report_file = tmp_path / "load.json"
    assert space_load.main(["--model", str(model_dir), "--clients", "2", "--seconds", "2", "--rounds", "2", "--idle",
                            "1", "--no-baseline", "--output", str(report_file)]) == 0
    report = json.loads(report_file.read_text(encoding="utf-8"))
    rounds = report["rows"]
    assert len(rounds) == 2 and report["every_request_answered"] and "in_process" not in report
    for phase in rounds:
        assert phase["sent"] > 0 and phase["answered"] == phase["sent"] and phase["failed"] == phase["lost"] == 0
        assert 0 < phase["p50_s"] <= phase["p99_s"] and phase["rss_mib"] > 0 and phase["uploads_left"] == 0
    assert report["rss_after_idle_mib"] > 0 and report["idle_seconds"] == 1
    assert report["rss_after_idle_vs_first"] == pytest.approx(report["rss_after_idle_mib"] / rounds[0]["rss_mib"])
    assert report["benchmark"] == "space_load" and "rounds" not in report and report["machine"]["threads"] == 1
