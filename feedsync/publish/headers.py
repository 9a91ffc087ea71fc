"""What a published file is served with: its content type and its Cache-Control.

Shared by the bucket uploads (each object carries both) and ``feedsync serve`` (each answer
does), so a feed reads the same from either. Types are registered here, not guessed:
``mimetypes`` maps ``.rss`` to ``application/x-rss+xml`` on Debian and knows no ``.atom``
or ``.opml`` elsewhere, and a feed served as ``application/octet-stream`` is a bozo feed to
feedparser.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import PurePosixPath

CONTENT_TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".json": "application/json; charset=utf-8",
}
FEED_SUFFIXES = (".rss", ".atom")
MIN_MAX_AGE = 60
MAX_MAX_AGE = 86400


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(PurePosixPath(name).suffix, "application/octet-stream")


def max_age(period: timedelta) -> int:
    """Seconds a reader or CDN may keep a file: the schedule's period, within a minute and
    a day (nothing changes between runs; a day bounds how stale a missed run leaves it)."""
    return max(MIN_MAX_AGE, min(int(period.total_seconds()), MAX_MAX_AGE))


def cache_control(period: timedelta) -> str:
    return f"public, max-age={max_age(period)}"
