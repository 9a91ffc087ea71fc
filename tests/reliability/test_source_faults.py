"""Reliability 2: the digest source fails in every way we know of; the feeds lose nothing.

For each fault (timeout, connection reset, 429 with Retry-After, 500, 503, truncated body,
HTML instead of JSON, JSON of the wrong shape, an empty day, a day that shrank) the fake
HF API misbehaves during one pass of the real pipeline (real ``HttpClient``, tiny backoff).
Then: the pass exits as documented (1 when the source failed after its retries, 0 when a
retry got through or the answer was a valid, smaller digest), every feed still lists every
entry it listed before and parses cleanly, ``/healthz`` on the real server says what
happened, and the next clean pass is healthy and lists every paper. Two of the faults
also go through ``feedsync run`` in a subprocess, for the real exit codes.

Figure: faults survived / faults tried (a fault counts as survived when every variant of
it passed every check).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
import uvicorn

from feedsync.config import Config, load_config
from feedsync.fetch.http import HttpClient
from feedsync.pipeline import RunReport, run
from feedsync.serve.app import create_app
from feedsync.store import Store
from tests.fakes.hf_api import FakeHF
from tests.fakes.hf_data import entry
from tests.reliability.figures import record

MON, TUE, WED = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
DAYS = [WED, TUE, MON]
FEEDSYNC = [sys.executable, "-m", "feedsync"]
CLIENT_TIMEOUT = 0.3  # seconds; the "timeout" fault answers after 1 s
RETRIES = 2


def digest() -> dict[date, list[dict[str, Any]]]:
    """Three featured days; Monday spans two API pages, so paging is under fault too."""
    words = ["Lattice Planning", "Robot Grasping", "Sparse Routing", "Token Caches"]
    return {
        MON: [
            entry(f"2603.{n:05d}", f"{words[n % 4]} Study {n}", MON, upvotes=n % 30)
            for n in range(1, 102)
        ],
        TUE: [entry(f"2603.{n:05d}", f"{words[n % 4]} Report {n}", TUE) for n in range(201, 206)],
        WED: [entry(f"2603.{n:05d}", f"{words[n % 4]} Notes {n}", WED) for n in range(301, 304)],
    }


def all_ids(days: dict[date, list[dict[str, Any]]]) -> set[str]:
    return {
        f"tag:feeds.example.org,2026:all/{e['paper']['id']}" for es in days.values() for e in es
    }


def write_config(home: Path, hf: FakeHF, *, days: int = 3, timeout: float = 5) -> Config:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "feedsync.toml"
    path.write_text(
        f"""
data_dir = "data"
output_dir = "feeds"
base_url = "https://feeds.example.org/papers"
[source]
api_url = "{hf.url}"
days = {days}
retries = {RETRIES}
timeout = {timeout}
[schedule]
cron = "*/10 * * * *"
[feeds]
all_papers = true
max_items = 1000
[topics.planning]
title = "Planning"
query = "planning OR lattice"
[topics.robots]
title = "Robots"
query = "robot* OR grasping"
min_upvotes = 5
""",
        encoding="utf-8",
    )
    return load_config(path, {})


_PARSED: dict[bytes, frozenset[str]] = {}


def feed_ids(out: Path) -> dict[str, frozenset[str]]:
    """Every feed's entry ids; each feed must parse without a single complaint.

    Parsed once per distinct content: feedparser is slow and most passes rewrite nothing.
    """
    found = {}
    for path in sorted(out.glob("*.*")):
        if path.suffix not in (".rss", ".atom"):
            continue
        data = path.read_bytes()
        key = hashlib.sha256(data).digest()
        if key not in _PARSED:
            parsed = feedparser.parse(data)
            assert not parsed.bozo, f"{path.name}: {parsed.get('bozo_exception')}"
            _PARSED[key] = frozenset(e.id for e in parsed.entries)
        found[path.name] = _PARSED[key]
    return found


class Waits:
    """The client's sleep: records what it was asked to wait, sleeps a token amount."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.asked.append(seconds)
        time.sleep(min(seconds, 0.01))


@contextmanager
def real_server(config: Config) -> Iterator[str]:
    """The production ASGI app on uvicorn, in a thread, on a free port."""
    srv = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=0, log_level="error")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    port = srv.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(5)


@dataclass(frozen=True)
class Scenario:
    fault: str  # the name in the issue
    variant: str  # "transient": one bad answer, then good ones; "persistent": every answer
    kind: str | None  # the fake's fault, None for a change of the digest itself
    exit_code: int
    reason: str = ""  # what /healthz must say when the pass failed
    times: int = 1
    retry_after: int | None = None
    delay: float = 0.0
    shrink: bool = False
    path: str | None = None  # only requests for this URL part fail (None: any request)


def _both(fault: str, kind: str, reason: str, **kw: Any) -> list[Scenario]:
    return [
        Scenario(fault, "transient", kind, 0, times=1, **kw),
        Scenario(fault, "persistent", kind, 1, reason, times=99, **kw),
    ]


SCENARIOS = [
    *_both("timeout", "slow", "timed out", delay=1.0),
    *_both("connection reset", "reset", "connection"),
    *_both("429 with Retry-After", "429", "HTTP 429", retry_after=1),
    *_both("500", "500", "HTTP 500"),
    *_both("503", "503", "HTTP 503"),
    *_both("truncated body", "truncate", "connection"),
    # A 200 with an unusable body is not retried: the same URL would give the same body.
    Scenario("HTML instead of JSON", "persistent", "html", 1, "not valid JSON"),
    Scenario("JSON of the wrong shape", "persistent", "wrong-shape", 1, "expected a JSON array"),
    # Valid, smaller answers are not failures; the store keeps what it had (store rule 4).
    Scenario("empty day", "every day", "empty", 0, times=99),
    Scenario("day that shrank", "since the last fetch", None, 0, shrink=True),
]


@dataclass
class Bench:
    hf: FakeHF
    config: Config
    base: str
    days: dict[date, list[dict[str, Any]]] = field(default_factory=digest)

    def run(self, waits: Waits | None = None) -> RunReport:
        kw: dict[str, Any] = {"sleep": waits} if waits is not None else {}
        with HttpClient(timeout=CLIENT_TIMEOUT, retries=RETRIES, backoff=0.01, **kw) as http:
            return run(self.config, days=DAYS, client=http)

    def healthz(self) -> httpx.Response:
        return httpx.get(f"{self.base}/healthz", timeout=5)

    def restore(self) -> None:
        self.hf.state.faults.clear()
        for day, entries in self.days.items():
            self.hf.set_day(day, entries)


def recover(bench: Bench) -> None:
    """A clean pass: healthy, and every paper of the digest in the every-paper feed."""
    bench.restore()
    report = bench.run()
    assert report.exit_code == 0, report.failures
    health = bench.healthz()
    assert health.status_code == 200, health.text
    ids = feed_ids(bench.config.output_dir)
    assert ids["all.atom"] == ids["all.rss"] == all_ids(bench.days)
    with Store(bench.config.store_path) as store:
        assert store.count() == len(all_ids(bench.days))


def survive(bench: Bench, s: Scenario) -> None:
    before = feed_ids(bench.config.output_dir)
    if s.shrink:
        bench.hf.set_day(MON, bench.days[MON][:60])
        bench.hf.set_day(TUE, bench.days[TUE][:1])
    if s.kind is not None:
        bench.hf.fault(s.kind, path=s.path, times=s.times, retry_after=s.retry_after, delay=s.delay)
    waits = Waits()
    report = bench.run(waits)
    assert report.exit_code == s.exit_code, report.failures
    if s.exit_code:
        assert any(s.reason in f for f in report.failures), report.failures
    if s.retry_after is not None:
        assert max(waits.asked, default=0.0) >= s.retry_after, "Retry-After was not honoured"
    after = feed_ids(bench.config.output_dir)
    for name, ids in before.items():
        lost = ids - after.get(name, set())
        assert not lost, f"{name} lost {len(lost)} entries"
    health = bench.healthz()
    payload = health.json()
    if s.exit_code:
        assert health.status_code == 503, payload
        assert s.reason in payload["reason"], payload
    else:
        assert health.status_code == 200, payload
    recover(bench)


def run_scenarios(tmp_path: Path, scenarios: list[Scenario]) -> tuple[dict[str, Any], list[str]]:
    problems: list[str] = []
    failed_faults: set[str] = set()
    with FakeHF() as hf:
        config = write_config(tmp_path / "home", hf)
        with real_server(config) as base:
            bench = Bench(hf, config, base)
            recover(bench)  # the first pass publishes the baseline
            for s in scenarios:
                try:
                    survive(bench, s)
                except AssertionError as e:
                    failed_faults.add(s.fault)
                    problems.append(f"{s.fault} ({s.variant}): {e}")
                    bench.restore()
    faults = sorted({s.fault for s in scenarios})
    figures = {
        "faults_survived": len(faults) - len(failed_faults),
        "faults_tried": len(faults),
        "scenarios_survived": len(scenarios) - len(problems),
        "scenarios_tried": len(scenarios),
        "papers": len(all_ids(digest())),
    }
    return figures, problems


def check(figures: dict[str, Any], problems: list[str], name: str = "source faults") -> None:
    record(
        name,
        f"survived {figures['faults_survived']}/{figures['faults_tried']} faults "
        f"({figures['scenarios_survived']}/{figures['scenarios_tried']} scenarios)",
    )
    assert not problems, "\n".join(problems)


def test_source_faults(tmp_path: Path) -> None:
    check(*run_scenarios(tmp_path, SCENARIOS))


@pytest.mark.slow
def test_source_faults_on_a_second_page(tmp_path: Path) -> None:
    # Monday's second page fails while its first page and the other days succeed: the
    # pass must keep what it merged and still publish everything it had.
    paged = [dataclasses.replace(s, path="&p=1") for s in SCENARIOS if s.kind is not None]
    check(*run_scenarios(tmp_path, paged), name="source faults, second page")


# -- the command line: documented exit codes, `feedsync healthcheck` ---------------------------


def cli(config: Config, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSYNC_")}
    return subprocess.run(
        [*FEEDSYNC, "--config", str(config.config_path), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_exit_codes_under_faults(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    with FakeHF() as hf:
        papers = [entry(f"2603.{n:05d}", f"Lattice Planning {n}", today) for n in range(1, 6)]
        hf.set_day(today, papers)
        config = write_config(tmp_path / "cli", hf, days=1, timeout=2)
        steps: list[tuple[str, Callable[[], None], tuple[str, ...], int, str]] = [
            ("clean", lambda: None, ("run",), 0, ""),
            ("a 503 on every try", lambda: hf.fault("503", times=99), ("run",), 1, "HTTP 503"),
            ("...is unhealthy", lambda: None, ("healthcheck",), 1, "HTTP 503"),
            ("one 500, then fine", lambda: hf.fault("500", times=1), ("run",), 0, ""),
            ("...is healthy again", lambda: None, ("healthcheck",), 0, '"status": "ok"'),
        ]
        for what, setup, args, code, text in steps:
            hf.state.faults.clear()
            setup()
            result = cli(config, *args)
            output = result.stdout + result.stderr
            assert result.returncode == code, f"{what}: {output}"
            assert text in output, f"{what}: {output}"
            assert "Traceback" not in output, f"{what}: {output}"
        ids = feed_ids(config.output_dir)
        assert len(ids["all.atom"]) == len(papers)
