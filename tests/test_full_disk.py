"""A disk that fills up, as a file-size limit on the command (RLIMIT_FSIZE, no root needed).

Whichever write is refused first (creating the store, storing papers, caching entries,
recording the run, writing a feed), the command says so in one line with a documented exit
code and no traceback; the store stays consistent, the feeds already published stay as they
were, and once there is room again the next run completes.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import feedparser
import pytest

from tests.fakes.zotero_api import FakeZotero

resource = pytest.importorskip("resource")

DEMO = Path(__file__).resolve().parent.parent / "config" / "demo"


def limited_to(kilobytes: int) -> Callable[[], None]:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a refused write is an error, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (kilobytes * 1024, kilobytes * 1024))

    return limit


def feedsync_run(
    config: Path, limit: Callable[[], None] | None = None, zotero: FakeZotero | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FEEDSYNC_ZOTERO__API_KEY": zotero.api_key} if zotero else None
    return subprocess.run(
        [sys.executable, "-m", "feedsync", "--config", str(config), "run"],
        preexec_fn=limit,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def demo_config(home: Path, title: str = "Reasoning", zotero: FakeZotero | None = None) -> Path:
    demo = DEMO.as_posix()
    config = home / "feedsync.toml"
    text = (
        f'data_dir = "data"\noutput_dir = "feeds"\n'
        f'[source]\nkind = "files"\npaths = ["{demo}/*.json", "{demo}/*.html"]\n'
        f'[topics.reasoning]\ntitle = "{title}"\nquery = "reasoning OR planning"\n'
        '[topics.everything]\ntitle = "Everything"\nquery = "upvotes:>=0"\n'
    )
    if zotero:
        text += (
            f"zotero = true\n[zotero]\nenabled = true\nlibrary_id = "
            f'"{zotero.library_id}"\napi_url = "{zotero.url}"\n'
        )
    config.write_text(text, encoding="utf-8")
    return config


def smallest_room(completes: Callable[[int], bool]) -> int:
    """The smallest file-size limit (KB) under which a run completes, found by bisection.

    Measured rather than written down: SQLite's write-ahead log, not the final files,
    sets it, and it moves with the store's schema and SQLite's version.
    """
    fails, done = 0, 8192
    while done - fails > 1:
        middle = (fails + done) // 2
        if completes(middle):
            done = middle
        else:
            fails = middle
    assert fails > 64, "a run that needs almost no room tests nothing here"
    return done


@pytest.fixture(scope="module")
def room_needed(tmp_path_factory: pytest.TempPathFactory) -> int:
    def completes(kilobytes: int) -> bool:
        home = tmp_path_factory.mktemp("room")
        return feedsync_run(demo_config(home), limited_to(kilobytes)).returncode == 0

    return smallest_room(completes)


def refused_in_one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("feedsync: error: "), result.stderr
    return last


def snapshot(feeds: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(feeds.iterdir())}


def assert_consistent(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "data" / "feedsync.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        db.close()
    for feed in (tmp_path / "feeds").glob("*.atom"):
        assert not feedparser.parse(feed.read_bytes()).bozo, feed


# From refusing the store's first pages to refusing only the last writes of a run.
@pytest.mark.parametrize("share", [0.0, 0.05, 0.3, 0.6, 0.9])
def test_a_full_disk_on_a_new_installation(tmp_path: Path, room_needed: int, share: float) -> None:
    config = demo_config(tmp_path)
    limited = feedsync_run(config, limited_to(int(room_needed * share)))
    assert limited.returncode in (1, 3), limited.stderr  # writing feeds: 1; the store: 3
    line = refused_in_one_line(limited)
    assert "is the disk full?" in line or "File too large" in line, line
    again = feedsync_run(config)
    assert again.returncode == 0, again.stderr
    assert_consistent(tmp_path)
    assert feedparser.parse((tmp_path / "feeds" / "everything.atom").read_bytes()).entries


def test_a_full_disk_leaves_the_published_feeds_as_they_were(tmp_path: Path) -> None:
    config = demo_config(tmp_path)
    assert feedsync_run(config).returncode == 0
    feeds = tmp_path / "feeds"
    before = snapshot(feeds)
    # A new title changes that topic's feeds and the index; no write may get through.
    config = demo_config(tmp_path, title="Reasoning and planning")
    limited = feedsync_run(config, limited_to(0))
    assert limited.returncode in (1, 3), limited.stderr
    refused_in_one_line(limited)
    assert snapshot(feeds) == before  # not a byte changed, no temporary file left
    assert_consistent(tmp_path)
    assert feedsync_run(config).returncode == 0
    assert "Reasoning and planning" in (feeds / "reasoning.atom").read_text(encoding="utf-8")


def test_a_full_disk_after_the_zotero_writes_leaves_each_paper_once(tmp_path: Path) -> None:
    def completes(kilobytes: int) -> bool:
        with FakeZotero() as zot:
            home = tmp_path / f"probe-{kilobytes}"
            home.mkdir()
            config = demo_config(home, zotero=zot)
            return feedsync_run(config, limited_to(kilobytes), zot).returncode == 0

    room = smallest_room(completes)
    with FakeZotero() as zot:
        home = tmp_path / "run"
        home.mkdir()
        config = demo_config(home, zotero=zot)
        # Just under the room a run needs, the disk refuses its last writes: the store's
        # record of the items the Zotero sync has just created.
        limited = feedsync_run(config, limited_to(room - 1), zot)
        assert limited.returncode == 3, limited.stderr
        refused_in_one_line(limited)
        created = len(zot.items("preprint"))
        assert created > 0, "the disk should have refused the run after its Zotero writes"
        again = feedsync_run(config, zotero=zot)
        assert again.returncode == 0, again.stderr
        in_zotero = Counter(item["archiveID"] for item in zot.items("preprint"))
    assert len(in_zotero) == created and set(in_zotero.values()) == {1}


def test_the_daemon_rides_out_a_full_disk_and_catches_up(tmp_path: Path) -> None:
    def soft_limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        # Only the soft limit, so that the test can lift it: room made on the disk.
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, resource.RLIM_INFINITY))

    config = demo_config(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "feedsync", "--config", str(config), "daemon", "--interval", "0.3"],
        preexec_fn=soft_limit,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if sum("run failed" in seen for seen in lines) == 2 and "run ok" not in line:
                resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (-1, -1))  # room again
            if "run ok" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=30)[1]
    log = "".join(lines) + rest
    assert proc.returncode == 0, log
    assert "Traceback" not in log
    failures = [line for line in lines if "run failed" in line]
    assert len(failures) >= 2 and all("is the disk full?" in line for line in failures), log
    assert_consistent(tmp_path)
    assert feedparser.parse((tmp_path / "feeds" / "everything.atom").read_bytes()).entries
