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
from feedsync.health import health_report

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".json": "application/json; charset=utf-8",
}
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


def create_app(config: Config) -> Starlette:
    cache = FileCache(config.output_dir)
    max_age = max(60, min(int(config.schedule.period.total_seconds()), 86400))
    cache_control = f"public, max-age={max_age}"

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
            "Cache-Control": cache_control,
            "Vary": "Accept-Encoding",
            **SECURITY_HEADERS,
        }
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


def server_config(app: Starlette, config: Config, host: str | None, port: int | None) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host or config.server.host,
        port=port or config.server.port,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=5,
        limit_concurrency=1000,
        h11_max_incomplete_event_size=16 * 1024,
    )


def serve(config: Config, *, host: str | None = None, port: int | None = None) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn handles both)."""
    import uvicorn

    log.info(
        "serving %s on http://%s:%s",
        config.output_dir,
        host or config.server.host,
        port or config.server.port,
    )
    uvicorn.Server(server_config(create_app(config), config, host, port)).run()
