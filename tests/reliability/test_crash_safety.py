"""Reliability 1: SIGKILL `feedsync run` at random moments; nothing partial, lost or doubled.

Each round changes the digest (new papers, new upvotes), starts `feedsync run --refresh`
with Zotero enabled and kills it with SIGKILL after a random delay, while a reader polls
output_dir and parses every file it sees. After the rounds, one clean run. The result is
compared with an installation that saw the same digest without any crash.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from tests.fakes.hf_api import FakeHF
from tests.fakes.hf_data import entry
from tests.fakes.zotero_api import FakeZotero
from tests.reliability.figures import record

FEEDSYNC = [sys.executable, "-m", "feedsync"]
TOPICS = """
[topics.planning]
title = "Planning"
query = "planner OR planning OR lattice"
zotero = true

[topics.robots]
title = "Robots"
query = "robot* OR grasp*"
zotero = true

[topics.popular]
title = "Popular"
query = "upvotes:>=20"
"""


def write_config(home: Path, hf: FakeHF, zot: FakeZotero) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "feedsync.toml"
    path.write_text(
        f'data_dir = "data"\noutput_dir = "feeds"\n[source]\nkind = "hf-api"\n'
        f'api_url = "{hf.url}"\ndays = 3\nretries = 1\ntimeout = 5\n'
        f'[zotero]\nenabled = true\nlibrary_id = "{zot.state.library_id}"\n'
        f'api_url = "{zot.url}"\n{TOPICS}',
        encoding="utf-8",
    )
    return path


class Reader(threading.Thread):
    """Polls output_dir and parses every file it finds, as a feed reader would."""

    def __init__(self, directory: Path) -> None:
        super().__init__(daemon=True)
        self.directory = directory
        self.stop = threading.Event()
        self.seen = 0
        self.bad: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                names = [n for n in os.listdir(self.directory) if not n.startswith(".")]
            except FileNotFoundError:
                names = []
            for name in names:
                try:
                    data = (self.directory / name).read_bytes()
                except FileNotFoundError:
                    continue  # removed between listing and reading: not a partial file
                self.seen += 1
                if not self._valid(name, data):
                    self.bad.append(name)
            time.sleep(0.005)

    @staticmethod
    def _valid(name: str, data: bytes) -> bool:
        if name.endswith((".rss", ".atom")):
            return not feedparser.parse(data).bozo
        try:
            if name.endswith(".html"):
                return data.rstrip().endswith(b"</html>")
            etree.fromstring(data)
        except etree.XMLSyntaxError:
            return False
        return True


def day_entries(rng: random.Random, day, round_: int, base: list[dict]) -> list[dict]:  # type: ignore[no-untyped-def]
    fresh = [
        entry(
            f"{day:%y%m}.{50000 + round_ * 10 + n:05d}",
            rng.choice(["Lattice planner for", "Robot grasping with", "Notes on"])
            + f" round {round_} item {n}",
            day,
            upvotes=rng.randint(0, 40),
        )
        for n in range(rng.randint(1, 4))
    ]
    return base + fresh


def feed_ids(feeds: Path) -> dict[str, set[str]]:
    return {
        p.name: {e.id for e in feedparser.parse(p.read_bytes()).entries}
        for p in sorted(feeds.iterdir())
        if p.suffix in (".rss", ".atom")
    }


def run_crash_rounds(tmp_path: Path, rounds: int) -> dict[str, int]:
    rng = random.Random(1234)
    today = datetime.now(UTC).date()
    with FakeHF() as hf, FakeZotero() as zot, FakeZotero() as reference_zot:
        env = {**os.environ, "FEEDSYNC_ZOTERO__API_KEY": zot.api_key}
        config = write_config(tmp_path / "crashy", hf, zot)
        feeds = config.parent / "feeds"
        reader = Reader(feeds)
        reader.start()
        entries: list[dict] = []
        kills = 0
        for round_ in range(rounds):
            entries = day_entries(rng, today, round_, entries)
            hf.set_day(today, entries)
            proc = subprocess.Popen(
                [*FEEDSYNC, "--config", str(config), "run", "--refresh"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.05, 1.2))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(30)
        clean = subprocess.run(
            [*FEEDSYNC, "--config", str(config), "run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        reader.stop.set()
        reader.join(10)
        assert clean.returncode == 0, clean.stderr

        # The same final digest, without any crash.
        ref_env = {**os.environ, "FEEDSYNC_ZOTERO__API_KEY": reference_zot.api_key}
        reference = write_config(tmp_path / "reference", hf, reference_zot)
        subprocess.run(
            [*FEEDSYNC, "--config", str(reference), "run"],
            env=ref_env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        got, want = feed_ids(feeds), feed_ids(reference.parent / "feeds")
        missing_in_feeds = sum(len(want[n] - got.get(n, set())) for n in want)
        archive_ids = Counter(i["archiveID"] for i in zot.items("preprint"))
        duplicates = sum(c - 1 for c in archive_ids.values())
        want_ids = {i["archiveID"] for i in reference_zot.items("preprint")}
        missing_in_zotero = len(want_ids - set(archive_ids))
        db = sqlite3.connect(config.parent / "data" / "feedsync.sqlite3")
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        db.close()
    return {
        "rounds": rounds,
        "kills": kills,
        "files_read": reader.seen,
        "partial_or_unparseable": len(reader.bad),
        "integrity_ok": int(integrity == "ok"),
        "duplicate_zotero_items": duplicates,
        "missing_from_feeds": missing_in_feeds,
        "missing_from_zotero": missing_in_zotero,
        "zotero_items": len(archive_ids),
    }


def check(figures: dict[str, int]) -> None:
    record("crash safety", figures)
    assert figures["partial_or_unparseable"] == 0
    assert figures["integrity_ok"] == 1
    assert figures["duplicate_zotero_items"] == 0
    assert figures["missing_from_feeds"] == 0
    assert figures["missing_from_zotero"] == 0
    assert figures["files_read"] > 0


def test_crash_safety_short(tmp_path: Path) -> None:
    check(run_crash_rounds(tmp_path, rounds=8))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_crash_safety_50_kills(tmp_path: Path) -> None:
    check(run_crash_rounds(tmp_path, rounds=50))
