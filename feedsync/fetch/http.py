"""HTTP for the digest sources: timeouts, retries with backoff, the Hub's quotas,
conditional GET.

One ``HttpClient`` wraps one ``httpx.Client`` for a whole run, so connections are reused
across days and pages, and one ``Pacer`` (see quota.py), so every worker keeps to the
Hub's rate limits together. Rules, in order:

1. A request waits while its quota bucket is spent (up to ``max_wait`` seconds; longer,
   and the source stops fetching with a ``SourceStopped`` that says when to come back).
2. Every request has a timeout; connection errors, 5xx, and a 429 that states no wait are
   retried with exponential backoff and full jitter, waiting at least what ``Retry-After``
   asks for. Each counts as a failed attempt.
3. A 429 that says how long its window lasts (``RateLimit ... t=``, or ``Retry-After``)
   waits that long and is sent again without counting as a failed attempt.
4. The token, if any, goes to the source's own origin only; httpx drops it on a redirect
   to another. A 401 to a request that carried it stops the source (``SourceStopped``).

A response the caller can use (200 or 304) comes back as a ``Response``; anything else
ends as a ``FetchError`` naming the URL, which is the only exception this module lets out.
Waits end at once when the client is closed, so a stopping run is never held by one.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx

from feedsync import __version__
from feedsync.errors import FetchError, SourceStopped
from feedsync.fetch.quota import Limit, Pacer, Wait, bucket_of, parse_limits, parse_policies
from feedsync.net import Late, wait_seconds, within

log = logging.getLogger(__name__)

USER_AGENT = f"feedsync/{__version__} (Daily Papers feed builder; httpx/{httpx.__version__})"
# A digest larger than this is refused while it downloads: memory stays bounded.
MAX_BODY = 64 * 1024 * 1024
# Longest single wait we accept from Retry-After or backoff; longer asks fail the fetch.
MAX_WAIT = 300.0
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
# A server that answers 429 "wait t" again after every wait is broken, not busy: after this
# many such answers in a row, one request gives up.
MAX_QUOTA_REFUSALS = 10


@dataclass(frozen=True, slots=True)
class Response:
    """A usable answer: 200 with a body, or 304 (``content`` empty)."""

    url: str
    status: int
    content: bytes
    etag: str | None
    last_modified: str | None
    retry_after: str | None = None
    rate_limit: str | None = None
    rate_limit_policy: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class HttpClient:
    """GET with retries and quota pacing; use as a context manager.

    ``sleep`` waits between attempts and for quotas (by default a wait that ``close``
    ends); ``on_wait`` hears of each quota window a request has to wait for, once.
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 1.0,
        max_wait: float = 600.0,
        token: str | None = None,
        token_origin: str | None = None,
        token_from: str = "the token",
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        jitter: Callable[[], float] = random.random,
        pacer: Pacer | None = None,
        on_wait: Callable[[str], None] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        tls: bool = True,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.requests = 0  # requests sent, retries included (the benchmark reports it)
        self.quota_waits = 0  # windows this client waited for
        self._closed = threading.Event()
        self._sleep = self._wait if sleep is None else sleep
        self._jitter = jitter
        self._pacer = pacer or Pacer()
        self.on_wait = on_wait
        self._now = now
        self._token = token
        self._token_origin = _origin(token_origin) if token and token_origin else None
        self._token_from = token_from
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip"},
            follow_redirects=True,
            transport=transport,
            # Loading the CA bundle costs tens of milliseconds per run: only when a source
            # is https (always, for huggingface.co). A plain-http source is unauthenticated
            # from its first hop, so an https redirect from it is not verified either.
            verify=tls,
        )

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait(self, seconds: float) -> None:
        self._closed.wait(seconds)

    def close(self) -> None:
        self._closed.set()  # wakes every wait at once
        self._client.close()

    def get(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> Response:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        authorized = self._token is not None and _origin(url) == self._token_origin
        if authorized:
            headers["Authorization"] = f"Bearer {self._token}"
        bucket = bucket_of(url)
        attempt = refusals = 0
        while True:
            self._admit(bucket, url)
            try:
                response = self._send(url, headers)
            except httpx.TransportError as e:
                self._pacer.settle(bucket, [], [])
                problem, retry_after = _describe(e), None
            except _TooSlow:
                self._pacer.settle(bucket, [], [])
                problem, retry_after = f"answer not complete after {self.timeout:g} s", None
            except _TooLarge:
                self._pacer.settle(bucket, [], [])
                raise FetchError(f"response larger than {MAX_BODY // 2**20} MB", url) from None
            else:
                refused_for = self._settle(bucket, response)
                if response.status in (200, 304):
                    return response
                problem, retry_after = f"HTTP {response.status}", response.retry_after
                if response.status == 401 and authorized:
                    raise SourceStopped(
                        f"the Hub refused {self._token_from} (HTTP 401): check that it is "
                        "a valid Hugging Face access token, or remove it",
                        url,
                    )
                if response.status not in RETRY_STATUS:
                    raise FetchError(problem, url)
                if refused_for is not None:
                    refusals += 1
                    if refusals >= MAX_QUOTA_REFUSALS:
                        raise FetchError(f"HTTP 429 after each of {refusals} quota waits", url)
                    log.info("fetch %s: over the Hub's %s quota", url, bucket)
                    continue  # not a failed attempt: the next admit waits for the window
            if self._closed.is_set():  # closed under a request in flight: the run has stopped
                raise FetchError("stopped", url)
            wait = max(self._backoff(attempt), wait_seconds(retry_after) or 0.0)
            if attempt >= self.retries:
                raise FetchError(f"{problem}, gave up after {attempt + 1} attempts", url)
            if wait > MAX_WAIT:
                raise FetchError(f"{problem}, server asks to wait {wait:.0f} s", url)
            log.warning("fetch %s: %s, retrying in %.1f s", url, problem, wait)
            self._sleep(wait)
            attempt += 1

    def _settle(self, bucket: str, response: Response) -> float | None:
        """Tell the pacer what an answer said; for a 429 that states how long its window
        lasts, that wait (None otherwise)."""
        limits = parse_limits(response.rate_limit)
        refused_for = _quota_wait(response, limits, bucket) if response.status == 429 else None
        self._pacer.settle(
            bucket, limits, parse_policies(response.rate_limit_policy), refused_for=refused_for
        )
        return refused_for

    def _admit(self, bucket: str, url: str) -> None:
        """Return once a request of ``bucket`` may be sent; sleep while its quota is spent."""
        while True:
            if self._closed.is_set():  # the run stopped while this waited
                raise FetchError("stopped", url)
            wait = self._pacer.admit(bucket)
            if wait is None:
                return
            if wait.seconds > self.max_wait:
                raise self._too_long(wait, url)
            if wait.announce:
                self.quota_waits += 1
                log.warning("%s", wait)
                if self.on_wait is not None:
                    self.on_wait(str(wait))
            self._sleep(wait.seconds)
            self._pacer.waited(wait)

    def _too_long(self, wait: Wait, url: str) -> SourceStopped:
        back = (self._now() + timedelta(seconds=wait.seconds)).strftime("%Y-%m-%d %H:%M UTC")
        quota = f" ({wait.policy})" if wait.policy else ""
        return SourceStopped(
            f"the Hub's {wait.bucket} quota{quota} is spent for another "
            f"{wait.seconds:.0f} s, longer than [source] max_wait ({self.max_wait:g} s): "
            f"stopped fetching; run again after {back}",
            url,
        )

    def _send(self, url: str, headers: dict[str, str]) -> Response:
        """One attempt, over within the timeout however the server sends (or not) its answer.

        httpx times each read, not the answer: a server, or a stuck proxy, that sends a byte
        now and then would hold a run, and a daemon's every later pass, for good. The
        attempt runs on its own thread; one not over in time is abandoned (its thread ends
        when the answer does, or when the run closes the client under it).
        """
        self.requests += 1
        # The body's own check ends a slow answer at the timeout; this wait, a little later,
        # also bounds the headers.
        try:
            return within(self.timeout * 1.5, lambda: self._receive(url, headers), "fetch-attempt")
        except Late:
            raise _TooSlow from None

    def _receive(self, url: str, headers: dict[str, str]) -> Response:
        deadline = time.monotonic() + self.timeout
        with self._client.stream("GET", url, headers=headers) as r:
            if r.status_code != 200:
                r.read()
                return _response(r, b"")
            chunks: list[bytes] = []
            size = 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > MAX_BODY:
                    raise _TooLarge
                if time.monotonic() > deadline:
                    raise _TooSlow
                chunks.append(chunk)
            return _response(r, b"".join(chunks))

    def _backoff(self, attempt: int) -> float:
        # Full jitter: a random wait in [0, base * 2^attempt], so retrying clients spread out.
        return float(self.backoff * (2**attempt) * self._jitter())


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


def _response(r: httpx.Response, content: bytes) -> Response:
    return Response(
        url=str(r.request.url),
        status=r.status_code,
        content=content,
        etag=r.headers.get("ETag"),
        last_modified=r.headers.get("Last-Modified"),
        retry_after=r.headers.get("Retry-After"),
        rate_limit=r.headers.get("RateLimit"),
        rate_limit_policy=r.headers.get("RateLimit-Policy"),
    )


def _quota_wait(response: Response, limits: list[Limit], bucket: str) -> float | None:
    """How long a 429 asks to wait before the same request can succeed; None if it does
    not say (then it is retried on the backoff schedule)."""
    asked = wait_seconds(response.retry_after)
    if asked is not None:
        return asked
    for limit in limits:
        if limit.bucket == bucket and limit.reset is not None:
            return limit.reset
    return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _describe(error: httpx.TransportError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.RemoteProtocolError):
        return f"connection broken ({error})"
    return f"connection failed ({error})"
