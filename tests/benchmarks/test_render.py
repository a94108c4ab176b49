"""`benchmarks/render.py`: the README's measured tables are rendered from the benchmarks' JSON result files, and a
README table that differs from its JSON fails here."""

from __future__ import annotations

import json

import pytest

from benchmarks.render import BLOCK, README, backend_table, main, render, state_windows_table

MARKER = "<!-- rendered from benchmarks/backend.json by benchmarks/render.py -->\n"
END = "<!-- end of rendered block -->"


def backend_record(eager_speedup: float = 1.25, load_after: float = 3.5) -> dict:
    """A result file as `benchmarks/backend.py` writes it (two of its rows)."""
    machine = {"cpu": "Test CPU", "cpu_cores": 2, "gpu": None, "device": "cpu", "threads": 2, "torch": "2.13.0",
               "load_before": 6.25, "load_after": load_after}
    rows = [
        {"variant": "Nes2Net-X (2 logits)", "batch": batch, "frames": 201, "repeats": 5, "parameters": 512039,
         "macs": 91_800_000, "baseline": "our transcription of the authors' loop", "baseline_ms": baseline_ms,
         "paths": {"eager": {"ms": baseline_ms / eager_speedup, "speedup": eager_speedup, "max_abs_diff": 6e-8}}}
        for batch, baseline_ms in ((1, 67.0), (16, 198.0))
    ]
    return {"benchmark": "backend", "command": "backend.py --quick", "machine": machine, "rows": rows}


def test_readme_blocks_equal_their_json():
    text = README.read_text()
    if not BLOCK.search(text):
        pytest.skip("README.md has no rendered block yet: run a benchmark, add its marker, run benchmarks/render.py")
    assert render(text) == text, "README.md differs from the benchmarks' JSON: run python benchmarks/render.py"


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


def test_a_changed_figure_changes_the_table():
    assert "1.30x / 1.30x" in backend_table(backend_record(eager_speedup=1.3))
    assert "4.5 after" in backend_table(backend_record(load_after=4.5))


def test_check_fails_on_a_stale_readme(tmp_path, monkeypatch):
    import benchmarks.render as render_module

    (tmp_path / "backend.json").write_text(json.dumps(backend_record()))
    readme = tmp_path / "README.md"
    readme.write_text(f"{MARKER}| hand-copied |\n{END}\n")
    monkeypatch.setattr(render_module, "README", readme)
    monkeypatch.setattr(render_module, "BENCHMARKS", tmp_path)
    assert main(["--check"]) == 1
    assert main([]) == 0 and "1.25x / 1.25x" in readme.read_text()
    assert main(["--check"]) == 0


def test_a_block_without_its_json_or_renderer_is_refused_by_name(tmp_path):
    with pytest.raises(SystemExit, match="benchmarks/backend.json does not exist"):
        render(f"{MARKER}old\n{END}", folder=tmp_path)
    with pytest.raises(SystemExit, match="no renderer for benchmarks/other.json"):
        render(MARKER.replace("backend", "other") + f"old\n{END}", folder=tmp_path)


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
