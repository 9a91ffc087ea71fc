"""A fake of the Hugging Face Daily Papers API and pages, served on 127.0.0.1.

Strict like the real service where it matters to a client: `date` must be YYYY-MM-DD,
`limit` 1-100, `p` >= 0, unknown parameters are refused (they would be silently ignored
upstream, which hides client bugs). Answers carry an ETag and Last-Modified and honour
If-None-Match / If-Modified-Since with 304. Faults are scripted per request:
``fake.fault("429", retry_after=1)`` makes the next matching request fail that way.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
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


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    status: int = 0


@dataclass
class HFState:
    days: dict[date, list[dict[str, Any]]] = field(default_factory=dict)
    faults: deque[Fault] = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    modified: datetime = field(default_factory=lambda: datetime(2026, 3, 6, 8, tzinfo=UTC))
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Encoded API answers by (day, page, limit), when the fake caches them; set_day clears it.
    bodies: dict[tuple[date, int, int], bytes] | None = None


class FakeHF:
    """Run with ``with FakeHF() as hf:``; ``hf.url`` is the base URL to configure."""

    def __init__(self, *, cache_bodies: bool = False) -> None:
        # With cache_bodies, each API answer is encoded once per set_day, as a real service
        # serves a day from its cache: a benchmark then times the client, not this fake's
        # JSON encoding. Tests leave it off, so an entry changed in place is served changed.
        self.state = HFState(bodies={} if cache_bodies else None)
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
    ) -> None:
        assert kind in FAULTS, kind
        self.state.faults.append(Fault(kind, path, retry_after, delay, times))

    @property
    def requests(self) -> list[Request]:
        return self.state.requests

    def reset_log(self) -> None:
        self.state.requests.clear()


class _Handler(FakeHandler):
    server_version = "FakeHF/1"

    @property
    def state(self) -> HFState:
        return self.server.state  # type: ignore[attr-defined,no-any-return]

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        record = Request(parts.path, query, {k.lower(): v for k, v in self.headers.items()})
        with self.state.lock:
            self.state.requests.append(record)
            fault = self._take_fault(self.path)
        if fault is not None and self._inject(fault, record):
            return
        if parts.path == "/api/daily_papers":
            self._api(query, record)
        elif parts.path.startswith("/papers/date/"):
            self._page(parts.path.removeprefix("/papers/date/"), record)
        else:
            self._send(404, b'{"error":"Not Found"}', "application/json", record)

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
                headers["RateLimit"] = f'"api";r=0;t={fault.retry_after or 1}'
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
