"""The one place that talks to the Zotero Web API: pyzotero 1.16, wrapped where it falls short.

Rules, in order:
1. pyzotero is pointed at ``api_url`` through ``zot.endpoint`` and given its own httpx2
   client (timeouts, a request counter). The API key travels only in its Authorization
   header; no message, log line or exception text of this module contains it.
2. Every call is retried on connection errors (reset, timeout, refused), 429, 500, 502,
   503, 504 and 409 (library locked), waiting the longer of exponential backoff with full
   jitter and what the server asks (``Retry-After`` or ``Backoff``, seconds, floats
   allowed), for at most ``attempts`` tries. A wait over ``MAX_WAIT`` ends the call: the
   next run resumes, since nothing is lost by stopping.
3. A ``Backoff`` header on a successful answer delays the next request, not this one.
4. Writes are retried blindly only because they are idempotent: every object carries its
   ``key`` and ``version`` (0 for a create), so a replay of a write whose answer was lost
   fails per object with 412 ("already there") instead of duplicating anything. Objects
   without both are refused before sending: that would be a bug here.
5. pyzotero's own failures -- PyZoteroError subclasses, the raw ``json.JSONDecodeError`` a
   429 on a create produces, ``TooManyRetriesError``, httpx2 errors -- and answers of the
   wrong shape leave as ``SyncError``, naming the library and what was being done.
"""

from __future__ import annotations

import html
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
from pyzotero import zotero_errors
from pyzotero.zotero import Zotero

from feedsync import __version__
from feedsync.errors import SyncError
from feedsync.net import Late, wait_seconds, within

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BATCH = 50  # objects per write, the API's limit
MAX_WAIT = 300.0  # longest single wait we accept from the server
RETRY_STATUS = frozenset({409, 429, 500, 502, 503, 504})
KEYS_URL = "https://www.zotero.org/settings/keys"


@dataclass(frozen=True, slots=True)
class Failure:
    """One object the server refused in a 200 answer."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class WriteResult:
    """A multi-object write, by index into what was sent."""

    written: dict[int, int]  # index -> the object's new version
    unchanged: frozenset[int]
    failed: dict[int, Failure]


class _WaitTooLong(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"{seconds:.0f} s")
        self.seconds = seconds


class _Zotero(Zotero):
    """pyzotero, with its waits (Backoff, Retry-After) routed through our ``pause``.

    pyzotero sleeps with ``time.sleep`` between its own 429 retries and before the request
    after a ``Backoff``; overriding its two backoff hooks keeps every wait in one place
    (bounded, logged, and fast in tests).
    """

    def __init__(self, *args: Any, pause: Callable[[float], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pause = pause
        self.pending_wait = 0.0

    def _set_backoff(self, duration: str | float) -> None:
        self.pending_wait = max(self.pending_wait, wait_seconds(str(duration)) or 0.0)

    def _check_backoff(self) -> None:
        wait, self.pending_wait = self.pending_wait, 0.0
        if wait > 0:
            self._pause(wait)

    def default_headers(self) -> dict[str, str]:
        headers: dict[str, str] = super().default_headers()
        headers["User-Agent"] = f"feedsync/{__version__} {headers.get('User-Agent', '')}".strip()
        return headers


class ZoteroClient:
    """The Zotero Web API for one library; use as a context manager."""

    def __init__(
        self,
        *,
        library_id: str,
        library_type: str,
        api_key: str,
        api_url: str = "https://api.zotero.org",
        timeout: float = 60.0,
        attempts: int = 5,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.library = f"{library_type}s/{library_id}"
        self.api_url = api_url.rstrip("/")
        self.requests = 0  # sent, retries included (the benchmark reports it)
        self.attempts = attempts
        self.backoff = backoff
        self._timeout = timeout
        self._sleep = sleep
        self._jitter = jitter
        self._secret = api_key
        self._http = httpx2.Client(
            timeout=httpx2.Timeout(timeout),
            follow_redirects=True,
            event_hooks={"request": [self._count]},
            transport=_WholeAnswerTimeout(timeout),
        )
        self._zot = _Zotero(library_id, library_type, api_key, client=self._http, pause=self._pause)
        self._zot.endpoint = self.api_url

    def __enter__(self) -> ZoteroClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- reads -------------------------------------------------------------------------------

    def item_versions(self, *, tag: str) -> dict[str, int]:
        """Key -> version of every item with this tag, trashed ones included (one request:
        versions are unpaged)."""
        result = self._call(
            f"listing the items of {self.library}",
            lambda: self._zot.item_versions(tag=tag, includeTrashed=1),
        )
        if not isinstance(result, dict):
            raise self._shape("item versions")
        return {str(k): int(v) for k, v in result.items()}

    def items(self, *, keys: Sequence[str] = (), tags: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Items (their editable JSON, trashed ones included) by key, or with any of the tags.

        The caller keeps ``keys`` to 50 and ``tags`` short enough for a URL; pages of 100
        are followed.
        """
        params: dict[str, Any] = {"limit": 100, "includeTrashed": 1}
        if keys:
            params["itemKey"] = ",".join(keys)
        if tags:
            params["tag"] = " || ".join(tags)
        what = f"reading {len(keys) or len(tags)} item(s) of {self.library}"
        return self._objects(what, lambda: self._zot.everything(self._zot.items(**params)))

    def top_collections(self) -> list[dict[str, Any]]:
        what = f"listing the collections of {self.library}"
        return self._objects(
            what, lambda: self._zot.everything(self._zot.collections_top(limit=100))
        )

    def subcollections(self, key: str) -> list[dict[str, Any]]:
        what = f"listing the subcollections of {key} in {self.library}"
        return self._objects(
            what, lambda: self._zot.everything(self._zot.collections_sub(key, limit=100))
        )

    # -- writes ------------------------------------------------------------------------------

    def write_items(self, objects: Sequence[Mapping[str, Any]]) -> WriteResult:
        """Create or update up to 50 items in one request; see the module rules 2 and 4."""
        payload = _idempotent(objects)
        raw = self._call(
            f"writing {len(payload)} item(s) to {self.library}",
            lambda: self._zot.create_items(payload, timeout=self._timeout),
        )
        return self._result(raw, len(payload))

    def write_collections(self, objects: Sequence[Mapping[str, Any]]) -> WriteResult:
        payload = _idempotent(objects)
        raw = self._call(
            f"creating {len(payload)} collection(s) in {self.library}",
            lambda: self._zot.create_collections(payload),
        )
        return self._result(raw, len(payload))

    # -- the retry loop ----------------------------------------------------------------------

    def _call(self, what: str, work: Callable[[], T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            self._zot.request = None  # so a stale answer is never read as this one's
            try:
                return work()
            except _WaitTooLong as e:
                raise _too_long(e.seconds, what) from None
            except httpx2.TransportError as e:
                problem, asked, error = _describe(e), 0.0, e
            except (zotero_errors.PyZoteroError, httpx2.HTTPError, json.JSONDecodeError) as e:
                response = self._zot.request
                if response is None:
                    raise SyncError(self._redact(f"{what}: {type(e).__name__}: {e}")) from e
                status = response.status_code
                if status in (401, 403):
                    raise SyncError(self._refused(response)) from e
                if status not in RETRY_STATUS:
                    raise SyncError(
                        self._redact(f"Zotero refused {what}: HTTP {status} {_text(response)}")
                    ) from e
                problem, asked, error = f"HTTP {status}", _asked_wait(response), e
            # pyzotero may have noted the same Retry-After: wait once, the longer of both.
            asked = max(asked, self._zot.pending_wait)
            self._zot.pending_wait = 0.0
            if attempt >= self.attempts:
                raise SyncError(
                    f"{what}: {problem}, gave up after {attempt} attempts; "
                    "the next run resumes where this one stopped"
                ) from error
            wait = max(self.backoff * (2 ** (attempt - 1)) * self._jitter(), asked)
            if wait > MAX_WAIT:
                raise _too_long(wait, what) from error
            log.warning("zotero: %s: %s, retrying in %.2f s", what, problem, wait)
            self._sleep(wait)

    def _pause(self, wait: float) -> None:
        if wait > MAX_WAIT:
            raise _WaitTooLong(wait)
        self._sleep(wait)

    def _count(self, request: httpx2.Request) -> None:
        self.requests += 1

    def _objects(self, what: str, work: Callable[[], Any]) -> list[dict[str, Any]]:
        result = self._call(what, work)
        if not isinstance(result, list) or not all(
            isinstance(o, dict) and isinstance(o.get("data"), dict) for o in result
        ):
            raise self._shape(what)
        return [o["data"] for o in result]

    def _result(self, raw: Any, count: int) -> WriteResult:
        if not isinstance(raw, dict) or not all(
            isinstance(raw.get(k), dict) for k in ("successful", "unchanged", "failed")
        ):
            raise self._shape("a write")
        header = (
            self._zot.request.headers.get("Last-Modified-Version") if self._zot.request else None
        )
        library_version = int(header) if header and header.isdigit() else 0
        written: dict[int, int] = {}
        for index, obj in raw["successful"].items():
            version = obj.get("version") if isinstance(obj, dict) else None
            written[int(index)] = version if isinstance(version, int) else library_version
        failed: dict[int, Failure] = {}
        for index, failure in raw["failed"].items():
            failure = failure if isinstance(failure, dict) else {}
            message = html.unescape(str(failure.get("message", "no message")))
            failed[int(index)] = Failure(int(failure.get("code", 0)), self._redact(message))
        unchanged = frozenset(int(i) for i in raw["unchanged"])
        for index in range(count):
            if index not in written and index not in unchanged and index not in failed:
                failed[index] = Failure(0, "no result for this object in Zotero's answer")
        return WriteResult(written, unchanged, failed)

    def _refused(self, response: httpx2.Response) -> str:
        reason = _text(response) or "Forbidden"
        if "write access" in reason.lower():
            why = "the API key has no write access to this library"
        else:
            why = "the API key is wrong, revoked, or has no access to this library"
        return self._redact(
            f"Zotero refused the API key for {self.library} (HTTP {response.status_code} "
            f"{reason}): {why}; create a key with write access at {KEYS_URL} and set "
            "[zotero] api_key (or api_key_file, or FEEDSYNC_ZOTERO__API_KEY)"
        )

    def _shape(self, what: str) -> SyncError:
        return SyncError(f"Zotero answered {what} of {self.library} with an unexpected shape")

    def _redact(self, text: str) -> str:
        # The server never echoes the key, but a message must not be the one that leaks it.
        return text.replace(self._secret, "********") if self._secret else text


def _too_long(wait: float, what: str) -> SyncError:
    return SyncError(
        f"Zotero asks to wait {wait:.0f} s before {what}; "
        "the next run resumes where this one stopped"
    )


def _idempotent(objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if len(objects) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} objects per write, got {len(objects)}")
    for obj in objects:
        if not isinstance(obj.get("key"), str) or not isinstance(obj.get("version"), int):
            raise ValueError("every object written needs its 'key' and 'version'")
    return [dict(obj) for obj in objects]


def _asked_wait(response: httpx2.Response) -> float:
    asked = [wait_seconds(response.headers.get(h)) for h in ("Retry-After", "Backoff")]
    return max((a for a in asked if a is not None), default=0.0)


class _WholeAnswerTimeout(httpx2.HTTPTransport):
    """The timeout for each whole answer: httpx2, like httpx, times each read, so a server
    that sends a byte now and then would hold the sync for good (see fetch.py). The head
    is awaited on a thread of its own, abandoned at 1.5 times the timeout (it ends when
    the answer does, or the client closes); the body stops at the timeout."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        deadline = time.monotonic() + self._timeout
        send = super().handle_request
        try:
            response = within(self._timeout * 1.5, lambda: send(request), "zotero-request")
        except Late:
            raise httpx2.ReadTimeout("answer not complete in time", request=request) from None
        response.stream = _Until(response.stream, deadline, request)
        return response


class _Until(httpx2.SyncByteStream):
    def __init__(self, stream: Any, deadline: float, request: httpx2.Request) -> None:
        self._stream = stream
        self._deadline = deadline
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            if time.monotonic() > self._deadline:
                raise httpx2.ReadTimeout("answer not complete in time", request=self._request)
            yield chunk

    def close(self) -> None:
        self._stream.close()


def _text(response: httpx2.Response) -> str:
    try:
        text = " ".join(html.unescape(response.text).split())
    except (httpx2.HTTPError, UnicodeDecodeError):
        return ""
    return text if len(text) <= 200 else text[:197] + "..."


def _describe(error: httpx2.TransportError) -> str:
    if isinstance(error, httpx2.TimeoutException):
        return "timed out"
    if isinstance(error, httpx2.RemoteProtocolError | httpx2.ReadError):
        return "connection broken before an answer"
    return f"connection failed ({type(error).__name__})"
