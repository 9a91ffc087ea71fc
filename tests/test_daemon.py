"""`feedsync daemon` as a real process: schedule, no overlap, failures, lock, SIGTERM."""

from __future__ import annotations

import itertools
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import feedparser
import pytest

from feedsync.config import load_config
from feedsync.store import Store
from tests.fakes.hf_api import FakeHF
from tests.memory import memory_kb

ROOT = Path(__file__).resolve().parent.parent


def write_config(tmp_path: Path, source: str, output_dir: str = "out") -> Path:
    path = tmp_path / "feedsync.toml"
    path.write_text(
        f'data_dir = "data"\noutput_dir = "{output_dir}"\n{source}\n'
        '[topics.planning]\ntitle = "Planning"\nquery = "planner OR planning"\n',
        encoding="utf-8",
    )
    return path


FILES = f'[source]\nkind = "files"\npaths = ["{ROOT}/config/demo/*.json"]\n'


def daemon(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "feedsync", "--config", str(config), "daemon", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_early(proc: subprocess.Popen[str]) -> None:
    """SIGTERM a daemon in the middle of fetching: it must end within 5 s, with exit 0,
    saying it stopped early."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    stopped_in = time.monotonic() - started
    assert proc.returncode == 0, err
    assert stopped_in < 5, f"took {stopped_in:.1f} s to stop"
    assert "stopping early" in err


def runs(config: Path):  # type: ignore[no-untyped-def]
    with Store(load_config(config, {}).store_path) as store:
        return list(reversed(store.last_runs(100)))


def test_runs_on_schedule_without_overlap(tmp_path: Path) -> None:
    config = write_config(tmp_path, FILES)
    proc = daemon(config, "--interval", "0.3", "--max-runs", "4")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    records = runs(config)
    assert len(records) == 4
    assert all(r.result == "ok" for r in records)
    for before, after in itertools.pairwise(records):
        assert before.finished is not None and after.started >= before.finished
    assert "daemon stopped after 4 run(s)" in err
    assert err.count("run ok") == 4


def test_a_failing_run_does_not_stop_the_daemon(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where output_dir should be")
    config = write_config(tmp_path, FILES, output_dir="blocked")
    proc = daemon(config, "--interval", "0.3", "--max-runs", "3")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert err.count("run failed") == 3
    assert [r.result for r in runs(config)] == ["failed"] * 3
    assert "Traceback" not in err


def test_second_daemon_exits_at_once_naming_the_lock(tmp_path: Path) -> None:
    config = write_config(tmp_path, FILES)
    first = daemon(config, "--interval", "30")
    try:
        deadline = time.monotonic() + 20
        while not runs_exist(config):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        second = daemon(config, "--interval", "30")
        out, err = second.communicate(timeout=20)
        assert second.returncode == 3
        assert "daemon.lock" in err and f"pid {first.pid}" in err
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 0


def runs_exist(config: Path) -> bool:
    path = load_config(config, {}).store_path
    return path.exists() and bool(runs(config))


def test_sigterm_during_a_run_leaves_consistent_files(tmp_path: Path) -> None:
    with FakeHF() as hf:
        hf.fault("slow", delay=0.7, times=1000)
        config = write_config(
            tmp_path, f'[source]\nkind = "hf-api"\napi_url = "{hf.url}"\ndays = 10\n'
        )
        proc = daemon(config, "--interval", "60")
        deadline = time.monotonic() + 20
        while len(hf.requests) < 2:
            assert time.monotonic() < deadline, "the run never started fetching"
            time.sleep(0.05)
        stop_early(proc)
    loaded = load_config(config, {})
    with Store(loaded.store_path) as store:
        assert store.integrity_check() == "ok"
        (last,) = store.last_runs(1)
        assert last.result == "ok"
    for name in ("planning.atom", "planning.rss"):
        parsed = feedparser.parse((loaded.output_dir / name).read_bytes())
        assert not parsed.bozo
    assert not [p for p in os.listdir(loaded.output_dir) if p.startswith(".tmp-")]


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's",
)
def test_memory_a_pass_freed_goes_back_to_the_system() -> None:
    """A few objects that outlive a pass must not pin the pages the pass freed."""
    from feedsync.daemon import _release_memory

    def rss_mb() -> float:
        return memory_kb() / 1024

    before = rss_mb()
    chunks = [b"x" * 3000 + i.to_bytes(4, "big") for i in range(40_000)]  # ~120 MB
    survivors = chunks[::500]
    del chunks
    pinned = rss_mb()
    _release_memory()
    assert pinned - before > 60  # freed, but still resident: what the daemon used to keep
    assert rss_mb() - before < 30
    assert len(survivors) == 80


def test_sigterm_while_the_server_hangs_stops_the_daemon_at_once(tmp_path: Path) -> None:
    """A request in flight to a hung server is not waited for (each attempt may take the
    whole timeout, then come retries): the pass publishes what is stored and ends."""
    from tests.fakes.stalled import StalledServer

    with StalledServer() as server:
        config = write_config(
            tmp_path,
            f'[source]\nkind = "hf-api"\napi_url = "{server.url}"\ndays = 3\ntimeout = 20\n',
        )
        proc = daemon(config, "--interval", "60")
        assert server.accepted.wait(30), "the run never started fetching"
        time.sleep(0.2)
        stop_early(proc)
    loaded = load_config(config, {})
    for name in ("planning.atom", "planning.rss"):
        assert not feedparser.parse((loaded.output_dir / name).read_bytes()).bozo
