"""``scripts/bench_storage.py``'s measurements, on a tiny run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchlib import storage as bench


def test_tree_cpu_counts_a_child_that_has_exited() -> None:
    before = bench.tree_cpu_seconds([os.getpid()])
    burn = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)  # reaped: its time is in our cutime
    assert bench.tree_cpu_seconds([os.getpid()]) - before >= 0.4
    assert bench.tree_cpu_seconds([]) == 0.0


def test_run_one_measures_every_trial_and_the_cpu(tmp_path: Path) -> None:
    tmp_path.chmod(0o711)
    row = bench.run_one(tmp_path, "journal", f"journal:///{tmp_path / 'b.log'}", 2, 2, {})
    assert row["trials"] == 4
    assert 0 < row["scaling"] <= 1.0
    assert row["storage_s_per_trial"] > 0
    assert row["worker_cpu_s_per_trial"] > 0
    assert row["cpu_s_per_trial"] >= row["worker_cpu_s_per_trial"] * 0.5  # /proc/stat ticks are coarse
    assert row["server_cpu_s_per_trial"] is None
