"""The benchmark's small variant runs in the normal suite, so the benchmark cannot rot.

It checks that every scenario runs and reports its figures, not how fast anything is:
speed is measured by `python -m tests.bench` (see the README's Performance section).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_small_benchmark_runs_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench", "--small", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert set(figures["scenarios"]) == {str(n) for n in range(1, 9)}
    assert figures["machine"]["cores"] >= 1
    for _number, scenario in figures["scenarios"].items():
        assert scenario["result"] and not scenario["result"].startswith("ERROR"), scenario
    backfill, idle = figures["scenarios"]["1"], figures["scenarios"]["2"]
    assert backfill["requests"] >= figures["archive"]["days"]
    assert idle["files_written"] == 0
    assert idle["requests"] <= 3  # one conditional request per refetched day
    assert idle["daemon_run_s"] is not None  # the same pass, timed inside the daemon
    # What the imports alone cost, beside scenarios 2 and 3's ratios.
    assert idle["import_floor_ratio"] > 0 and figures["scenarios"]["3"]["import_floor_ratio"] > 0
    assert "feedsync benchmark" in result.stdout
