"""The HTTP client against the fake HF API: retries, Retry-After, conditional GET, limits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from feedsync.errors import FetchError
from feedsync.fetch.http import USER_AGENT, HttpClient
from tests.fakes.hf_api import FakeHF
from tests.fakes.hf_data import entry

DAY = date(2026, 3, 6)


@pytest.fixture
def hf() -> Iterator[FakeHF]:
    with FakeHF() as fake:
        fake.set_day(DAY, [entry("2603.01234", "Lattice Sketches", DAY)])
        yield fake


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(**kw: object) -> tuple[HttpClient, Sleeps]:
    sleeps = Sleeps()
    http = HttpClient(timeout=2, retries=3, backoff=0.5, sleep=sleeps, jitter=lambda: 1.0, **kw)  # type: ignore[arg-type]
    return http, sleeps


def url(hf: FakeHF) -> str:
    return f"{hf.url}/api/daily_papers?date={DAY}&limit=100"


def test_get_sends_user_agent_and_returns_validators(hf: FakeHF) -> None:
    http, _ = client()
    with http:
        r = http.get(url(hf))
    assert r.status == 200 and b"2603.01234" in r.content
    assert r.etag and r.last_modified
    assert hf.requests[0].headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("feedsync/")


def test_conditional_get_gives_304(hf: FakeHF) -> None:
    http, _ = client()
    with http:
        first = http.get(url(hf))
        second = http.get(url(hf), etag=first.etag, last_modified=first.last_modified)
    assert second.not_modified and second.content == b""
    assert [r.status for r in hf.requests] == [200, 304]


@pytest.mark.parametrize("kind", ["500", "503", "reset", "truncate"])
def test_transient_faults_are_retried_with_backoff(hf: FakeHF, kind: str) -> None:
    hf.fault(kind, times=2)
    http, sleeps = client()
    with http:
        r = http.get(url(hf))
    assert r.status == 200
    assert sleeps == [0.5, 1.0]  # exponential: base * 2^attempt (jitter pinned to 1)
    assert http.requests == 3


@pytest.mark.parametrize(("retry_after", "reset", "waited"), [
    (7, None, 7.25),  # Retry-After
    (None, 3, 3.25),  # the RateLimit header's reset alone, as the Hub sends it
    (7, 2, 7.25),  # both: Retry-After wins
])  # fmt: skip
def test_a_429_waits_what_it_asks_without_counting_as_an_attempt(
    hf: FakeHF, retry_after: int | None, reset: int | None, waited: float
) -> None:
    hf.fault("429", retry_after=retry_after, reset=reset, times=3)
    sleeps = Sleeps()
    with HttpClient(timeout=2, retries=0, sleep=sleeps) as http:
        assert http.get(url(hf)).status == 200  # with no retries at all
    assert sleeps == [pytest.approx(waited, abs=0.05)] * 3  # plus the quota's margin


def test_retry_after_is_honoured(hf: FakeHF) -> None:
    hf.fault("429", retry_after=7)
    http, sleeps = client()
    with http:
        assert http.get(url(hf)).status == 200
    assert sleeps == [pytest.approx(7.25, abs=0.05)]  # plus the quota's margin


def test_gives_up_after_retries_with_a_clear_error(hf: FakeHF) -> None:
    hf.fault("503", times=10)
    http, sleeps = client()
    with http, pytest.raises(FetchError, match=r"HTTP 503, gave up after 4 attempts \(http://127"):
        http.get(url(hf))
    assert len(sleeps) == 3


def test_client_errors_are_not_retried(hf: FakeHF) -> None:
    http, sleeps = client()
    with http, pytest.raises(FetchError, match="HTTP 400"):
        http.get(f"{hf.url}/api/daily_papers?date=2026-13-40&limit=100")
    assert sleeps == []


def test_timeout_is_a_fetch_error(hf: FakeHF) -> None:
    hf.fault("slow", delay=0.8, times=5)
    sleeps = Sleeps()
    with HttpClient(timeout=0.3, retries=1, backoff=0.01, sleep=sleeps) as http:
        with pytest.raises(FetchError, match="timed out"):
            http.get(url(hf))


def test_unreachable_server_is_a_fetch_error() -> None:
    http, _ = client()
    with http, pytest.raises(FetchError, match="connection failed"):
        http.get("http://127.0.0.1:9/api/daily_papers?date=2026-03-06&limit=100")


def test_absurd_retry_after_fails_instead_of_hanging(hf: FakeHF) -> None:
    hf.fault("429", retry_after=86400)
    http, sleeps = client()
    with http, pytest.raises(FetchError, match="quota is spent for another 86400 s, longer"):
        http.get(url(hf))
    assert sleeps == []


@pytest.mark.timeout(30)  # without the limit, the answer is waited for until this ends it
@pytest.mark.parametrize("in_headers", [False, True], ids=["body", "headers"])
def test_an_answer_that_never_ends_fails_after_the_timeout(in_headers: bool) -> None:
    """Each read is quick, the whole answer never comes: the timeout bounds the answer, so
    a run (and a daemon's next passes) cannot wait for it for good."""
    from tests.fakes.stalled import TricklingServer

    with TricklingServer(interval=0.1, headers=in_headers) as server:
        http = HttpClient(timeout=0.6, retries=1, backoff=0.01)
        with pytest.raises(FetchError, match=r"answer not complete after 0.6 s, gave up after 2"):
            http.get(f"{server.url}/api/daily_papers?date=2026-03-06")
        http.close()
    assert server.requests == 2


def test_a_request_in_flight_when_the_client_closes_ends_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stopped run closes its client under requests still waiting on a hung server: they
    end with "stopped", without retrying or logging that they will."""
    import threading
    import time

    from tests.fakes.stalled import StalledServer

    http = HttpClient(timeout=0.5, retries=3, backoff=0.01, jitter=lambda: 1.0)
    outcome: list[BaseException] = []

    def fetch() -> None:
        try:
            http.get(f"{server.url}/api/daily_papers?date=2026-03-06")
        except FetchError as e:
            outcome.append(e)

    with StalledServer() as server:
        worker = threading.Thread(target=fetch)
        worker.start()
        assert server.accepted.wait(10)
        time.sleep(0.1)
        http.close()
        worker.join(10)
    assert [str(e) for e in outcome] == [f"stopped ({server.url}/api/daily_papers?date=2026-03-06)"]
    assert "retrying" not in caplog.text
