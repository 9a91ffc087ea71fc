"""One pass of the main job: fetch -> parse -> store -> match -> render -> publish -> sync.

The orchestrator does the I/O and returns a ``RunReport``; it never prints. Stage rules:
- A failing source leaves the store and the published files as they were; the pass goes on
  and publishes from what is stored (exit code 1).
- Matching is incremental: a topic re-matches only papers changed since it last looked,
  unless its selection changed, in which case it re-matches everything.
- A feed is rendered only when its newest papers or its settings changed, and a file is
  rewritten only when its bytes changed, so an idle pass touches nothing.
- After a publish that wrote feeds, the WebSub hub (``[feeds] websub_hub``) is told which;
  a hub that fails adds a warning line, never a failure.
- Zotero comes last and can only add a failure line; the feeds are already safe.
- With ``[state] url`` the pass works on a working copy of the store checked out of its
  bucket and checked back in after (publish/state.py): saved when the pass ended with a
  report or a failure that leaves the store sound, never when the store failed or the run
  was interrupted; refused (exit 3) when another job saved meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from feedsync.config import Config
from feedsync.errors import FeedsyncError, StateError, StorageError
from feedsync.match.stage import TopicMatches, match_topics
from feedsync.match.topics import Topic, build_topics
from feedsync.models import Digest
from feedsync.store import Store
from feedsync.store.locks import run_lock

if TYPE_CHECKING:
    from feedsync.fetch.http import HttpClient
    from feedsync.fetch.sources import Progress, Readers, SourceReport
    from feedsync.publish.files import PublishReport
    from feedsync.publish.stage import Published
    from feedsync.publish.state import Checkout
    from feedsync.publish.websub import WebSubReport
    from feedsync.zotero.sync import SyncReport

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TopicReport:
    matches: int = 0
    new: int = 0
    rendered: bool = False


@dataclass(frozen=True, slots=True)
class RunReport:
    """What a pass did, composed of what each stage returned; the CLI prints it, the
    status record keeps it."""

    started: datetime
    finished: datetime
    source: SourceReport | None = None
    topics: Mapping[str, TopicReport] = field(default_factory=dict)
    published: PublishReport | None = None
    zotero: SyncReport | None = None
    failures: tuple[str, ...] = ()
    websub: WebSubReport | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def warnings(self) -> tuple[str, ...]:
        """What went wrong without failing the run: a WebSub hub that was not told."""
        websub = self.websub
        return (websub.line(),) if websub is not None and websub.failure is not None else ()

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_json(self) -> dict[str, Any]:
        source = self.source
        return {
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "source": None
            if source is None
            else {
                "units": source.units,
                "not_modified": source.not_modified,
                "skipped": source.skipped,
                "papers": source.papers,
                "new": source.counts.new,
                "updated": source.counts.updated,
                "requests": source.requests,
                "warnings": source.warnings,
                "failures": list(source.failures),
            },
            "topics": {
                slug: {"matches": t.matches, "new": t.new, "rendered": t.rendered}
                for slug, t in self.topics.items()
            },
            "files": None
            if self.published is None
            else {
                "written": list(self.published.written),
                "unchanged": len(self.published.unchanged),
                "removed": list(self.published.removed),
            },
            "zotero": None if self.zotero is None else self.zotero.counts(),
            "websub": None
            if self.websub is None
            else {"announced": len(self.websub.announced), "failure": self.websub.failure},
            "failures": list(self.failures),
        }


@dataclass
class _Results:
    """The stages' results as they come in: the orchestrator's own notes, composed into
    the frozen ``RunReport`` at the end, whatever stage the pass ended in."""

    source: SourceReport | None = None
    matched: Mapping[str, TopicMatches] | None = None
    published: Published | None = None
    websub: WebSubReport | None = None
    zotero: SyncReport | None = None
    zotero_error: str | None = None

    def report(self, started: datetime, finished: datetime) -> RunReport:
        failures: list[str] = []
        if self.source is not None:
            failures += [f"source: {f}" for f in self.source.failures]
        rendered = self.published.rendered if self.published else frozenset()
        topics = {
            slug: TopicReport(m.matches, m.new, slug in rendered)
            for slug, m in (self.matched or {}).items()
        }
        if self.zotero_error is not None:
            failures.append(f"zotero: {self.zotero_error}")
        if self.zotero is not None:
            failures += [f"zotero: {problem}" for problem in self.zotero.problems()]
        return RunReport(
            started=started,
            finished=finished,
            source=self.source,
            topics=MappingProxyType(topics),
            published=self.published.files if self.published else None,
            zotero=self.zotero,
            failures=tuple(failures),
            websub=self.websub,
        )


def run(
    config: Config,
    *,
    offline: bool = False,
    days: Sequence[date] | None = None,
    refresh: bool = False,
    skip_fetched: bool = False,
    progress: Progress | None = None,
    client: HttpClient | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    stop: Callable[[], bool] | None = None,
) -> RunReport:
    """Run one pass; StorageError, LockError and PublishError escape, the rest is reported.

    ``stop`` is polled between fetched units: once it says so, fetching ends and the pass
    publishes from what is stored (the daemon's safe point on SIGTERM). With ``[state]
    url``, StateError escapes too (exit 3).
    """
    with (
        run_lock(config.data_dir),
        synced_state(config) as state,
        Store(config.store_path, clock=clock) as store,
    ):
        started = clock()
        run_id = store.start_run(started)
        baseline = store.changes  # what the pass itself changes, its status record aside
        results = _Results()
        error: str | None = None
        try:
            if not offline:
                from feedsync.fetch.sources import update_store

                results.source = _stage(
                    "fetch",
                    lambda: update_store(
                        config,
                        store,
                        _readers(),
                        clock=clock,
                        days=days,
                        refresh=refresh,
                        skip_fetched=skip_fetched,
                        progress=progress,
                        client=client,
                        stop=stop,
                    ),
                )
            topics = build_topics(config)
            results.matched = _stage("match", lambda: match_topics(store, topics))
            results.published = _stage(
                "publish", lambda: _publish(config, store, topics, state, recheck=refresh)
            )
            hub = config.feeds.websub_hub
            if hub and (feeds := _changed_feeds(config, results.published)):
                from feedsync.publish.websub import announce

                results.websub = _stage("websub", lambda: announce(hub, feeds))
            if config.zotero.enabled and any(t.zotero for t in topics):
                if state is not None:
                    state.check()
                _stage("zotero", lambda: _zotero(config, store, topics, results))
        except FeedsyncError as e:
            error = str(e)
            raise
        finally:
            if state is not None:
                state.changed = store.migrated or store.changes != baseline
            report = results.report(started, clock())
            result = "ok" if report.ok and error is None else "failed"
            first_failure = error or (report.failures[0] if report.failures else None)
            try:
                store.finish_run(run_id, report.finished, result, report.to_json(), first_failure)
            except FeedsyncError as e:
                # Worded already (a full disk, say); the error that ended the run, if any,
                # is the one the command reports.
                log.error("cannot record the run status: %s", e)
    return report


def _stage(name: str, work: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = work()
    log.info(
        "stage %s done in %.3f s (peak memory %.0f MB)",
        name,
        time.perf_counter() - start,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    return result


def _readers() -> Readers:
    """The parsers, for the fetch stage; loaded at the first digest that is not a 304."""
    from feedsync.fetch.sources import Readers

    def digest(content: bytes, fmt: str, day: date, source: str) -> Digest:
        from feedsync.parsers import parse_digest

        return parse_digest(content, format=fmt, day=day, source=source)

    def file(path: Path) -> Digest:
        from feedsync.parsers import parse_file

        return parse_file(path)

    return Readers(digest=digest, file=file)


@contextlib.contextmanager
def synced_state(config: Config, *, save: bool = True) -> Iterator[Checkout | None]:
    """With ``[state] url``: the store checked out of its bucket into ``data_dir`` first,
    and, if ``save``, back in after (publish/state.py). The caller holds the run lock.

    A failure that leaves the store sound (a bucket refusing the feeds, say) is reported
    after the store is saved: what the pass did (fetched papers, Zotero's records) is kept.
    """
    if config.state.url is None:
        yield None
        return
    from feedsync.publish.state import checkin, checkout

    taken = checkout(config)
    try:
        yield taken
    except (StorageError, StateError):
        raise  # the store itself is in doubt, or another job has saved: nothing to save
    except FeedsyncError:
        if save:
            try:
                checkin(config, taken)
            except StateError as e:
                log.error("%s", e)
        raise
    if save:
        checkin(config, taken)


def _publish(
    config: Config, store: Store, topics: Sequence[Topic], state: Checkout | None, recheck: bool
) -> Published:
    # Imported here: an idle pass stops before rendering and never loads the renderers.
    from feedsync.publish.stage import render_and_publish, target_of

    target = target_of(config)
    if state is not None:
        target.before_write = state.check
    return render_and_publish(config, store, topics, target, recheck=recheck)


def _changed_feeds(config: Config, published: Published) -> list[str]:
    from feedsync.publish.websub import topics

    return topics(config.base_url, published.files.written)


def _zotero(config: Config, store: Store, topics: Sequence[Topic], results: _Results) -> None:
    # Imported here: pyzotero and httpx2 load only when a pass actually syncs.
    from feedsync.errors import ConfigError, SyncError
    from feedsync.zotero.sync import sync

    # The feeds are published already; whatever happens here only adds a failure line
    # (exit code 1). StorageError still escapes, as it does from every other stage.
    try:
        results.zotero = sync(config, store, topics)
    except (SyncError, ConfigError) as e:
        results.zotero_error = str(e)
