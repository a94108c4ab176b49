"""`--device cuda` on the benchmarks that run models: on a machine without CUDA each prints the one skip line and exits
0 before reading, building or writing anything; and `train_on` points the Trainer's Accelerate at the device."""

from __future__ import annotations

import importlib
import os

import pytest
import torch
from accelerate.utils import parse_flag_from_env

from benchmarks.results import train_on

SKIP_LINE = "skipped: --device cuda, but torch sees no CUDA device on this machine\n"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only machine's answer")
@pytest.mark.parametrize("benchmark, arguments", [
    ("generalisation", ["--work-dir", "{missing}"]),
    ("localisation", ["--work-dir", "{missing}", "--frame-model", "{missing}/frames"]),
    ("frontends", ["--work-dir", "{missing}"]),
    ("state_windows", []),
    ("space_load", ["--model", "{missing}/model"]),
])
def test_cuda_without_a_gpu_skips_before_any_work(benchmark, arguments, tmp_path, capsys):
    missing, output = tmp_path / "missing", tmp_path / "result.json"
    argv = [argument.format(missing=missing) for argument in arguments] + ["--device", "cuda"]
    if benchmark != "frontends":  # the only one with no result file
        argv += ["--output", str(output)]
    main = importlib.import_module(f"benchmarks.{benchmark}").main
    assert main(argv) in (0, None)
    assert capsys.readouterr().out == SKIP_LINE
    assert not missing.exists() and not output.exists()


def test_the_trainer_is_pinned_to_the_cpu_only_when_told(monkeypatch):
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    train_on("cuda")
    assert not parse_flag_from_env("ACCELERATE_USE_CPU")
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] in (":4096:8", ":16:8")  # what deterministic cuBLAS accepts
    train_on("cpu")
    assert parse_flag_from_env("ACCELERATE_USE_CPU")
