"""WebSub: feeds advertise the hub, `feedsync serve` sends the Link headers, and a publish
that changed feeds tells the hub which (a strict fake hub, tests/fakes/websub_hub.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path

import feedparser
import pytest
from starlette.testclient import TestClient

from feedsync.config import Config, load_config
from feedsync.fetch.http import HttpClient
from feedsync.pipeline import run
from feedsync.publish.websub import announce
from feedsync.serve.app import create_app
from tests.fakes.hf_api import FakeHF
from tests.fakes.hf_data import entry
from tests.fakes.websub_hub import Discover, FakeHub, advertised

MON, TUE, WED = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
BASE = "https://feeds.example.org/papers"
FEEDS = ["reasoning.atom", "reasoning.rss", "robots.atom", "robots.rss"]


@pytest.fixture
def hf() -> Iterator[FakeHF]:
    with FakeHF() as fake:
        fake.set_day(
            MON,
            [
                entry("2603.00001", "Chain of Thought for Lattice Planning", MON),
                entry("2603.00002", "A Robot That Folds Maps", MON),
            ],
        )
        yield fake


def make_config(tmp_path: Path, hf: FakeHF, hub: str | None) -> Config:
    path = tmp_path / "feedsync.toml"
    feeds = f'[feeds]\nwebsub_hub = "{hub}"\n' if hub else ""
    path.write_text(
        f"""
data_dir = "data"
output_dir = "out"
base_url = "{BASE}/"
{feeds}
[source]
api_url = "{hf.url}"
retries = 1
[topics.reasoning]
title = "Reasoning"
query = 'reasoning OR "chain of thought"'
[topics.robots]
title = "Robots"
query = "robot*"
""",
        encoding="utf-8",
    )
    return load_config(path, {})


def do_run(config: Config):  # type: ignore[no-untyped-def]
    with HttpClient(timeout=5, retries=1, backoff=0.01) as http:
        return run(config, days=[WED, TUE, MON], client=http)


def through_serve(config: Config) -> Discover:
    """The hub's fetch of a topic, answered by `feedsync serve`'s app."""
    client = TestClient(create_app(config))

    def discover(url: str) -> tuple[Mapping[str, str], bytes]:
        assert url.startswith(BASE + "/")
        answer = client.get("/" + url.removeprefix(BASE + "/"))
        assert answer.status_code == 200
        return answer.headers, answer.content

    return discover


def test_a_publish_tells_the_hub_of_each_changed_feed_and_nothing_else(
    tmp_path: Path, hf: FakeHF
) -> None:
    with FakeHub() as hub:
        config = make_config(tmp_path, hf, hub.url)
        hub.state.discover = through_serve(config)
        report = do_run(config)
        assert report.ok and report.warnings == ()
        # Every feed is new: one ping each, for the URL the feed calls itself; the hub
        # found itself and that URL advertised by `feedsync serve` before accepting.
        assert hub.accepted() == [f"{BASE}/{name}" for name in FEEDS]
        assert {p.content_type for p in hub.pings} == {"application/x-www-form-urlencoded"}
        assert all(p.form["hub.url"] == p.form["hub.topic"] for p in hub.pings)
        assert report.websub is not None and len(report.websub.announced) == 4

        count = len(hub.pings)
        assert do_run(config).websub is None  # idle: nothing written, nobody told
        assert len(hub.pings) == count

        hf.set_day(TUE, [entry("2603.00003", "Reasoning Traces in Tiny Models", TUE)])
        report = do_run(config)
        assert hub.accepted()[count:] == [f"{BASE}/reasoning.atom", f"{BASE}/reasoning.rss"]


def test_the_feeds_advertise_the_hub_and_themselves(tmp_path: Path, hf: FakeHF) -> None:
    hub = "http://127.0.0.1:9/hub/"  # nothing listens: the feeds are published all the same
    config = make_config(tmp_path, hf, hub)
    report = do_run(config)
    assert report.ok
    assert report.warnings and "not announced" in report.warnings[0]
    for name in FEEDS:
        data = (config.output_dir / name).read_bytes()  # type: ignore[operator]
        assert advertised({}, data) == ({hub}, {f"{BASE}/{name}"})
        parsed = feedparser.parse(data)
        assert not parsed.bozo
        assert {link.rel: link.href for link in parsed.feed.links}["hub"] == hub


def test_serve_sends_the_link_headers_for_feeds_only(tmp_path: Path, hf: FakeHF) -> None:
    with FakeHub() as fake:
        config = make_config(tmp_path, hf, fake.url)
        do_run(config)
    client = TestClient(create_app(config))
    answer = client.get("/robots.rss")
    assert answer.headers["link"] == f'<{fake.url}>; rel="hub", <{BASE}/robots.rss>; rel="self"'
    assert client.get("/robots.rss", headers={"If-None-Match": answer.headers["etag"]}).headers[
        "link"
    ]
    assert "link" not in client.get("/index.html").headers
    (tmp_path / "plain").mkdir()
    plain = make_config(tmp_path / "plain", hf, None)
    do_run(plain)
    assert "link" not in TestClient(create_app(plain)).get("/robots.rss").headers


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("refuse", "the hub http://127.0.0.1:{port} answered HTTP 503 to a ping for"),
        ("hang", "the hub http://127.0.0.1:{port} did not answer within 0.5 s"),
        ("down", "cannot reach the hub http://127.0.0.1:9 (ConnectError)"),
    ],
)
def test_a_failing_hub_stops_the_pings_with_one_line(fault: str, said: str) -> None:
    feeds = [f"{BASE}/a.atom", f"{BASE}/a.rss"]
    with FakeHub() as hub:
        port = hub.url.split(":")[2].split("/")[0]
        url = hub.url
        if fault == "refuse":
            hub.refuse(503)
        elif fault == "hang":
            hub.hang()
        else:
            url = "http://127.0.0.1:9/hub"
        start = time.monotonic()
        report = announce(url, feeds, timeout=0.5)
        hub.state.hang = False
    assert time.monotonic() - start < 3
    assert report.announced == () and report.missed == tuple(feeds)
    assert report.failure is not None and report.failure.startswith(said.format(port=port))
    assert report.line().endswith(
        "2 changed feed(s) not announced (readers get them at their next poll)"
    )


def test_a_failing_hub_is_a_warning_and_exit_0(tmp_path: Path, hf: FakeHF) -> None:
    with FakeHub() as hub:
        hub.refuse(500)
        config = make_config(tmp_path, hf, hub.url)
        out = subprocess.run(
            [sys.executable, "-m", "feedsync", "--config", str(config.config_path), "run"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if "websub" in line]
    assert len(warnings) == 1 and warnings[0].startswith("feedsync: warning: websub: the hub")
    assert "Traceback" not in out.stderr


def test_the_fake_hub_is_strict() -> None:
    import httpx

    with FakeHub() as hub, httpx.Client() as client:
        good = {"hub.mode": "publish", "hub.url": f"{BASE}/a.atom"}
        assert client.post(hub.url, data=good).status_code == 202
        assert client.get(hub.url).status_code == 405
        assert client.post(hub.url, json=good).status_code == 415
        assert client.post(hub.url, data={**good, "hub.mode": "subscribe"}).status_code == 400
        assert client.post(hub.url, data={"hub.mode": "publish"}).status_code == 400
        assert client.post(hub.url, data={**good, "hub.topic": f"{BASE}/b.atom"}).status_code == 400
        assert client.post(hub.url, data={**good, "hub.url": "/a.atom"}).status_code == 400
        assert client.post(hub.url, data={**good, "hub.extra": "1"}).status_code == 400
