"""The Hub's quotas: the headers, the pacer, and backfills against a fake that enforces them.

The fake counts fixed windows as the Hub does (scaled down: a few requests per second or
two instead of 500 per 5 minutes) and refuses with 429 and the RateLimit headers only.
A backfill must finish with every day stored, meeting at most one 429 per window, in
about the time the quota itself imposes.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from feedsync.errors import FetchError, SourceStopped
from feedsync.fetch.http import HttpClient
from feedsync.fetch.quota import Limit, Pacer, Policy, bucket_of, parse_limits, parse_policies
from feedsync.store import Store
from tests.commands import start_feedsync
from tests.fakes.hf_api import FakeHF
from tests.fakes.hf_data import entry

FIRST = date(2025, 1, 6)
FEEDSYNC = [sys.executable, "-m", "feedsync"]

# -- the headers -------------------------------------------------------------------------------


def test_the_hubs_headers_are_read() -> None:
    assert parse_limits('"api";r=0;t=212') == [Limit("api", 0, 212.0)]
    assert parse_limits('"pages";r=57;t=3, "api";r=499;t=300') == [
        Limit("pages", 57, 3.0),
        Limit("api", 499, 300.0),
    ]
    assert parse_policies('"fixed window";"api";q=500;w=300') == [Policy("api", 500, 300.0)]
    assert str(Policy("api", 500, 300.0)) == "500 per 300 s"


@pytest.mark.parametrize(
    "value", [None, "", "api;r=1;t=2", '"api";r=x;t=y', '"api";r=-1;t=nan', '"api"', "garbage"]
)
def test_malformed_headers_say_nothing(value: str | None) -> None:
    assert [limit for limit in parse_limits(value) if limit.remaining is not None] == []
    assert parse_policies(value) == []


def test_requests_are_counted_in_the_hubs_buckets() -> None:
    assert bucket_of("https://huggingface.co/api/daily_papers?date=2026-03-06") == "api"
    assert bucket_of("https://huggingface.co/papers/date/2026-03-06") == "pages"


# -- the pacer, on a clock of its own --------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_spent_bucket_waits_for_its_window_and_says_so_once() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    policy = [Policy("api", 3, 20.0)]
    assert pacer.admit("api") is None
    pacer.settle("api", [Limit("api", 0, 12.0)], policy)
    first, second = pacer.admit("api"), pacer.admit("api")
    assert first is not None and second is not None
    assert first.seconds == pytest.approx(12.25)  # t, plus a margin for its whole seconds
    assert (first.announce, second.announce) == (True, False)  # one line per window
    assert str(first) == "waiting 12 s for the Hub's api quota (3 per 20 s)"
    assert pacer.admit("pages") is None  # the other bucket is not held
    clock.now += 12.3
    assert pacer.admit("api") is None


def test_requests_in_flight_count_against_what_is_left() -> None:
    pacer = Pacer(Clock())
    assert pacer.admit("api") is None
    pacer.settle("api", [Limit("api", 2, 30.0)], [])
    assert pacer.admit("api") is None
    assert pacer.admit("api") is None
    assert pacer.admit("api") is not None  # two left, two in flight
    pacer.settle("api", [Limit("api", 1, 29.0)], [])
    assert pacer.admit("api") is not None  # one left, one in flight


def test_a_429_spends_the_window_and_a_late_answer_does_not_revive_it() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    for _ in range(2):
        assert pacer.admit("api") is None
    pacer.settle("api", [Limit("api", 0, 9.0)], [], refused_for=9.0)
    pacer.settle("api", [Limit("api", 5, 9.0)], [])  # counted before the refusal
    wait = pacer.admit("api")
    assert wait is not None and wait.seconds == pytest.approx(9.25)
    pacer.waited(wait)  # the caller slept through it
    assert pacer.admit("api") is None


def test_an_answer_from_a_window_already_over_is_ignored() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    pacer.admit("api")
    pacer.settle("api", [Limit("api", 40, 100.0)], [])
    pacer.admit("api")
    pacer.settle("api", [Limit("api", 0, 5.0)], [])  # an older window's last word
    assert pacer.admit("api") is None


# -- the client against the fake --------------------------------------------------------------


def one_per_day(hf: FakeHF, days: int) -> list[date]:
    out = [FIRST + timedelta(days=n) for n in range(days)]
    for n, day in enumerate(out):
        hf.set_day(day, [entry(f"2501.{n:05d}", f"Lattice Sketches {n}", day)])
    return out


def api(hf: FakeHF, day: date) -> str:
    return f"{hf.url}/api/daily_papers?date={day}&limit=100"


@pytest.mark.parametrize("headers", ["always", "429"])
def test_the_client_keeps_to_the_quota(headers: str) -> None:
    with FakeHF(quotas={"api": (4, 1.0)}, quota_headers=headers) as hf:
        days = one_per_day(hf, 10)
        announced: list[str] = []
        with HttpClient(timeout=5, retries=0, on_wait=announced.append) as http:
            for day in days:
                assert http.get(api(hf, day)).status == 200
        windows = hf.windows("api")
    assert sum(w.served for w in windows) == 10 and len(windows) == 3
    refused = [w.refused for w in windows]
    # Told on every answer, the client never oversteps; told only by a 429, once a window.
    assert refused == ([0, 0, 0] if headers == "always" else [1, 1, 0])
    assert announced == ["waiting 1 s for the Hub's api quota (4 per 1 s)"] * 2
    assert http.quota_waits == 2


def test_a_quota_longer_than_max_wait_stops_with_when_to_come_back() -> None:
    with FakeHF(quotas={"api": (1, 120.0)}) as hf:
        days = one_per_day(hf, 2)
        with HttpClient(timeout=5, retries=3, max_wait=30) as http:
            http.get(api(hf, days[0]))
            started = time.monotonic()
            with pytest.raises(SourceStopped) as caught:
                http.get(api(hf, days[1]))
    assert time.monotonic() - started < 1
    assert "the Hub's api quota (1 per 120 s) is spent for another 120 s" in str(caught.value)
    assert "longer than [source] max_wait (30 s): stopped fetching; run again after" in str(
        caught.value
    )


def test_closing_the_client_ends_a_quota_wait_at_once() -> None:
    import threading

    with FakeHF(quotas={"api": (1, 60.0)}) as hf:
        days = one_per_day(hf, 2)
        http = HttpClient(timeout=5, retries=0)
        http.get(api(hf, days[0]))
        outcome: list[BaseException] = []

        def second() -> None:
            try:
                http.get(api(hf, days[1]))
            except FetchError as e:
                outcome.append(e)

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)  # it is waiting for the window
        closed = time.monotonic()
        http.close()
        thread.join(5)
    assert not thread.is_alive() and time.monotonic() - closed < 1
    assert [str(e).split(" (")[0] for e in outcome] == ["stopped"]


# -- backfills through the command ------------------------------------------------------------


def write_config(tmp: Path, hf: FakeHF, kind: str, extra: str = "") -> Path:
    config = tmp / "feedsync.toml"
    config.write_text(
        'data_dir = "data"\noutput_dir = "feeds"\n'
        f'[source]\nkind = "{kind}"\napi_url = "{hf.url}"\ntimeout = 10\n{extra}\n'
        '[topics.lattice]\ntitle = "Lattice"\nquery = "lattice"\n',
        encoding="utf-8",
    )
    return config


def backfill(config: Path, days: list[date]) -> tuple[subprocess.CompletedProcess[str], float]:
    since, until = days[0].isoformat(), days[-1].isoformat()
    start = time.monotonic()
    result = subprocess.run(
        [*FEEDSYNC, "--config", str(config), "backfill", "--since", since, "--until", until],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return result, time.monotonic() - start


def check_backfill(tmp: Path, kind: str, days: int, quota: int, window: float) -> None:
    bucket = "api" if kind == "hf-api" else "pages"
    with FakeHF(quotas={bucket: (quota, window)}) as hf:
        wanted = one_per_day(hf, days)
        result, elapsed = backfill(write_config(tmp, hf, kind), wanted)
        windows = hf.windows(bucket)
    assert result.returncode == 0, result.stderr
    with Store(tmp / "data" / "feedsync.sqlite3") as store:
        assert store.fetched_days() == set(wanted)
    assert all(w.refused <= 1 for w in windows), [w.refused for w in windows]
    # What the quota imposes: every window but the last must run out before the last opens.
    imposed = (math.ceil(days / quota) - 1) * window
    assert elapsed <= 1.2 * imposed + 10, f"{elapsed:.1f} s against {imposed:.0f} s imposed"
    waits = [line for line in result.stderr.splitlines() if "for the Hub's" in line]
    assert waits and all(f"{bucket} quota ({quota} per {window:g} s)" in w for w in waits)
    assert len(waits) <= len(windows)  # once per window, not once per worker


@pytest.mark.parametrize("kind", ["hf-api", "hf-html"])
def test_a_backfill_keeps_to_the_quota(tmp_path: Path, kind: str) -> None:
    check_backfill(tmp_path, kind, days=30, quota=8, window=1.5)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["hf-api", "hf-html"])
def test_a_long_backfill_keeps_to_the_quota(tmp_path: Path, kind: str) -> None:
    check_backfill(tmp_path, kind, days=280, quota=100, window=20.0)


def test_a_backfill_past_max_wait_says_when_to_come_back_once(tmp_path: Path) -> None:
    with FakeHF(quotas={"api": (3, 300.0)}) as hf:
        wanted = one_per_day(hf, 10)
        result, elapsed = backfill(write_config(tmp_path, hf, "hf-api", "max_wait = 60"), wanted)
    assert result.returncode == 1 and elapsed < 30
    failures = [line for line in result.stderr.splitlines() if line.startswith("feedsync: failed")]
    assert len(failures) == 1, result.stderr
    assert "quota (3 per 300 s) is spent" in failures[0] and "run again after" in failures[0]
    assert "Traceback" not in result.stderr
    with Store(tmp_path / "data" / "feedsync.sqlite3") as store:
        # The quota's three are kept (whichever workers got them); the rest is for next time.
        assert len(store.fetched_days() & set(wanted)) == 3


def test_sigterm_during_a_quota_wait_stops_the_daemon_at_once(tmp_path: Path) -> None:
    with FakeHF(quotas={"api": (2, 120.0)}) as hf:
        one_per_day(hf, 5)
        config = write_config(tmp_path, hf, "hf-api", "days = 5")
        proc = start_feedsync("--config", str(config), "daemon")
        try:
            deadline = time.monotonic() + 30
            while len(hf.requests) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the other days wait for the window now
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=30)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, stderr
    assert "waiting 12" in stderr and "for the Hub's api quota (2 per 120 s)" in stderr
    assert took < 3, f"{took:.1f} s to stop"
