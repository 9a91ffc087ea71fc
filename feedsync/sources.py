"""Bring the digest into the store: which URLs or files to read, and merging what they hold.

Each unit of work (one API page, one HTML day, one saved file) is fetched, parsed and
upserted on its own, and its conditional-GET state is saved only after its papers are
committed. So a source that fails half way keeps everything it already merged, a failure
never removes a stored paper, and a rerun picks up exactly where the last one stopped.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from feedsync.config import Config
from feedsync.errors import FeedsyncError, FetchError, InputError
from feedsync.fetch import HttpClient
from feedsync.models import UpsertCounts
from feedsync.parsers import parse_digest, parse_file
from feedsync.store import FetchState, Store

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # the API's largest `limit`


@dataclass
class SourceReport:
    """What one pass over the source did."""

    units: int = 0  # pages, days or files looked at
    not_modified: int = 0  # answered 304 / file unchanged
    skipped: int = 0  # already fetched (backfill without --refresh)
    papers: int = 0  # paper records read
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    requests: int = 0
    warnings: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def recent_days(today: date, count: int) -> list[date]:
    """The days a scheduled run refetches: today, then earlier weekdays, ``count`` in all.

    Daily Papers features papers on weekdays; counting back over weekends means a Monday
    run still refreshes Friday's upvotes.
    """
    days = [today]
    day = today
    while len(days) < count:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days


def day_range(since: date, until: date) -> list[date]:
    if until < since:
        raise InputError(f"--until {until} is before --since {since}")
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


Progress = Callable[[str], None]


def update_store(
    config: Config,
    store: Store,
    *,
    days: Sequence[date] | None = None,
    refresh: bool = False,
    skip_fetched: bool = False,
    progress: Progress | None = None,
    client: HttpClient | None = None,
    stop: Callable[[], bool] | None = None,
) -> SourceReport:
    """Fetch the configured source and merge it into the store.

    ``days`` defaults to the recent days of a scheduled run. ``skip_fetched`` (backfill)
    leaves out days already in the store; ``refresh`` ignores remembered validators and
    file stamps. Failures are collected in the report, never raised.
    """
    report = SourceReport()
    source = config.source
    if source.kind == "files":
        for path in _expand(source.paths, report):
            if stop and stop():
                break
            _import_file(store, path, refresh, report)
            if progress:
                progress(path.name)
        return report
    if days is None:
        days = recent_days(datetime.now(UTC).date(), source.days)
    own_client = client is None
    http = client or HttpClient(timeout=source.timeout, retries=source.retries)
    fetched = store.fetched_days() if skip_fetched and not refresh else set()
    try:
        for day in days:
            if stop and stop():
                log.info("source: stopping early, %s and later days left for the next run", day)
                break
            if day in fetched:
                report.skipped += 1
            elif source.kind == "hf-api":
                _fetch_api_day(http, store, source.api_url, day, refresh, report)
            else:
                _fetch_html_day(http, store, source.api_url, day, refresh, report)
            if progress:
                progress(day.isoformat())
    finally:
        report.requests = http.requests
        if own_client:
            http.close()
    return report


def api_url(base: str, day: date, page: int) -> str:
    url = f"{base}/api/daily_papers?date={day.isoformat()}&limit={PAGE_SIZE}"
    return url if page == 0 else f"{url}&p={page}"


def _fetch_api_day(
    http: HttpClient, store: Store, base: str, day: date, refresh: bool, report: SourceReport
) -> None:
    # Pages are requested while the previous one came back full; a page answered 304 is
    # as full as it was when we stored it.
    page = 0
    while True:
        count = _fetch_unit(http, store, api_url(base, day, page), day, "hf-json", refresh, report)
        if count is None or count < PAGE_SIZE:
            return
        page += 1


def _fetch_html_day(
    http: HttpClient, store: Store, base: str, day: date, refresh: bool, report: SourceReport
) -> None:
    _fetch_unit(
        http, store, f"{base}/papers/date/{day.isoformat()}", day, "hf-html", refresh, report
    )


def _fetch_unit(
    http: HttpClient,
    store: Store,
    url: str,
    day: date,
    fmt: str,
    refresh: bool,
    report: SourceReport,
) -> int | None:
    """Fetch, parse and merge one URL; the number of papers it holds, None on failure."""
    report.units += 1
    known = None if refresh else store.fetch_state(url)
    try:
        response = http.get(
            url,
            etag=known.etag if known else None,
            last_modified=known.last_modified if known else None,
        )
        if response.not_modified and known is not None:
            report.not_modified += 1
            return known.paper_count
        digest = parse_digest(response.content, format=fmt, day=day, source=url)
    except FeedsyncError as e:
        report.failures.append(str(e))
        log.error("source: %s", e)
        return None
    for warning in digest.warnings:
        log.warning("%s: %s", url, warning)
    report.warnings += len(digest.warnings)
    report.papers += len(digest.papers)
    report.counts += store.upsert(digest.papers)
    store.save_fetch(
        FetchState(
            url=url,
            day=day,
            etag=response.etag,
            last_modified=response.last_modified,
            fetched_at=datetime.now(UTC),
            paper_count=len(digest.papers),
        )
    )
    return len(digest.papers)


def _expand(patterns: Sequence[str], report: SourceReport) -> Iterator[Path]:
    seen: set[Path] = set()
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True))
        if not matches and not glob.has_magic(pattern):
            report.failures.append(f"{pattern}: no such file")
        for name in matches:
            path = Path(name)
            if path.is_file() and path not in seen:
                seen.add(path)
                yield path


def _import_file(store: Store, path: Path, refresh: bool, report: SourceReport) -> None:
    # A saved file is "not modified" while its size and mtime are what we imported.
    report.units += 1
    url = path.resolve().as_uri()
    try:
        stat = path.stat()
    except OSError as e:
        report.failures.append(f"{path}: {e.strerror}")
        return
    stamp = f"{stat.st_mtime_ns}-{stat.st_size}"
    known = None if refresh else store.fetch_state(url)
    if known is not None and known.etag == stamp:
        report.not_modified += 1
        return
    try:
        digest = parse_file(path)
    except FeedsyncError as e:
        report.failures.append(str(e))
        log.error("source: %s", e)
        return
    for warning in digest.warnings:
        log.warning("%s: %s", path, warning)
    report.warnings += len(digest.warnings)
    report.papers += len(digest.papers)
    report.counts += store.upsert(digest.papers)
    store.save_fetch(
        FetchState(url, digest.day, stamp, None, datetime.now(UTC), len(digest.papers))
    )


__all__ = ["FetchError", "SourceReport", "api_url", "day_range", "recent_days", "update_store"]
