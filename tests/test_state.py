"""The store as one object in a bucket (``[state] url``), against a real S3 server.

Each "runner" is a fresh data_dir, as a scheduled job on a fresh machine would have.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import obstore
import pytest

from feedsync.config import Config, load_config
from feedsync.errors import StateConflict
from feedsync.fetch.http import HttpClient
from feedsync.pipeline import run
from feedsync.publish.state import Checkout, checkin, checkout
from feedsync.store import Store
from tests.conftest import BUCKET
from tests.fakes.hf_api import FakeHF
from tests.fakes.hf_data import entry
from tests.fakes.s3_proxy import S3Proxy
from tests.fakes.seaweed import ACCESS_KEY, REGION, SECRET_KEY, Seaweed
from tests.fakes.zotero_api import FakeZotero
from tests.test_bucket import DAYS, MON, TOPICS, TUE, WED, listing, papers_today


@pytest.fixture
def hf() -> Iterator[FakeHF]:
    with FakeHF() as fake:
        fake.set_day(MON, [entry("2603.00001", "Chain of Thought for Lattice Planning", MON)])
        fake.set_day(TUE, [entry("2603.00003", "Reasoning Traces in Tiny Models", TUE)])
        yield fake


@pytest.fixture
def proxy(seaweed: Seaweed) -> Iterator[S3Proxy]:
    with S3Proxy(seaweed.endpoint) as counting:
        yield counting


def runner(
    home: Path,
    hf: FakeHF,
    prefix: str,
    endpoint: str,
    *,
    name: str = "runner",
    secret: str = SECRET_KEY,
    extra: str = "",
    topics: str = TOPICS,
) -> Config:
    """A job's config: its own data_dir, the feeds and the state in the bucket."""
    workdir = home / name
    workdir.mkdir(exist_ok=True)
    path = workdir / "feedsync.toml"
    path.write_text(
        f"""
data_dir = "data"
output_dir = "{prefix}/feeds"
base_url = "https://feeds.example.org/papers"
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
[state]
url = "{prefix}/state/feedsync.sqlite3"
{extra}
{topics}
""",
        encoding="utf-8",
    )
    return load_config(path, {})


def do_run(config: Config, **kw: object):  # type: ignore[no-untyped-def]
    with HttpClient(timeout=5, retries=1, backoff=0.01) as http:
        return run(config, days=DAYS, client=http, **kw)  # type: ignore[arg-type]


def state_key(prefix: str) -> str:
    return f"{prefix.removeprefix(f's3://{BUCKET}/')}/state/feedsync.sqlite3"


def state_object(seaweed: Seaweed, prefix: str) -> tuple[bytes, str]:
    got = obstore.get(seaweed.store(BUCKET), state_key(prefix))
    return bytes(got.bytes()), str(got.meta["e_tag"])


def feed_bytes(seaweed: Seaweed, prefix: str) -> dict[str, bytes]:
    store = seaweed.store(BUCKET)
    key = prefix.removeprefix(f"s3://{BUCKET}/")
    return {
        name: bytes(obstore.get(store, f"{key}/feeds/{name}").bytes())
        for name in listing(seaweed, f"{prefix}/feeds")
    }


def papers_in(data: bytes, tmp: Path) -> int:
    copy = tmp / f"copy-{hashlib.md5(data).hexdigest()}.sqlite3"
    copy.write_bytes(data)
    with Store(copy) as store:
        assert store.integrity_check() == "ok"
        return store.count()


def test_a_job_on_a_fresh_runner_fetches_the_state_and_an_idle_one_saves_nothing(
    tmp_path: Path, hf: FakeHF, seaweed: Seaweed, proxy: S3Proxy, bucket_url: str
) -> None:
    first = runner(tmp_path, hf, bucket_url, proxy.url, name="first")
    assert not (first.data_dir / "feedsync.sqlite3").exists()
    report = do_run(first)  # no state yet: a new store, saved at the end
    assert report.ok and report.published is not None and len(report.published.written) == 6
    data, etag = state_object(seaweed, bucket_url)
    assert papers_in(data, tmp_path) == 2

    # The next job runs on a machine that has never seen the store; nothing is new.
    second = runner(tmp_path, hf, bucket_url, proxy.url, name="second")
    proxy.clear()
    report = do_run(second)
    assert report.ok and report.published is not None and report.published.written == ()
    key = f"/{BUCKET}/{state_key(bucket_url)}"
    # One GET: no feed is sent again (the store it fetched knows what is in the bucket),
    # and the store is not sent back for the sake of one status line.
    assert [(s.method, s.path, s.status) for s in proxy.log] == [("GET", key, 200)]
    assert state_object(seaweed, bucket_url)[1] == etag

    # On a machine that keeps its data_dir (cron on a laptop), the GET is conditional.
    proxy.clear()
    assert do_run(second).ok
    assert [(s.method, s.status) for s in proxy.log] == [("GET", 304)]

    # A run with something new saves it, over the version it fetched.
    hf.set_day(WED, [entry("2603.00009", "A Reasoning Robot", WED)])
    proxy.clear()
    assert do_run(second).ok
    methods = [s.method for s in proxy.log]
    assert methods[0] == "GET" and methods[1] == "HEAD" and methods[-1] == "PUT"
    assert methods[2:-1] == ["PUT"] * 5  # the changed feeds, after the check
    assert papers_in(state_object(seaweed, bucket_url)[0], tmp_path) == 3


def save_together(jobs: list[Config], taken: list[Checkout]) -> list[str]:
    """Both jobs' saves, released at the same moment: "saved" or the refusal, per job."""
    start = threading.Barrier(len(jobs))
    outcome = [""] * len(jobs)

    def save(n: int) -> None:
        start.wait()
        try:
            checkin(jobs[n], taken[n])
            outcome[n] = "saved"
        except StateConflict as e:
            outcome[n] = str(e)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


def test_two_overlapping_saves_leave_exactly_one_winner(
    tmp_path: Path, hf: FakeHF, seaweed: Seaweed, bucket_url: str
) -> None:
    assert do_run(runner(tmp_path, hf, bucket_url, seaweed.endpoint, name="setup")).ok
    for round_ in range(8):
        jobs = [
            runner(tmp_path, hf, bucket_url, seaweed.endpoint, name=f"job-{round_}-{n}")
            for n in range(2)
        ]
        taken = [checkout(job) for job in jobs]
        for n, job in enumerate(jobs):  # each job changes its copy its own way
            with Store(job.store_path) as store:
                store.set_value("test:job", str(n))
        outcome = save_together(jobs, taken)
        assert sorted(outcome)[1] == "saved", outcome
        assert sorted(outcome)[0].startswith("another job saved the state"), outcome
        winner = outcome.index("saved")
        data, _ = state_object(seaweed, bucket_url)
        copy = tmp_path / f"round-{round_}.sqlite3"
        copy.write_bytes(data)
        with Store(copy) as store:
            assert store.get_value("test:job") == str(winner)


def test_a_job_whose_state_was_saved_meanwhile_stops_before_publishing(
    tmp_path: Path, hf: FakeHF, seaweed: Seaweed, bucket_url: str
) -> None:
    assert do_run(runner(tmp_path, hf, bucket_url, seaweed.endpoint, name="setup")).ok
    feeds = feed_bytes(seaweed, bucket_url)
    hf.set_day(WED, [entry("2603.00009", "A Reasoning Robot", WED)])
    late = runner(tmp_path, hf, bucket_url, seaweed.endpoint, name="late")
    other = runner(tmp_path, hf, bucket_url, seaweed.endpoint, name="other")
    saved = threading.Event()

    def another_job_saves_meanwhile() -> bool:
        # Polled by the late job's fetch, after it fetched the state: another job saves
        # a change of its own now (one that publishes nothing, so the feeds stay).
        if not saved.is_set():
            saved.set()
            taken = checkout(other)
            with Store(other.store_path) as store:
                store.set_value("test:other", "saved")
            checkin(other, taken)
        return False

    with pytest.raises(StateConflict, match="since this run fetched it: stopped before publishing"):
        do_run(late, stop=another_job_saves_meanwhile)
    assert feed_bytes(seaweed, bucket_url) == feeds  # nothing published
    # The next job fetches the other job's state and publishes the new paper.
    report = do_run(runner(tmp_path, hf, bucket_url, seaweed.endpoint, name="next"))
    assert report.ok and report.published is not None and report.published.written


def feedsync(config: Config, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedsync", "--config", str(config.config_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_overlapping_job_is_refused_at_save_with_one_line_and_exit_3(
    tmp_path: Path, hf: FakeHF, seaweed: Seaweed, bucket_url: str
) -> None:
    papers_today(hf)
    assert (
        feedsync(runner(tmp_path, hf, bucket_url, seaweed.endpoint, name="setup"), "run").returncode
        == 0
    )
    slow = runner(tmp_path, hf, bucket_url, seaweed.endpoint, name="slow")
    quick = runner(tmp_path, hf, bucket_url, seaweed.endpoint, name="quick")
    # New upvotes: both jobs have something to save (the counts), and nothing to publish
    # (counts are never shown), so the slow one meets no check before its save.
    papers_today(hf, upvotes=40)
    hf.fault("slow", delay=3.0)  # the slow job's first request: it has fetched the state
    job = subprocess.Popen(
        [sys.executable, "-m", "feedsync", "--config", str(slow.config_path), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not any(r.status == 0 for r in hf.requests) and time.monotonic() < deadline:
        time.sleep(0.02)  # until the slow job's request is in the fake's hands
    assert feedsync(quick, "run").returncode == 0  # saves first
    out, err = job.communicate(timeout=60)
    assert job.returncode == 3, err
    assert err.strip().splitlines() == [
        f"feedsync: error: another job saved the state {bucket_url}/state/feedsync.sqlite3 "
        "meanwhile: this run's changes are not saved; the next run fetches it again"
    ]
    assert (
        feedsync(runner(tmp_path, hf, bucket_url, seaweed.endpoint, name="next"), "run").returncode
        == 0
    )


def test_a_missing_object_starts_a_new_store_or_takes_the_local_one(
    tmp_path: Path, hf: FakeHF, seaweed: Seaweed, bucket_url: str
) -> None:
    # An installation that moves to a bucket: its store, never saved anywhere, goes there.
    local = runner(tmp_path, hf, bucket_url, seaweed.endpoint, name="local")
    with Store(local.store_path) as store:
        store.set_value("test:history", "kept")
    assert do_run(local).ok
    data, _ = state_object(seaweed, bucket_url)
    copy = tmp_path / "moved.sqlite3"
    copy.write_bytes(data)
    with Store(copy) as store:
        assert store.get_value("test:history") == "kept"
    # Once saved, a deleted object means "start again": the working copy goes too.
    obstore.delete(seaweed.store(BUCKET), state_key(bucket_url))
    assert do_run(local).ok
    with Store(local.store_path) as store:
        assert store.get_value("test:history") is None


@pytest.mark.parametrize(
    ("problem", "said"),
    [
        ("secret", "the bucket refused the credentials (HTTP 403 SignatureDoesNotMatch)"),
        ("bucket", "no such bucket"),
        ("endpoint", "cannot connect to http://127.0.0.1:9"),
    ],
)
def test_a_state_that_cannot_be_fetched_is_one_line_and_exit_3(
    tmp_path: Path, hf: FakeHF, seaweed: Seaweed, bucket_url: str, problem: str, said: str
) -> None:
    prefix, endpoint, secret = {
        "secret": (bucket_url, seaweed.endpoint, "not-the-secret"),
        "bucket": ("s3://no-such-bucket/x", seaweed.endpoint, SECRET_KEY),
        "endpoint": (bucket_url, "http://127.0.0.1:9", SECRET_KEY),
    }[problem]
    config = runner(tmp_path, hf, prefix, endpoint, secret=secret)
    out = feedsync(config, "run")
    assert out.returncode == 3, out.stderr
    bucket, _, key = prefix.removeprefix("s3://").partition("/")
    errors = out.stderr.strip().splitlines()
    assert len(errors) == 1, out.stderr
    assert errors[0].startswith(
        f"feedsync: error: cannot fetch {key}/state/feedsync.sqlite3 from s3://{bucket}: {said}"
    )
    assert "not-the-secret" not in out.stdout + out.stderr and "Traceback" not in out.stderr
    assert not config.store_path.exists()  # nothing ran


def test_a_lost_save_duplicates_no_zotero_item(
    tmp_path: Path, hf: FakeHF, seaweed: Seaweed, bucket_url: str
) -> None:
    """The job that loses the race has created Zotero items its lost store remembered: the
    next job, from the winner's store, adopts them instead of creating them again."""
    papers_today(hf)
    with FakeZotero() as zot:
        zotero = f"""
[zotero]
enabled = true
library_id = "{zot.library_id}"
api_key = "{zot.api_key}"
api_url = "{zot.url}"
"""
        topics = TOPICS.replace('query = "robot*"', 'query = "robot*"\nzotero = true')
        setup = runner(tmp_path, hf, bucket_url, seaweed.endpoint, name="setup", topics=topics)
        assert feedsync(setup, "run").returncode == 0  # Zotero off: the state exists
        loser = runner(
            tmp_path, hf, bucket_url, seaweed.endpoint, name="loser", extra=zotero, topics=topics
        )
        other = runner(tmp_path, hf, bucket_url, seaweed.endpoint, name="other", topics=topics)
        zot.fault("429", retry_after=3)  # the loser waits in Zotero, its state check passed
        job = subprocess.Popen(
            [sys.executable, "-m", "feedsync", "--config", str(loser.config_path), "run"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while not zot.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        papers_today(hf, upvotes=40)  # something for the other job to save
        assert feedsync(other, "run").returncode == 0  # another job saves meanwhile
        _, err = job.communicate(timeout=60)
        assert job.returncode == 3, err
        assert "this run's changes are not saved" in err
        assert len(zot.items("preprint")) == 1  # the loser did create the robot paper's item
        after = runner(
            tmp_path, hf, bucket_url, seaweed.endpoint, name="after", extra=zotero, topics=topics
        )
        out = feedsync(after, "run")
        assert out.returncode == 0, out.stderr
        assert len(zot.items("preprint")) == 1  # adopted, not made twice
        assert "zotero:" in out.stdout


def test_check_config_shows_the_state_url(tmp_path: Path, hf: FakeHF, bucket_url: str) -> None:
    config = runner(tmp_path, hf, bucket_url, "http://127.0.0.1:9")
    out = feedsync(config, "check-config")
    assert out.returncode == 0, out.stderr
    assert f'url = "{bucket_url}/state/feedsync.sqlite3"' in out.stdout
    assert f'output_dir = "{bucket_url}/feeds"' in out.stdout
    assert SECRET_KEY not in out.stdout and 'secret_access_key = "********"' in out.stdout
