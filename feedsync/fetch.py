"""HTTP for the digest sources: timeouts, retries with backoff, conditional GET.

One ``HttpClient`` wraps one ``httpx.Client`` for a whole run, so connections are reused
across days and pages. Every request has a timeout; connection errors, 429 and 5xx are
retried with exponential backoff and full jitter, waiting at least what ``Retry-After``
asks for. A response the caller can use (200 or 304) comes back as a ``Response``; anything
else ends as a ``FetchError`` naming the URL, which is the only exception this module lets
out.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from feedsync import __version__
from feedsync.errors import FetchError
from feedsync.threads import Late, within
from feedsync.waits import wait_seconds

log = logging.getLogger(__name__)

USER_AGENT = f"feedsync/{__version__} (Daily Papers feed builder; httpx/{httpx.__version__})"
# A digest larger than this is refused while it downloads: memory stays bounded.
MAX_BODY = 64 * 1024 * 1024
# Longest single wait we accept from Retry-After or backoff; longer asks fail the fetch.
MAX_WAIT = 300.0
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Response:
    """A usable answer: 200 with a body, or 304 (``content`` empty)."""

    url: str
    status: int
    content: bytes
    etag: str | None
    last_modified: str | None
    retry_after: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class HttpClient:
    """GET with retries; use as a context manager."""

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        tls: bool = True,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.requests = 0  # requests sent, retries included (the benchmark reports it)
        self._closed = False
        self._sleep = sleep
        self._jitter = jitter
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

    def close(self) -> None:
        self._closed = True
        self._client.close()

    def get(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> Response:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        attempt = 0
        while True:
            if self._closed:  # the run stopped while this waited to retry
                raise FetchError("stopped", url)
            try:
                response = self._send(url, headers)
            except httpx.TransportError as e:
                problem = _describe(e)
                wait = self._backoff(attempt)
            except _TooLarge:
                raise FetchError(f"response larger than {MAX_BODY // 2**20} MB", url) from None
            except _TooSlow:
                problem = f"answer not complete after {self.timeout:g} s"
                wait = self._backoff(attempt)
            else:
                if response.status in (200, 304):
                    return response
                problem = f"HTTP {response.status}"
                if response.status not in RETRY_STATUS:
                    raise FetchError(problem, url)
                wait = max(self._backoff(attempt), wait_seconds(response.retry_after) or 0.0)
            if self._closed:  # closed under a request in flight: the run has stopped
                raise FetchError("stopped", url)
            if attempt >= self.retries:
                raise FetchError(f"{problem}, gave up after {attempt + 1} attempts", url)
            if wait > MAX_WAIT:
                raise FetchError(f"{problem}, server asks to wait {wait:.0f} s", url)
            log.warning("fetch %s: %s, retrying in %.1f s", url, problem, wait)
            self._sleep(wait)
            attempt += 1

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
    )


def _describe(error: httpx.TransportError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.RemoteProtocolError):
        return f"connection broken ({error})"
    return f"connection failed ({error})"
