"""The built-in HTTP server: output_dir as static files, plus /healthz. Starlette on uvicorn.

Rules, in order:
1. Only GET and HEAD; anything else is 405 with ``Allow``.
2. ``/healthz`` answers from the status record (200 healthy, 503 not).
3. A path is served only if every segment is a plain name (no ``..``, no dotfiles, no
   backslashes or NULs), the resolved file lies inside output_dir (symlinks out are 404)
   and it is a regular file with a known feed extension. ``/`` is ``index.html``; there are
   no directory listings.
4. The ETag is a hash of the bytes, so an identical rewrite keeps it; gzip is a separate,
   strong representation (its own ETag) and every answer says ``Vary: Accept-Encoding``.
   ``If-None-Match`` wins over ``If-Modified-Since`` (RFC 9110 13.1.3).
5. With a WebSub hub (``[feeds] websub_hub``), a feed's answers carry ``Link: <hub>;
   rel="hub", <its public URL>; rel="self"``, as WebSub discovery asks of a publisher
   (some hubs distribute only topics whose answers have them).

Files are small and change at most once per run, so bytes, hashes and the gzip form are
cached by (path, mtime, size): a 304 or a cached 200 does no disk reads beyond one stat.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feedsync.config import Config
from feedsync.errors import ConfigError
from feedsync.publish.headers import CONTENT_TYPES, FEED_SUFFIXES, cache_control
from feedsync.serve.health import health_report

log = logging.getLogger(__name__)

MAX_CACHED = 512  # files; the output of a hundred topics is about 200
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}


@dataclass(frozen=True, slots=True)
class _Entry:
    stamp: tuple[int, int]  # (mtime_ns, size)
    body: bytes
    gzipped: bytes
    etag: str
    last_modified: str
    modified: datetime


class FileCache:
    """Bytes, ETag and gzip form of each served file, refreshed when its stat changes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = os.path.realpath(root)
        self._entries: dict[str, _Entry] = {}

    def resolve(self, url_path: str) -> str | None:
        """The real path of a servable file for ``url_path``, or None (then it is a 404)."""
        relative = url_path.lstrip("/") or "index.html"
        segments = relative.split("/")
        for segment in segments:
            if not segment or segment in (".", "..") or segment.startswith("."):
                return None
            if "\\" in segment or "\x00" in segment or ":" in segment:
                return None
        if os.path.splitext(segments[-1])[1] not in CONTENT_TYPES:
            return None
        real = os.path.realpath(os.path.join(self._real_root, *segments))
        if os.path.commonpath([real, self._real_root]) != self._real_root:
            return None
        return real

    def get(self, real: str) -> _Entry | None:
        try:
            st = os.stat(real)
        except OSError:
            return None
        if not os.path.isfile(real):
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        entry = self._entries.get(real)
        if entry is not None and entry.stamp == stamp:
            return entry
        try:
            with open(real, "rb") as f:
                body = f.read()
        except OSError:
            return None
        modified = datetime.fromtimestamp(st.st_mtime, UTC).replace(microsecond=0)
        entry = _Entry(
            stamp=stamp,
            body=body,
            gzipped=gzip.compress(body, compresslevel=6, mtime=0),
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            last_modified=format_datetime(modified, usegmt=True),
            modified=modified,
        )
        if len(self._entries) >= MAX_CACHED:
            self._entries.clear()
        self._entries[real] = entry
        return entry


def served_folder(config: Config) -> Path:
    """``output_dir``, which this server can serve only when it is a folder."""
    if isinstance(config.output_dir, Path):
        return config.output_dir
    raise ConfigError(
        f"output_dir is a bucket ({config.output_dir}): `feedsync serve` serves a folder; "
        "readers get the feeds from the bucket, or the CDN in front of it, at base_url"
    )


def create_app(config: Config) -> Starlette:
    cache = FileCache(served_folder(config))
    caching = cache_control(config.schedule.period)
    hub = config.feeds.websub_hub
    base_url = str(config.base_url).rstrip("/")

    async def healthz(request: Request) -> Response:
        healthy, payload = health_report(config)
        body = json.dumps(payload, sort_keys=True).encode()
        return Response(
            body if request.method == "GET" else b"",
            status_code=200 if healthy else 503,
            headers={"Cache-Control": "no-store", "Content-Length": str(len(body))},
            media_type="application/json",
        )

    async def static(request: Request) -> Response:
        real = cache.resolve(request.url.path)
        entry = cache.get(real) if real else None
        if entry is None or real is None:
            return _not_found(request)
        wants_gzip = _accepts_gzip(request.headers.get("accept-encoding", ""))
        etag = entry.etag[:-1] + '-gz"' if wants_gzip else entry.etag
        headers = {
            "ETag": etag,
            "Last-Modified": entry.last_modified,
            "Cache-Control": caching,
            "Vary": "Accept-Encoding",
            **SECURITY_HEADERS,
        }
        if hub and real.endswith(FEED_SUFFIXES):
            own = f"{base_url}/{request.url.path.lstrip('/')}"
            headers["Link"] = f'<{hub}>; rel="hub", <{own}>; rel="self"'
        if _not_modified(request, entry, etag):
            return Response(status_code=304, headers=headers)
        body = entry.gzipped if wants_gzip else entry.body
        if wants_gzip:
            headers["Content-Encoding"] = "gzip"
        headers["Content-Type"] = CONTENT_TYPES[os.path.splitext(real)[1]]
        headers["Content-Length"] = str(len(body))
        return Response(body if request.method == "GET" else b"", headers=headers)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/{path:path}", static, methods=["GET", "HEAD"]),
        ]
    )


def _not_found(request: Request) -> Response:
    body = b"not found\n"
    return Response(
        body if request.method == "GET" else b"",
        status_code=404,
        media_type="text/plain",
        headers={"Content-Length": str(len(body))},
    )


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().removeprefix("q=").strip()
            try:
                return float(q) > 0 if q else True
            except ValueError:
                return True
    return False


def _not_modified(request: Request, entry: _Entry, etag: str) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        # Weak comparison: a proxy may have weakened our tag; either representation's tag
        # means the client holds these bytes.
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or etag in tags or entry.etag in tags
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return entry.modified <= since
    return False


# Bounds on a request head that uvicorn's httptools protocol does not have: without them
# one client sending an endless header grows the server's memory until the kernel kills
# it, and a thousand clients that never finish their heads hold every connection slot
# (limit_concurrency), so that everyone else gets 503 for as long as they stay.
MAX_HEAD = 64 * 1024  # bytes of request line and headers
HEAD_TIMEOUT = 10.0  # seconds to send them, from connecting or from the request's first byte
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\ncontent-length: 24\r\n"
    b"connection: close\r\n\r\nrequest head too large\r\n"
)
_TOO_SLOW = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\ncontent-length: 17\r\n"
    b"connection: close\r\n\r\nrequest too slow\n"
)


def _bounded_httptools() -> type[Any]:
    import asyncio

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class BoundedHead(HttpToolsProtocol):
        """httptools, ending a request whose head passes MAX_HEAD bytes (431) or takes
        longer than HEAD_TIMEOUT seconds (408, or a plain close if nothing came).

        Bytes are counted per chunk received: the count may pass the limit by one chunk
        (the transport's read size), which still bounds memory.
        """

        _head = 0
        _in_body = False
        _ended = False
        _clock: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._start_clock()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_clock()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._ended:
                return
            if not self._in_body:
                self._head += len(data)
                if self._head > MAX_HEAD:
                    self._end(_TOO_LARGE, f"request head over {MAX_HEAD} bytes (431)")
                    return
            super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._clock is None:  # the next request on a kept-alive connection
                self._start_clock()

        def on_headers_complete(self) -> None:
            self._stop_clock()
            self._in_body, self._head = True, 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._in_body = False
            super().on_message_complete()

        def _start_clock(self) -> None:
            self._stop_clock()
            self._clock = self.loop.call_later(HEAD_TIMEOUT, self._too_slow)

        def _stop_clock(self) -> None:
            if self._clock is not None:
                self._clock.cancel()
                self._clock = None

        def _too_slow(self) -> None:
            self._clock = None
            if not self._in_body and not self.transport.is_closing():
                self._end(_TOO_SLOW if self._head else b"", "request head too slow (408)")

        def _end(self, answer: bytes, why: str) -> None:
            self._ended = True
            self._stop_clock()
            if answer:
                log.warning("%s: connection closed", why)
                self.transport.write(answer)
            self.transport.close()

    return BoundedHead


def server_config(app: Starlette, config: Config, host: str | None, port: int | None) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host or config.server.host,
        port=port or config.server.port,
        http=_bounded_httptools(),
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=5,
        limit_concurrency=1000,
    )


def serve(config: Config, *, host: str | None = None, port: int | None = None) -> None:
    """Serve until SIGINT/SIGTERM, then return: a clean stop, as the daemon's (exit 0)."""
    import signal

    import uvicorn

    log.info(
        "serving %s on http://%s:%s",
        config.output_dir,
        host or config.server.host,
        port or config.server.port,
    )
    # uvicorn shuts down gracefully on either signal, then raises it again for the handler
    # it found in place. That handler is this no-op: otherwise SIGTERM would kill the
    # process once the server has stopped (or the CLI would report it as an interruption).
    stopping = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, frame: None) for sig in stopping}
    try:
        uvicorn.Server(server_config(create_app(config), config, host, port)).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
