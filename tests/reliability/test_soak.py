"""Reliability 7: the daemon on a 1-second schedule against faulty fakes, for minutes.

The test keeps injecting random faults into both fakes (HF: 500, 429 with Retry-After,
resets, slow answers, HTML instead of JSON; Zotero: 429, 500, 503, resets, lost responses,
Backoff) and changing the digest. The daemon must never stop, its memory must stay flat,
and once the faults stop, its last feeds and the Zotero library must be complete: every
paper of the digest, none twice.

Papers arrive during the first quarter; after it, the digest keeps its size and its papers'
upvotes change (updated papers, rendered again). Memory is compared from just after the
first quarter on, so it measures what the daemon keeps, not the size of the soak's own
library: a feed of 600 papers needs more memory to render than one of 150, leak or not.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest

from tests.fakes.hf_api import FakeHF
from tests.fakes.hf_data import entry
from tests.fakes.zotero_api import FakeZotero
from tests.memory import memory_kb
from tests.reliability.figures import record

HF_FAULTS = ["500", "429", "reset", "slow", "html", "503"]
ZOTERO_FAULTS = ["429", "500", "503", "reset", "lost", "backoff"]


def soak_entry(serial: int, day: date, upvotes: int) -> dict[str, Any]:
    return entry(f"{day:%y%m}.{serial:05d}", f"Soak paper {serial}", day, upvotes=upvotes)


def soak(tmp_path: Path, seconds: float) -> dict[str, object]:
    rng = random.Random(99)
    today = datetime.now(UTC).date()
    with FakeHF() as hf, FakeZotero() as zot:
        config = tmp_path / "feedsync.toml"
        config.write_text(
            f'data_dir = "data"\noutput_dir = "feeds"\n[source]\napi_url = "{hf.url}"\n'
            "days = 2\nretries = 1\ntimeout = 3\n"
            f'[zotero]\nenabled = true\nlibrary_id = "{zot.state.library_id}"\n'
            f'api_url = "{zot.url}"\n'
            '[topics.all-words]\ntitle = "Everything"\nquery = "upvotes:>=0"\nzotero = true\n'
            "max_items = 1000\n",
            encoding="utf-8",
        )
        env = {**os.environ, "FEEDSYNC_ZOTERO__API_KEY": zot.api_key}
        entries: list[dict] = []
        hf.set_day(today, entries)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "feedsync",
                "--config",
                str(config),
                "daemon",
                "--interval",
                "1",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        runs = Counter[str]()
        log_lines: list[str] = []

        def read_log() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                log_lines.append(line)
                if " run ok " in line:
                    runs["ok"] += 1
                elif " run failed" in line or "run crashed" in line:
                    runs["failed"] += 1

        log_reader = threading.Thread(target=read_log, daemon=True)
        log_reader.start()
        start = time.monotonic()
        samples: list[tuple[float, int]] = []
        faults = updates = 0
        serial = 0
        while time.monotonic() - start < seconds:
            assert proc.poll() is None, "".join(log_lines[-30:])
            growing = time.monotonic() - start < seconds / 4
            if growing:
                serial += 1
                entries = [*entries, soak_entry(serial, today, upvotes=rng.randint(0, 9))]
                hf.set_day(today, entries)
            elif rng.random() < 0.5:
                changed = rng.randrange(len(entries))
                entries = list(entries)
                entries[changed] = soak_entry(changed + 1, today, upvotes=rng.randint(10, 99))
                hf.set_day(today, entries)
                updates += 1
            if rng.random() < 0.4:
                hf.fault(rng.choice(HF_FAULTS), retry_after=1, delay=0.5)
                faults += 1
            if rng.random() < 0.4:
                zot.fault(rng.choice(ZOTERO_FAULTS), retry_after=0.5, backoff=0.5)
                faults += 1
            samples.append((time.monotonic() - start, memory_kb(proc.pid)))
            time.sleep(0.5)
        # Faults stop; give the daemon a few clean runs to catch up, then stop it.
        hf.state.faults.clear()
        zot.state.faults.clear()
        clean_start = runs["ok"]
        deadline = time.monotonic() + 60
        while runs["ok"] < clean_start + 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log_reader.join(10)
        assert proc.stderr is not None
        proc.stderr.close()
        feed = feedparser.parse((tmp_path / "feeds" / "all-words.atom").read_bytes())
        in_feed = {e.link.rsplit("/", 1)[-1] for e in feed.entries}
        expected = {e["paper"]["id"] for e in entries}
        in_zotero = Counter(i["archiveID"].removeprefix("arXiv:") for i in zot.items("preprint"))
    # The baseline is taken a little after the last new paper, once the daemon has had
    # passes enough to store, render and sync it.
    settled = [kb for t, kb in samples if t >= seconds * 0.3]
    growth = (samples[-1][1] - settled[0]) / settled[0] * 100 if settled and settled[0] else 0.0
    return {
        "seconds": seconds,
        "exit_code": proc.returncode,
        "runs_ok": runs["ok"],
        "runs_failed": runs["failed"],
        "faults_injected": faults,
        "upvote_changes": updates,
        "papers": len(expected),
        "missing_from_feed": len(expected - in_feed),
        "missing_from_zotero": len(expected - set(in_zotero)),
        "duplicate_zotero_items": sum(c - 1 for c in in_zotero.values()),
        "rss_mb_settled": round(settled[0] / 1024, 1) if settled else None,
        "rss_mb_end": round(samples[-1][1] / 1024, 1),
        "rss_growth_percent": round(growth, 1),
    }


def check(figures: dict[str, object], max_growth: float) -> None:
    record("soak", figures)
    assert figures["exit_code"] == 0
    assert figures["missing_from_feed"] == 0
    assert figures["missing_from_zotero"] == 0
    assert figures["duplicate_zotero_items"] == 0
    assert figures["runs_ok"] > 0
    assert float(figures["rss_growth_percent"]) < max_growth  # type: ignore[arg-type]


def test_soak_short(tmp_path: Path) -> None:
    check(soak(tmp_path, seconds=20), max_growth=25)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_soak_ten_minutes(tmp_path: Path) -> None:
    check(soak(tmp_path, seconds=600), max_growth=10)
