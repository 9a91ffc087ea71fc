"""Publishing into a bucket, against a real S3 server (SeaweedFS on 127.0.0.1).

What each test reads back goes straight to the server (presigned GETs, or obstore), never
through feedsync; what feedsync sends is counted by a proxy in front of the server.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email.message import Message
from pathlib import Path
from typing import Any

import feedparser
import pytest

from feedsync.config import Config, load_config
from feedsync.fetch.http import HttpClient
from feedsync.pipeline import run
from feedsync.store import Store
from tests.conftest import BUCKET
from tests.fakes.hf_api import FakeHF
from tests.fakes.hf_data import entry
from tests.fakes.s3_proxy import S3Proxy
from tests.fakes.seaweed import ACCESS_KEY, REGION, SECRET_KEY, Seaweed

MON, TUE, WED = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
DAYS = [WED, TUE, MON]
TOPICS = """
[topics.reasoning]
title = "Reasoning"
query = 'reasoning OR "chain of thought"'

[topics.robots]
title = "Robots"
query = "robot*"
"""
FILES = ["index.html", "index.opml", "reasoning.atom", "reasoning.rss", "robots.atom", "robots.rss"]
TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


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
        fake.set_day(TUE, [entry("2603.00003", "Reasoning Traces in Tiny Models", TUE)])
        yield fake


@pytest.fixture
def proxy(seaweed: Seaweed) -> Iterator[S3Proxy]:
    with S3Proxy(seaweed.endpoint) as counting:
        yield counting


def write_config(
    home: Path,
    hf: FakeHF,
    output_dir: str,
    endpoint: str,
    *,
    secret: str = SECRET_KEY,
    topics: str = TOPICS,
    extra: str = "",
) -> Path:
    path = home / "feedsync.toml"
    path.write_text(
        f"""
data_dir = "data"
output_dir = "{output_dir}"
base_url = "https://feeds.example.org/papers"
{extra}
[source]
api_url = "{hf.url}"
retries = 1
[publish]
endpoint = "{endpoint}"
region = "{REGION}"
access_key_id = "{ACCESS_KEY}"
secret_access_key = "{secret}"
timeout = 5
retries = 1
{topics}
""",
        encoding="utf-8",
    )
    return path


def config_for(home: Path, hf: FakeHF, output_dir: str, endpoint: str, **kw: str) -> Config:
    return load_config(write_config(home, hf, output_dir, endpoint, **kw), {})


def do_run(config: Config, days: list[date] = DAYS):  # type: ignore[no-untyped-def]
    with HttpClient(timeout=5, retries=1, backoff=0.01) as http:
        return run(config, days=days, client=http)


def key_of(url: str, name: str) -> str:
    return f"{url.removeprefix(f's3://{BUCKET}/')}/{name}"


def fetch(seaweed: Seaweed, url: str, name: str) -> tuple[Message, bytes]:
    """An object as a CDN's origin fetch sees it: headers and body, straight from S3."""
    with urllib.request.urlopen(seaweed.signed(BUCKET, "GET", key_of(url, name))) as answer:
        return answer.headers, answer.read()


def listing(seaweed: Seaweed, url: str) -> list[str]:
    import obstore

    prefix = url.removeprefix(f"s3://{BUCKET}/")
    found = obstore.list(seaweed.store(BUCKET, prefix)).collect()
    return sorted(str(meta["path"]) for meta in found)


def test_each_object_gets_its_type_and_cache_control_and_the_folders_bytes(
    tmp_path: Path, hf: FakeHF, seaweed: Seaweed, bucket_url: str
) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "f").mkdir()
    config = config_for(tmp_path / "b", hf, bucket_url, seaweed.endpoint)
    report = do_run(config)
    assert report.ok, report.failures
    assert report.published is not None and sorted(report.published.written) == FILES
    assert listing(seaweed, bucket_url) == FILES
    folder = config_for(tmp_path / "f", hf, "out", seaweed.endpoint)
    assert do_run(folder).ok
    for name in FILES:
        headers, body = fetch(seaweed, bucket_url, name)
        assert headers["Content-Type"] == TYPES[Path(name).suffix]
        assert headers["Cache-Control"] == "public, max-age=3600"  # the hourly schedule
        assert headers["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        assert body == (tmp_path / "f" / "out" / name).read_bytes()  # the same bytes
        if name.endswith((".rss", ".atom")):
            parsed = feedparser.parse(
                body, response_headers={"content-type": headers["Content-Type"]}
            )
            assert not parsed.bozo, parsed.get("bozo_exception")


def test_an_idle_run_sends_no_request_and_new_papers_one_put_per_changed_file(
    tmp_path: Path, hf: FakeHF, proxy: S3Proxy, bucket_url: str
) -> None:
    config = config_for(tmp_path, hf, bucket_url, proxy.url)
    assert do_run(config).ok
    first = proxy.requests()
    assert sorted(path.rsplit("/", 1)[1] for _, path in first) == FILES
    assert {method for method, _ in first} == {"PUT"}
    # Feeds first, the index files last.
    assert [path.rsplit("/", 1)[1] for _, path in first][-2:] == ["index.opml", "index.html"]

    proxy.clear()
    report = do_run(config)
    assert report.ok and report.published is not None
    assert report.published.written == ()
    assert proxy.requests() == []  # not even a HEAD

    hf.set_day(WED, [entry("2603.00009", "A Reasoning Robot", WED)])
    proxy.clear()
    report = do_run(config)
    assert report.ok and report.published is not None
    changed = sorted(report.published.written)
    # Both topics gained the paper; index.opml lists the same feeds, so it is not sent.
    assert changed == ["index.html", "reasoning.atom", "reasoning.rss", "robots.atom", "robots.rss"]
    assert sorted(proxy.requests()) == sorted(
        ("PUT", f"/{BUCKET}/{key_of(bucket_url, n)}") for n in changed
    )


def test_a_removed_topics_objects_go_after_the_index_stops_naming_them(
    tmp_path: Path, hf: FakeHF, seaweed: Seaweed, proxy: S3Proxy, bucket_url: str
) -> None:
    config = config_for(tmp_path, hf, bucket_url, proxy.url)
    assert do_run(config).ok
    alone = TOPICS.split("[topics.robots]")[0]
    config = config_for(tmp_path, hf, bucket_url, proxy.url, topics=alone)
    proxy.clear()
    report = do_run(config)
    assert report.ok and report.published is not None
    assert sorted(report.published.removed) == ["robots.atom", "robots.rss"]
    requests = proxy.requests()
    names = [path.rsplit("/", 1)[1] if method == "PUT" else "?delete" for method, path in requests]
    assert names == ["index.opml", "index.html", "?delete"]  # one bulk delete, last
    assert listing(seaweed, bucket_url) == [
        "index.html",
        "index.opml",
        "reasoning.atom",
        "reasoning.rss",
    ]
    _, index = fetch(seaweed, bucket_url, "index.html")
    assert b"robots" not in index


def test_a_new_schedule_sends_every_object_again_with_its_new_cache_control(
    tmp_path: Path, hf: FakeHF, seaweed: Seaweed, proxy: S3Proxy, bucket_url: str
) -> None:
    config = config_for(tmp_path, hf, bucket_url, proxy.url)
    assert do_run(config).ok
    # Every 10 minutes: the feeds' <ttl> stays at its 15-minute floor, but max-age moves.
    config = config_for(
        tmp_path, hf, bucket_url, proxy.url, extra='[schedule]\ncron = "*/10 * * * *"'
    )
    proxy.clear()
    assert do_run(config).ok
    assert sorted(path.rsplit("/", 1)[1] for _, path in proxy.requests()) == FILES
    for name in FILES:
        assert fetch(seaweed, bucket_url, name)[0]["Cache-Control"] == "public, max-age=600"
    proxy.clear()
    assert do_run(config).ok
    assert proxy.requests() == []


def test_moving_from_a_folder_to_a_bucket_uploads_everything_there(
    tmp_path: Path, hf: FakeHF, seaweed: Seaweed, bucket_url: str
) -> None:
    assert do_run(config_for(tmp_path, hf, "out", seaweed.endpoint)).ok
    report = do_run(config_for(tmp_path, hf, bucket_url, seaweed.endpoint))
    assert report.ok and report.published is not None
    assert sorted(report.published.written) == FILES and report.published.removed == ()
    assert listing(seaweed, bucket_url) == FILES
    # And back: the folder's files are the bucket's records no more, so they are checked.
    (tmp_path / "out" / "robots.rss").unlink()
    report = do_run(config_for(tmp_path, hf, "out", seaweed.endpoint))
    assert report.published is not None and "robots.rss" in report.published.written


TODAY = datetime.now(UTC).date()  # what a `feedsync run` fetches (today and two weekdays)


def papers_today(hf: FakeHF, *extra: dict[str, Any], upvotes: int = 3) -> None:
    hf.set_day(
        TODAY,
        [
            entry(
                f"{TODAY:%y%m}.90001",
                "Chain of Thought for Lattice Planning",
                TODAY,
                upvotes=upvotes,
            ),
            entry(f"{TODAY:%y%m}.90002", "A Robot That Folds Maps", TODAY, upvotes=upvotes),
            *extra,
        ],
    )


def feedsync(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedsync", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.parametrize(
    ("problem", "said"),
    [
        ("secret", "the bucket refused the credentials (HTTP 403 SignatureDoesNotMatch)"),
        ("bucket", "no such bucket"),
        ("endpoint", "cannot connect to http://127.0.0.1:9"),
    ],
)
def test_a_bucket_that_refuses_is_one_line_and_exit_1_and_the_next_run_catches_up(
    tmp_path: Path, hf: FakeHF, seaweed: Seaweed, bucket_url: str, problem: str, said: str
) -> None:
    wrong = {
        "secret": (bucket_url, seaweed.endpoint, "not-the-secret"),
        "bucket": ("s3://no-such-bucket/feeds", seaweed.endpoint, SECRET_KEY),
        "endpoint": (bucket_url, "http://127.0.0.1:9", SECRET_KEY),
    }[problem]
    url, endpoint, secret = wrong
    papers_today(hf)
    config = write_config(tmp_path, hf, url, endpoint, secret=secret)
    start = time.monotonic()
    out = feedsync(config, "run")
    assert time.monotonic() - start < 30
    assert out.returncode == 1, out.stderr
    errors = out.stderr.strip().splitlines()
    assert len(errors) == 1, out.stderr
    [error] = errors
    assert error.startswith(f"feedsync: error: cannot upload {FEED_FIRST} to {url}: {said}")
    assert "Traceback" not in out.stderr
    assert "not-the-secret" not in out.stdout + out.stderr
    with Store(tmp_path / "data" / "feedsync.sqlite3") as store:
        assert store.integrity_check() == "ok"
        assert store.count() == 2  # what was fetched is kept
    config = write_config(tmp_path, hf, bucket_url, seaweed.endpoint)
    out = feedsync(config, "run")
    assert out.returncode == 0, out.stderr
    assert listing(seaweed, bucket_url) == FILES


FEED_FIRST = "reasoning.atom"  # the first file a run uploads (feeds first, by name)


def test_a_run_killed_mid_upload_leaves_every_object_whole_and_the_next_run_completes(
    tmp_path: Path, hf: FakeHF, seaweed: Seaweed, proxy: S3Proxy, bucket_url: str
) -> None:
    config = write_config(tmp_path, hf, bucket_url, proxy.url)
    papers_today(hf)
    assert feedsync(config, "run").returncode == 0
    before = {name: fetch(seaweed, bucket_url, name)[1] for name in FILES}
    papers_today(hf, entry(f"{TODAY:%y%m}.90009", "A Reasoning Robot", TODAY))
    proxy.stall("reasoning.rss")  # the second feed: the first is sent, this one is cut
    run = subprocess.Popen(
        [sys.executable, "-m", "feedsync", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proxy.stalled.wait(60), "the upload never reached the proxy"
        os.kill(run.pid, signal.SIGKILL)
    finally:
        run.communicate(timeout=30)
    assert run.returncode == -signal.SIGKILL
    time.sleep(0.5)  # the proxy drops the half-sent upload once its client is gone
    for name in FILES:
        headers, body = fetch(seaweed, bucket_url, name)
        assert headers["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'  # whole
        if name == "reasoning.atom":
            assert b"A Reasoning Robot" in body  # the upload before the cut went through
        else:
            assert body == before[name]  # the old bytes, not half of the new ones
    out = feedsync(config, "run")
    assert out.returncode == 0, out.stderr
    for name in ("reasoning.rss", "robots.atom", "robots.rss", "index.html"):
        assert b"A Reasoning Robot" in fetch(seaweed, bucket_url, name)[1], name
    proxy.clear()
    assert feedsync(config, "run").returncode == 0
    assert proxy.requests() == []


def test_refresh_uploads_every_object_again(
    tmp_path: Path, hf: FakeHF, seaweed: Seaweed, proxy: S3Proxy, bucket_url: str
) -> None:
    import obstore

    config = config_for(tmp_path, hf, bucket_url, proxy.url)
    assert do_run(config).ok
    obstore.delete(seaweed.store(BUCKET), key_of(bucket_url, "robots.rss"))  # behind our back
    proxy.clear()
    assert do_run(config).ok
    assert proxy.requests() == []  # the record is trusted: not noticed
    with HttpClient(timeout=5, retries=1, backoff=0.01) as http:
        report = run(config, days=DAYS, client=http, refresh=True)
    assert report.ok and report.published is not None
    assert sorted(report.published.written) == FILES
    assert listing(seaweed, bucket_url) == FILES


def test_an_idle_run_to_a_bucket_does_not_even_load_the_bucket_client(
    tmp_path: Path, hf: FakeHF, seaweed: Seaweed, bucket_url: str
) -> None:
    papers_today(hf)
    config = write_config(tmp_path, hf, bucket_url, seaweed.endpoint)
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('obstore' in sys.modules))\n"
        "from feedsync.cli import main\n"
        f"main(['--config', {str(config)!r}, 'run'])\n"
    )
    loaded = []
    for _ in ("first run", "idle run"):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        loaded.append(out.stdout.strip().splitlines()[-1])
    assert loaded == ["True", "False"]
    assert "0 written" in out.stdout
