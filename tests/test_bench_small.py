"""The benchmark's small variant runs in the normal suite, so the benchmark cannot rot.

It checks that every scenario runs and reports its figures, not how fast anything is:
speed is measured by `python -m tests.bench` (see the README's Performance section).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import httpx

from tests.fakes.hf_api import FakeHF
from tests.fakes.hf_data import entry

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
    assert set(figures["scenarios"]) == {str(n) for n in range(1, 10)}
    assert figures["machine"]["cores"] >= 1
    for _number, scenario in figures["scenarios"].items():
        assert scenario["result"] and not scenario["result"].startswith("ERROR"), scenario
    backfill, idle = figures["scenarios"]["1"], figures["scenarios"]["2"]
    assert backfill["requests"] >= figures["archive"]["days"]
    assert idle["files_written"] == 0
    assert idle["requests"] <= 3  # one conditional request per refetched day
    assert idle["daemon_run_s"] is not None  # the same pass, timed inside the daemon
    # What the imports alone, and the least programs, cost beside scenarios 2 and 3's ratios.
    for scenario in idle, figures["scenarios"]["3"]:
        assert scenario["import_floor_ratio"] > 0 and scenario["least_program_ratio"] > 0
    bucket = figures["scenarios"]["9"]
    assert bucket["files_uploaded"] > 0 and bucket["least_upload_ratio"] > 0
    assert bucket["first_upload_files"] > bucket["files_uploaded"]
    assert "feedsync benchmark" in result.stdout


def test_only_runs_the_backfill_the_other_scenarios_measure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench", "--small", "--only", "3", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scenarios = json.loads(out.read_text())["scenarios"]
    assert set(scenarios) == {"1", "3"}
    assert not scenarios["3"]["result"].startswith("ERROR"), scenarios["3"]


def test_the_benchmarks_fake_serves_a_changed_day_changed() -> None:
    # The bench's fake encodes each answer once; set_day must drop what it cached.
    day = date(2026, 3, 2)
    url = "/api/daily_papers?date=2026-03-02&limit=100"
    with FakeHF(cache_bodies=True) as hf, httpx.Client(base_url=hf.url) as client:
        hf.set_day(day, [entry("2603.00001", "A first made-up title", day)])
        first = client.get(url)
        assert client.get(url).content == first.content  # served from the cache
        hf.set_day(day, [entry("2603.00002", "A second made-up title", day)])
        second = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200
    assert [e["paper"]["id"] for e in second.json()] == ["2603.00002"]
