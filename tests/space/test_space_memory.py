"""`nes2net_space.memory`: the free heap pages a request leaves behind go back to the system (issue 18 item 14:
the Space's memory must stay flat over rounds of load)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest
from tests.space.space_fixtures import REPO_ROOT

# Fragments the heap in a fresh interpreter: 100 MB of 1 KiB buffers (malloc's, not Python's small-object pools),
# every 50th kept, so the free space lies between live chunks and malloc cannot shrink the heap by itself.
FRAGMENT_AND_RELEASE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from nes2net_space.memory import release_freed_memory

def resident_mib():
    return next(int(line.split()[1]) / 1024 for line in open("/proc/self/status") if line.startswith("VmRSS"))

buffers = [bytearray(1024) for _ in range(100_000)]
kept = buffers[::50]
del buffers
before = resident_mib()
released = release_freed_memory()
print(json.dumps({"before": before, "after": resident_mib(), "released": released, "kept": len(kept)}))
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim")
def test_the_free_pages_between_live_chunks_go_back_to_the_system():
    completed = subprocess.run([sys.executable, "-c", FRAGMENT_AND_RELEASE, str(REPO_ROOT / "space")],
                               capture_output=True, text=True, timeout=120, check=True)
    measured = json.loads(completed.stdout)
    assert measured["released"] and measured["kept"] == 2_000
    assert measured["before"] - measured["after"] > 60, measured  # of the ~98 MiB freed
