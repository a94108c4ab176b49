"""`benchmarks/results.py`: the alternating timer, the CUDA skip and the result file every benchmark shares."""

from __future__ import annotations

import json
import time

import pytest
import torch

from benchmarks.results import alternating_medians, cuda_missing, machine_record, write_results


def test_runs_alternate_step_by_step_after_the_warm_up():
    calls = []
    alternating_medians({"a": (calls.append, "a"), "b": (calls.append, "b")}, repeats=3, warmup=2)
    assert calls == ["a", "b"] * 5


def test_a_sleeping_call_costs_wall_clock_time_but_no_cpu_time():
    timings = alternating_medians({"sleep": (time.sleep, 0.02)}, repeats=3, warmup=0)
    assert timings["sleep"].wall >= 0.02
    assert timings["sleep"].cpu < 0.01


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only machine's answer")
def test_cuda_on_a_machine_without_it_skips_with_one_line(capsys):
    assert cuda_missing("cuda")
    assert capsys.readouterr().out == "skipped: --device cuda, but torch sees no CUDA device on this machine\n"
    assert not cuda_missing("cpu")


def test_the_result_file_records_the_machine_and_refuses_a_folder(tmp_path):
    machine = machine_record("cpu", 2)
    returned = write_results(tmp_path / "run.json", "backend", machine, [{"batch": 1}])
    record = json.loads((tmp_path / "run.json").read_text())
    assert returned == record
    assert record["benchmark"] == "backend" and record["rows"] == [{"batch": 1}]
    assert record["machine"]["threads"] == 2 and {"load_before", "load_after"} <= set(record["machine"])
    with pytest.raises(SystemExit, match="is a folder"):
        write_results(tmp_path, "backend", machine, [])
