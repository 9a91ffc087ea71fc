"""A fake of the Hugging Face Daily Papers API and pages, served on 127.0.0.1.

Strict like the real service where it matters to a client: `date` must be YYYY-MM-DD,
`limit` 1-100, `p` >= 0, unknown parameters are refused (they would be silently ignored
upstream, which hides client bugs). Answers carry an ETag and Last-Modified and honour
If-None-Match / If-Modified-Since with 304. Faults are scripted per request:
``fake.fault("429", retry_after=1)`` makes the next matching request fail that way.

Quotas, when asked for (``FakeHF(quotas={"api": (100, 20)})``), are the Hub's: fixed
windows per bucket ("api" for /api/..., "pages" for the papers pages), a window opening
with the first request after the last one closed; every request counts, refused ones
included; every answer says where the client stands in ``RateLimit`` and
``RateLimit-Policy`` (draft-ietf-httpapi-ratelimit-headers v9, as the Hub writes them),
and a request over quota is answered 429 with those headers only, no Retry-After. A token
the fake knows (``tokens={"hf_x": 2}``) multiplies the quotas as a free account does; any
other ``Authorization`` is refused with 401, as the Hub refuses a bad token even on public
endpoints.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.server import FakeHandler, QuietServer

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FAULTS = ("429", "500", "503", "reset", "truncate", "slow", "html", "wrong-shape", "empty", "404")


@dataclass
class Fault:
    kind: str
    path: str | None = None  # only requests whose path+query contains this
    retry_after: int | None = None
    delay: float = 0.0
    times: int = 1
    reset: int | None = None  # a 429's RateLimit t= (default: retry_after, else 1)


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    status: int = 0


@dataclass
class Window:
    """One fixed quota window of one bucket, as the fake counted it."""

    bucket: str
    start: float  # time.monotonic()
    length: float
    quota: int
    served: int = 0
    refused: int = 0  # answered 429

    @property
    def end(self) -> float:
        return self.start + self.length


@dataclass
class HFState:
    days: dict[date, list[dict[str, Any]]] = field(default_factory=dict)
    faults: deque[Fault] = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    modified: datetime = field(default_factory=lambda: datetime(2026, 3, 6, 8, tzinfo=UTC))
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Encoded API answers by (day, page, limit), when the fake caches them; set_day clears it.
    bodies: dict[tuple[date, int, int], bytes] | None = None
    quotas: dict[str, tuple[int, float]] = field(default_factory=dict)  # bucket: (q, w)
    tokens: dict[str, int] = field(default_factory=dict)  # token: quota multiplier
    windows: list[Window] = field(default_factory=list)  # every window, in order
    # "always": every answer says where the client stands; "429": only refusals do (the
    # Hub's documentation can be read either way, and a client must cope with both).
    quota_headers: str = "always"


class FakeHF:
    """Run with ``with FakeHF() as hf:``; ``hf.url`` is the base URL to configure."""

    def __init__(
        self,
        *,
        cache_bodies: bool = False,
        quotas: Mapping[str, tuple[int, float]] | None = None,
        tokens: Mapping[str, int] | None = None,
        quota_headers: str = "always",
    ) -> None:
        # With cache_bodies, each API answer is encoded once per set_day, as a real service
        # serves a day from its cache: a benchmark then times the client, not this fake's
        # JSON encoding. Tests leave it off, so an entry changed in place is served changed.
        self.state = HFState(
            bodies={} if cache_bodies else None,
            quotas=dict(quotas or {}),
            tokens=dict(tokens or {}),
            quota_headers=quota_headers,
        )
        self._server = QuietServer(("127.0.0.1", 0), _Handler)
        self._server.state = self.state  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeHF:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set_day(self, day: date, entries: list[dict[str, Any]]) -> None:
        with self.state.lock:
            self.state.days[day] = list(entries)
            if self.state.bodies is not None:
                self.state.bodies.clear()
            self.state.modified = datetime.now(UTC).replace(microsecond=0)

    def fault(
        self,
        kind: str,
        *,
        path: str | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
        times: int = 1,
        reset: int | None = None,
    ) -> None:
        assert kind in FAULTS, kind
        self.state.faults.append(Fault(kind, path, retry_after, delay, times, reset))

    @property
    def requests(self) -> list[Request]:
        return self.state.requests

    def reset_log(self) -> None:
        self.state.requests.clear()

    def windows(self, bucket: str) -> list[Window]:
        with self.state.lock:
            return [w for w in self.state.windows if w.bucket == bucket]


class _Handler(FakeHandler):
    server_version = "FakeHF/1"

    @property
    def state(self) -> HFState:
        return self.server.state  # type: ignore[attr-defined,no-any-return]

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        record = Request(parts.path, query, {k.lower(): v for k, v in self.headers.items()})
        self._rate_headers: dict[str, str] = {}
        with self.state.lock:
            self.state.requests.append(record)
            refusal = self._authorize(record)
            if refusal is None:
                refusal = self._count(parts.path)
            fault = self._take_fault(self.path) if refusal is None else None
        if refusal is not None:
            status, message = refusal
            body = json.dumps({"error": message}).encode()
            return self._send(status, body, "application/json", record)
        if fault is not None and self._inject(fault, record):
            return None
        if parts.path == "/api/daily_papers":
            self._api(query, record)
        elif parts.path.startswith("/papers/date/"):
            self._page(parts.path.removeprefix("/papers/date/"), record)
        else:
            self._send(404, b'{"error":"Not Found"}', "application/json", record)

    def _authorize(self, record: Request) -> tuple[int, str] | None:
        given = record.headers.get("authorization")
        if given is None:
            return None
        token = given.removeprefix("Bearer ")
        if token == given or token not in self.state.tokens:
            return 401, "Invalid credentials in Authorization header"
        return None

    def _count(self, path: str) -> tuple[int, str] | None:
        """Count the request in its bucket's window (under the lock); a refusal if over."""
        bucket = "api" if path.startswith("/api/") else "pages"
        if bucket not in self.state.quotas:
            return None
        quota, length = self.state.quotas[bucket]
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        quota *= self.state.tokens.get(token, 1)
        now = time.monotonic()
        windows = [w for w in self.state.windows if w.bucket == bucket]
        window = windows[-1] if windows and windows[-1].end > now else None
        if window is None:
            window = Window(bucket, now, length, quota)
            self.state.windows.append(window)
        over = window.served >= quota
        if over:
            window.refused += 1
        else:
            window.served += 1
        if over or self.state.quota_headers == "always":
            remaining, reset = quota - window.served, math.ceil(window.end - now)
            self._rate_headers = {
                "RateLimit": f'"{bucket}";r={remaining};t={reset}',
                "RateLimit-Policy": f'"fixed window";"{bucket}";q={quota};w={length:g}',
            }
        return (429, "You have exceeded the rate limit, retry later") if over else None

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str,
        record: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        # Every answer says where the client stands, when quotas are on.
        super()._send(status, body, ctype, record, {**self._rate_headers, **(headers or {})})

    def _take_fault(self, target: str) -> Fault | None:
        for fault in self.state.faults:
            if fault.path is None or fault.path in target:
                fault.times -= 1
                if fault.times <= 0:
                    self.state.faults.remove(fault)
                return fault
        return None

    def _inject(self, fault: Fault, record: Request) -> bool:
        """Apply a fault; True when the request is fully answered by it."""
        kind = fault.kind
        if kind == "slow":
            time.sleep(fault.delay)
            return False
        if kind in ("429", "500", "503", "404"):
            headers = (
                {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            )
            if kind == "429":
                reset = fault.reset or fault.retry_after or 1
                headers["RateLimit"] = f'"api";r=0;t={reset}'
            self._send(int(kind), b'{"error":"injected"}', "application/json", record, headers)
            return True
        if kind == "reset":
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.close_connection = True
            self.connection.close()
            record.status = -1
            return True
        if kind == "truncate":
            body = b'[{"paper": {"id": "2603.0'
            record.status = 200
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "5000")
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if kind == "html":
            self._send(
                200,
                b"<!doctype html><html><body>Service Unavailable</body></html>",
                "text/html; charset=utf-8",
                record,
            )
            return True
        if kind == "wrong-shape":
            self._send(200, b'{"papers": "none", "count": 3}', "application/json", record)
            return True
        if kind == "empty":
            self._send(200, b"[]", "application/json", record)
            return True
        raise AssertionError(kind)

    def _api(self, query: dict[str, list[str]], record: Request) -> None:
        unknown = set(query) - {"date", "limit", "p", "week", "month", "sort", "submitter"}
        if unknown:
            return self._bad(f"unknown parameter {sorted(unknown)[0]}", record)
        values = {k: v[-1] for k, v in query.items()}
        day_text = values.get("date")
        if day_text is None:
            return self._bad("this fake needs date=", record)
        try:
            if not DAY.match(day_text):
                raise ValueError
            day = date.fromisoformat(day_text)
        except ValueError:
            return self._bad("Invalid date", record)
        try:
            limit = int(values.get("limit", "50"))
            page = int(values.get("p", "0"))
        except ValueError:
            return self._bad("limit and p must be integers", record)
        if not 1 <= limit <= 100 or page < 0:
            return self._bad("limit must be 1-100 and p >= 0", record)
        with self.state.lock:
            entries = self.state.days.get(day, [])[page * limit : (page + 1) * limit]
            modified = self.state.modified
            bodies = self.state.bodies
            if bodies is not None:  # encoded under the lock: set_day cannot slip in between
                key = (day, page, limit)
                if key not in bodies:
                    bodies[key] = json.dumps(entries, ensure_ascii=False).encode()
                body = bodies[key]
        if bodies is None:
            body = json.dumps(entries, ensure_ascii=False).encode()
        self._conditional(body, "application/json; charset=utf-8", modified, record)

    def _page(self, day_text: str, record: Request) -> None:
        try:
            if not DAY.match(day_text):
                raise ValueError
            day = date.fromisoformat(day_text)
        except ValueError:
            return self._send(404, b"Not Found", "text/plain", record)
        with self.state.lock:
            entries = self.state.days.get(day, [])
            modified = self.state.modified
        self._conditional(
            html_page(day, entries).encode(), "text/html; charset=utf-8", modified, record
        )

    def _conditional(self, body: bytes, ctype: str, modified: datetime, record: Request) -> None:
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        headers = {"ETag": etag, "Last-Modified": format_datetime(modified, usegmt=True)}
        if self.headers.get("If-None-Match") == etag:
            return self._send(304, b"", ctype, record, headers)
        self._send(200, body, ctype, record, headers)

    def _bad(self, message: str, record: Request) -> None:
        self._send(400, json.dumps({"error": message}).encode(), "application/json", record)


def html_page(day: date, entries: list[dict[str, Any]]) -> str:
    """A daily papers page in the real structure: the list rides in an escaped data-props."""
    props = {
        "dailyPapers": entries,
        "dateString": day.isoformat(),
        "periodType": "day",
        "prevDate": None,
    }
    escaped = html.escape(json.dumps(props, ensure_ascii=False), quote=True)
    return (
        '<!doctype html>\n<html class=""><head><meta charset="utf-8">'
        f"<title>Daily Papers - Hugging Face</title></head><body>"
        '<div class="flex min-h-dvh flex-col"><main class="flex flex-1 flex-col">'
        f'<div class="SVELTE_HYDRATER contents" data-target="DailyPapers" data-props="{escaped}">'
        '<section class="container"><h1>Daily Papers</h1></section></div>'
        "</main></div></body></html>\n"
    )


def entries_by_day(entries: list[dict[str, Any]]) -> Iterator[tuple[date, list[dict[str, Any]]]]:
    days: dict[date, list[dict[str, Any]]] = {}
    for e in entries:
        day = date.fromisoformat(e["paper"]["submittedOnDailyAt"][:10])
        days.setdefault(day, []).append(e)
    yield from sorted(days.items())
