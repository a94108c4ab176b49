"""`nes2net --help` / `--version` start-up: the CLI before it moved out of `modeling_nes2net` against today's.

    python benchmarks/cli_startup.py [--repeats 5] [--baseline REV] [--output FILE]

The baseline is the tree of REV (default: the last commit holding `modeling_nes2net/cli.py`, whose import ran the
model package's `__init__`, hence torch and transformers), extracted from git into a temporary folder and run as
`python -m modeling_nes2net.cli`; today's is `python -m nes2net` from this checkout. Each command runs as a fresh
process, the two alternately so that load from other processes falls on both alike; median wall-clock seconds of
`--repeats` runs after one warm-up (which fills the OS file cache for both). The last column says whether torch was
imported, read from one more run under `python -X importtime`. (The baseline has no `--version`: its row times
`--help`, the cheapest answer it had.) Writes the rows, the machine and its load to `--output` (default:
`cli_startup.json` next to this script; `benchmarks/render.py` renders it into the README).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from benchmarks.results import REPO_ROOT, git_archive, machine_record, write_results

OLD_CLI = "modeling_nes2net/cli.py"
OPTIONS = ("--help", "--version")


def baseline_revision() -> str:
    """The parent of the commit that removed `modeling_nes2net/cli.py` (or HEAD while it is still there)."""
    removed = subprocess.run(["git", "rev-list", "-1", "HEAD", "--", OLD_CLI], cwd=REPO_ROOT, check=True,
                             capture_output=True, text=True).stdout.strip()
    present = subprocess.run(["git", "cat-file", "-e", f"HEAD:{OLD_CLI}"], cwd=REPO_ROOT,
                             capture_output=True).returncode == 0
    return "HEAD" if present else f"{removed}^"


def run_once(command: list[str], tree: Path) -> float:
    """Wall-clock seconds of one run."""
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *command], cwd=tree, env=environment, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    return elapsed


def imports_torch(command: list[str], tree: Path) -> bool:
    """Whether the command imports torch, from the module list `python -X importtime` prints."""
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    result = subprocess.run([sys.executable, "-X", "importtime", *command], cwd=tree, env=environment,
                            capture_output=True, text=True)
    return any(line.split("|")[-1].strip() == "torch" for line in result.stderr.splitlines())


def measure(revision: str, repeats: int) -> list[dict]:
    """One row per option of `OPTIONS`: median seconds of the baseline CLI at `revision` and of today's, their ratio,
    and whether each imported torch."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="nes2net-cli-baseline.") as baseline_tree:
        git_archive(revision, "modeling_nes2net", Path(baseline_tree))
        variants = {
            "baseline": (["-m", "modeling_nes2net.cli"], Path(baseline_tree)),
            "today": (["-m", "nes2net"], REPO_ROOT),
        }
        for option in OPTIONS:
            times: dict[str, list[float]] = {name: [] for name in variants}
            # the baseline had no --version: --help was its cheapest answer
            commands = {name: ([*module, "--help" if option == "--version" and name == "baseline" else option], tree)
                        for name, (module, tree) in variants.items()}
            for step in range(1 + repeats):
                for name, (command, tree) in commands.items():
                    elapsed = run_once(command, tree)
                    if step:
                        times[name].append(elapsed)
            baseline, today = statistics.median(times["baseline"]), statistics.median(times["today"])
            rows.append({"option": option, "baseline_s": baseline, "today_s": today, "ratio": baseline / today,
                         **{f"{name}_imports_torch": imports_torch(command, tree)
                            for name, (command, tree) in commands.items()}})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="CPU only, no --device: it times the CLI's start-up; no model runs.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", default=None, metavar="REV", help="git revision of the baseline CLI")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("cli_startup.json"))
    args = parser.parse_args(argv)
    revision = args.baseline or baseline_revision()
    short = subprocess.run(["git", "rev-parse", "--short", revision], cwd=REPO_ROOT, capture_output=True,
                           text=True, check=True).stdout.strip()
    machine = machine_record("cpu", 1)
    rows = measure(revision, args.repeats)
    for row in rows:
        print(row)
    write_results(args.output, "cli_startup", machine, rows, {"baseline_revision": short, "repeats": args.repeats})
    return 0


if __name__ == "__main__":
    sys.exit(main())
