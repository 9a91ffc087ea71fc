"""Bring the digest in: which URLs or files to read, and handing what they hold on in order.

Each unit of work (one API page, one HTML day, one saved file) is fetched, read into a
``Digest`` and merged on its own, and its conditional-GET state is saved only after its
papers are. So a source that fails half way keeps everything it already merged, a failure
never removes a stored paper, and a rerun picks up exactly where the last one stopped.

This stage knows neither the parsers nor the store: the caller hands it how to read bytes
and files into digests (``Readers``) and where digests go (a ``Sink``, the store), and the
clock that says which days are recent.
"""

from __future__ import annotations

import functools
import glob
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Protocol

from feedsync.config import Config
from feedsync.errors import FeedsyncError, InputError, SourceStopped
from feedsync.fetch.http import HttpClient, Response
from feedsync.models import Digest, FetchState, Paper, UpsertCounts
from feedsync.net import DaemonPool

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # the API's largest `limit`
# Days fetched at once: overlaps network waits, stays polite to the server.
FETCH_WORKERS = 4
# How often a wait for a fetched day checks whether the run was asked to stop (seconds).
STOP_POLL = 0.25


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What one pass over the source did."""

    units: int = 0  # pages, days or files looked at
    not_modified: int = 0  # answered 304 / file unchanged
    skipped: int = 0  # already fetched (backfill without --refresh)
    papers: int = 0  # paper records read
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    requests: int = 0
    quota_waits: int = 0  # windows of the Hub's quota waited for
    warnings: int = 0
    failures: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(slots=True)
class _Tally:
    """A report while the pass is under way (a stage returns the frozen one)."""

    units: int = 0
    not_modified: int = 0
    skipped: int = 0
    papers: int = 0
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    warnings: int = 0
    failures: list[str] = field(default_factory=list)
    halted: bool = False  # stopped fetching: the quota is spent or the token refused

    def report(self, http: HttpClient | None = None) -> SourceReport:
        return SourceReport(
            units=self.units,
            not_modified=self.not_modified,
            skipped=self.skipped,
            papers=self.papers,
            counts=self.counts,
            requests=http.requests if http else 0,
            quota_waits=http.quota_waits if http else 0,
            warnings=self.warnings,
            failures=tuple(self.failures),
        )


class Sink(Protocol):
    """Where digests go, and what it remembers of earlier fetches (the store)."""

    def upsert(self, papers: Iterable[Paper]) -> UpsertCounts: ...

    def save_fetch(self, state: FetchState) -> None: ...

    def fetch_state(self, url: str) -> FetchState | None: ...

    def fetch_states(self, days: Iterable[date]) -> dict[str, FetchState]: ...

    def fetched_days(self) -> set[date]: ...


@dataclass(frozen=True, slots=True)
class Readers:
    """How fetched bytes and saved files become digests (the parsers, given by the caller).

    ``digest(content, format, day, source)`` runs on the fetch threads.
    """

    digest: Callable[[bytes, str, date, str], Digest]
    file: Callable[[Path], Digest]


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


def day_range(since: date, until: date | None, today: date) -> list[date]:
    """The days of a backfill, ``until`` defaulting to ``today`` (UTC)."""
    # A year mistyped (2062 for 2026) would ask for tens of thousands of empty days; the
    # day after today is allowed, as the digest's day may start before UTC's.
    if until is not None and until > today + timedelta(days=1):
        raise InputError(f"--until {until} is in the future (today is {today}, UTC)")
    until = until or today
    if until < since:
        raise InputError(f"--until {until} is before --since {since}")
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


class Progress(Protocol):
    """Where a long fetch shows how far it is (the backfill's progress bar)."""

    def step(self, label: str) -> None:
        """One more day (or file) done."""

    def note(self, text: str) -> None:
        """Something to show until the next step: a wait for the Hub's quota."""


def update_store(
    config: Config,
    sink: Sink,
    readers: Readers,
    *,
    clock: Callable[[], datetime],
    days: Sequence[date] | None = None,
    refresh: bool = False,
    skip_fetched: bool = False,
    progress: Progress | None = None,
    client: HttpClient | None = None,
    stop: Callable[[], bool] | None = None,
) -> SourceReport:
    """Fetch the configured source and merge it into ``sink``.

    ``days`` defaults to the recent days of a scheduled run, as of ``clock``.
    ``skip_fetched`` (backfill) leaves out days already fetched; ``refresh`` ignores
    remembered validators and file stamps. Failures are collected in the report, never
    raised.
    """
    tally = _Tally()
    source = config.source
    if source.kind == "files":
        files, problems = digest_files(source.paths)
        tally.failures.extend(problems)
        for path in files:
            if stop and stop():
                break
            _import_file(sink, readers, path, refresh, tally, clock)
            if progress:
                progress.step(path.name)
        return tally.report()
    if days is None:
        days = recent_days(clock().date(), source.days)
    fetched = sink.fetched_days() if skip_fetched and not refresh else set()
    todo = [d for d in days if d not in fetched]
    tally.skipped = len(days) - len(todo)
    if progress:
        for day in days:
            if day in fetched:
                progress.step(f"{day.isoformat()} (stored)")
    own_client = client is None
    http = client or HttpClient(
        timeout=source.timeout,
        retries=source.retries,
        max_wait=source.max_wait,
        token=source.bearer(),
        token_origin=source.api_url,
        token_from=source.token_from or "the token",
        tls=source.api_url.startswith("https:"),
    )
    # Quota waits are announced by a fetch thread; the progress bar is drawn from this one.
    notes: queue.SimpleQueue[str] = queue.SimpleQueue()
    http.on_wait = notes.put
    known = {} if refresh else sink.fetch_states(todo)
    fetcher = _DayFetcher(http, readers, source.api_url, source.kind, known, stop)
    # Days are fetched and parsed by a few threads (network waits overlap), and merged
    # here, on the store's thread, in order.
    pool = DaemonPool(min(FETCH_WORKERS, max(1, len(todo))), name="fetch")
    every_day = False
    try:
        days_done = _window(pool, fetcher, todo, lambda: _show(notes, progress))
        for day, units in zip(todo, days_done, strict=True):
            if units is None:
                log.info("source: stopping early, %s and later days left for the next run", day)
                break
            for unit in units:
                _merge_unit(sink, unit, tally, clock)
            if progress:
                progress.step(day.isoformat())
        else:
            every_day = True
    finally:
        # Stopped, or unwinding (Ctrl-C, SIGTERM, a store error): days not started are
        # dropped, and requests still in flight are not waited for; they end on their own,
        # unused (see net.py). With every day collected, the threads are idle: they are
        # joined, so none outlives the pass.
        fetcher.cancelled.set()
        pool.close(wait=every_day)
        http.on_wait = None
        if own_client:
            http.close()
    return tally.report(http)


def _show(notes: queue.SimpleQueue[str], progress: Progress | None) -> None:
    while not notes.empty():
        text = notes.get()
        if progress:
            progress.note(text)


def _window(
    pool: DaemonPool,
    fetcher: _DayFetcher,
    days: Sequence[date],
    poll: Callable[[], None],
) -> Iterator[list[_Unit] | None]:
    """Each day's units, in order, with at most a few days in flight: a backfill of a
    thousand days must not hold every parsed day in memory while the store catches up.

    Once the run is asked to stop, the day waited for counts as not fetched (None), even if
    its request is still in flight: a stalled server cannot delay the daemon's stop.
    """
    pending: deque[Future[list[_Unit] | None]] = deque()

    def oldest() -> list[_Unit] | None:
        future = pending.popleft()
        while True:
            try:
                return future.result(timeout=STOP_POLL)
            except TimeoutError:
                poll()
                if fetcher.stopping():
                    return None

    for day in days:
        pending.append(pool.submit(functools.partial(fetcher.fetch_day, day)))
        if len(pending) >= 2 * FETCH_WORKERS:
            yield oldest()
    while pending:
        yield oldest()


def api_url(base: str, day: date, page: int) -> str:
    url = f"{base}/api/daily_papers?date={day.isoformat()}&limit={PAGE_SIZE}"
    return url if page == 0 else f"{url}&p={page}"


@dataclass
class _Unit:
    """One fetched URL: a fresh digest, a 304, or a failure."""

    url: str
    day: date
    known: FetchState | None
    response: Response | None = None
    digest: Digest | None = None
    error: str | None = None
    halts: bool = False  # the error stops the whole source (quota spent, token refused)

    @property
    def paper_count(self) -> int:
        if self.digest is not None:
            return len(self.digest.papers)
        return self.known.paper_count if self.known else 0


class _DayFetcher:
    """Fetches and parses every page of a day; runs in worker threads, never touches the store."""

    def __init__(
        self,
        http: HttpClient,
        readers: Readers,
        base: str,
        kind: str,
        known: dict[str, FetchState],
        stop: Callable[[], bool] | None,
    ) -> None:
        self.http = http
        self.readers = readers
        self.base = base
        self.kind = kind
        self.known = known
        self.stop = stop
        self.cancelled = threading.Event()  # the run is unwinding: fetch nothing more
        self.halted = threading.Event()  # every later request would fail the same way

    def stopping(self) -> bool:
        return (
            self.cancelled.is_set()
            or self.halted.is_set()
            or (self.stop is not None and self.stop())
        )

    def fetch_day(self, day: date) -> list[_Unit] | None:
        if self.stopping():
            return None
        if self.kind == "hf-html":
            return [self._fetch(f"{self.base}/papers/date/{day.isoformat()}", day, "hf-html")]
        # Pages are requested while the previous one came back full; a page answered 304
        # is as full as it was when we stored it.
        units = []
        page = 0
        while True:
            unit = self._fetch(api_url(self.base, day, page), day, "hf-json")
            units.append(unit)
            if unit.error is not None or unit.paper_count < PAGE_SIZE:
                return units
            if self.stopping():
                return None
            page += 1

    def _fetch(self, url: str, day: date, fmt: str) -> _Unit:
        known = self.known.get(url)
        unit = _Unit(url, day, known)
        try:
            unit.response = self.http.get(
                url,
                etag=known.etag if known else None,
                last_modified=known.last_modified if known else None,
            )
            if not (unit.response.not_modified and known is not None):
                unit.digest = self.readers.digest(unit.response.content, fmt, day, url)
        except SourceStopped as e:
            unit.error, unit.halts = str(e), True
            self.halted.set()
        except FeedsyncError as e:
            unit.error = str(e)
        return unit


def _merge_unit(sink: Sink, unit: _Unit, tally: _Tally, clock: Callable[[], datetime]) -> None:
    tally.units += 1
    if unit.error is not None:
        # Workers that met the same stop at once say it once.
        if not (unit.halts and tally.halted):
            tally.failures.append(unit.error)
            log.error("source: %s", unit.error)
        tally.halted = tally.halted or unit.halts
        return
    digest, response = unit.digest, unit.response
    if digest is None or response is None:
        tally.not_modified += 1
        return
    # Saved after the papers are committed: a crash in between costs a refetch, not a paper.
    state = FetchState(
        url=unit.url,
        day=unit.day,
        etag=response.etag,
        last_modified=response.last_modified,
        fetched_at=clock(),
        paper_count=len(digest.papers),
    )
    _merge_digest(sink, digest, state, tally, unit.url)


def _merge_digest(
    sink: Sink, digest: Digest, state: FetchState, tally: _Tally, where: object
) -> None:
    """Upsert a fetched or read digest, then remember the state of its URL (in that order)."""
    for warning in digest.warnings:
        log.warning("%s: %s", where, warning)
    tally.warnings += len(digest.warnings)
    tally.papers += len(digest.papers)
    tally.counts += sink.upsert(digest.papers)
    sink.save_fetch(state)


def digest_files(patterns: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The files the globs name, each once, in order; and what is wrong with the patterns
    that name none: a plain path that is missing, or a glob whose folder is (a typo would
    otherwise give empty feeds for good; an empty drop folder is fine)."""
    seen: dict[Path, None] = {}
    problems = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True))
        if not matches:
            if not glob.has_magic(pattern):
                problems.append(f"{pattern}: no such file")
            elif not (folder := _fixed_folder(pattern)).is_dir():
                problems.append(f"{pattern}: no such folder {folder}")
        for name in matches:
            path = Path(name)
            if path.is_file():
                seen.setdefault(path)
    return list(seen), problems


def _fixed_folder(pattern: str) -> Path:
    """The folder a glob starts in: its leading parts without wildcards."""
    fixed = []
    for part in Path(pattern).parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _import_file(
    sink: Sink,
    readers: Readers,
    path: Path,
    refresh: bool,
    tally: _Tally,
    clock: Callable[[], datetime],
) -> None:
    # A saved file is "not modified" while its size and mtime are what we imported.
    tally.units += 1
    url = path.resolve().as_uri()
    try:
        stat = path.stat()
    except OSError as e:
        tally.failures.append(f"{path}: {e.strerror}")
        return
    stamp = f"{stat.st_mtime_ns}-{stat.st_size}"
    known = None if refresh else sink.fetch_state(url)
    if known is not None and known.etag == stamp:
        tally.not_modified += 1
        return
    try:
        digest = readers.file(path)
    except FeedsyncError as e:
        tally.failures.append(str(e))
        log.error("source: %s", e)
        return
    state = FetchState(url, digest.day, stamp, None, clock(), len(digest.papers))
    _merge_digest(sink, digest, state, tally, path)


__all__ = [
    "Progress",
    "Readers",
    "Sink",
    "SourceReport",
    "api_url",
    "day_range",
    "digest_files",
    "recent_days",
    "update_store",
]
