"""One pass of the main job: fetch -> parse -> store -> match -> render -> publish -> sync.

The orchestrator does the I/O and returns a ``RunReport``; it never prints. Stage rules:
- A failing source leaves the store and the published files as they were; the pass goes on
  and publishes from what is stored (exit code 1).
- Matching is incremental: a topic re-matches only papers changed since it last looked,
  unless its selection changed, in which case it re-matches everything.
- A feed is rendered only when its newest papers or its settings changed, and a file is
  rewritten only when its bytes changed, so an idle pass touches nothing.
- Zotero comes last and can only add a failure line; the feeds are already safe.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from feedsync.config import Config
from feedsync.errors import FeedsyncError
from feedsync.match.rematch import match_store
from feedsync.match.topics import Topic, build_topics, match
from feedsync.store import MatchUpdate, Store, TopicState
from feedsync.store.locks import run_lock

if TYPE_CHECKING:
    from feedsync.fetch.http import HttpClient
    from feedsync.fetch.sources import Progress, SourceReport
    from feedsync.publish.files import PublishReport

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class TopicReport:
    matches: int = 0
    new: int = 0
    rendered: bool = False


@dataclass
class RunReport:
    """What a pass did; the CLI prints it, the status record keeps it."""

    started: datetime
    finished: datetime | None = None
    source: SourceReport | None = None
    topics: dict[str, TopicReport] = field(default_factory=dict)
    published: PublishReport | None = None
    zotero: dict[str, Any] | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_json(self) -> dict[str, Any]:
        source = self.source
        return {
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat() if self.finished else None,
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
                "failures": source.failures,
            },
            "topics": {slug: asdict(t) for slug, t in self.topics.items()},
            "files": None
            if self.published is None
            else {
                "written": self.published.written,
                "unchanged": len(self.published.unchanged),
                "removed": self.published.removed,
            },
            "zotero": self.zotero,
            "failures": self.failures,
        }


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
    publishes from what is stored (the daemon's safe point on SIGTERM).
    """
    with run_lock(config.data_dir), Store(config.store_path, clock=clock) as store:
        report = RunReport(started=clock())
        run_id = store.start_run(report.started)
        error: str | None = None
        try:
            if not offline:
                from feedsync.fetch.sources import update_store

                report.source = _stage(
                    "fetch",
                    lambda: update_store(
                        config,
                        store,
                        days=days,
                        refresh=refresh,
                        skip_fetched=skip_fetched,
                        progress=progress,
                        client=client,
                        stop=stop,
                    ),
                )
                report.failures.extend(f"source: {f}" for f in report.source.failures)
            topics = build_topics(config)
            _stage("match", lambda: _match(store, topics, report))
            report.published = _stage(
                "publish", lambda: _render_and_publish(config, store, topics, report)
            )
            if config.zotero.enabled and any(t.zotero for t in topics):
                _stage("zotero", lambda: _zotero(config, store, topics, report))
        except FeedsyncError as e:
            error = str(e)
            raise
        finally:
            report.finished = clock()
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


# -- match -------------------------------------------------------------------------------------


def _match(store: Store, topics: Sequence[Topic], report: RunReport) -> None:
    states = store.topic_states()
    seq = store.seq
    whole = [t for t in topics if _needs_full_match(states.get(t.slug), t)]
    whole_slugs = {t.slug for t in whole}
    behind = [t for t in topics if t.slug not in whole_slugs and states[t.slug].seq < seq]
    before = {slug: state.matched for slug, state in states.items()}
    updates: list[MatchUpdate] = []
    if whole:
        found = match_store(whole, store)
        updates += [MatchUpdate(t.slug, t.signature, found[t.slug]) for t in whole]
    if behind:
        since = min(states[t.slug].seq for t in behind)
        papers = list(store.documents(since_seq=since))
        scope = {rowid for rowid, _ in papers}
        found = match(behind, papers)
        updates += [MatchUpdate(t.slug, t.signature, found[t.slug], scope) for t in behind]
    gone = set(states) - {t.slug for t in topics}
    if updates or gone:
        store.save_matches(updates, seq=seq, drop=gone)
    after = store.topic_states() if updates or gone else states
    for t in topics:
        total = after[t.slug].matched if t.slug in after else 0
        report.topics[t.slug] = TopicReport(matches=total, new=total - before.get(t.slug, 0))


def _needs_full_match(state: TopicState | None, topic: Topic) -> bool:
    return state is None or state.signature != topic.signature


# -- render and publish --------------------------------------------------------------------------


def _render_and_publish(
    config: Config, store: Store, topics: Sequence[Topic], report: RunReport
) -> PublishReport:
    # Imported here: an idle pass stops before rendering and never loads the renderers.
    from feedsync.publish.stage import render_and_publish

    published, rendered = render_and_publish(config, store, topics)
    for slug in rendered:
        if slug in report.topics:
            report.topics[slug].rendered = True
    return published


# -- zotero ----------------------------------------------------------------------------------------


def _zotero(config: Config, store: Store, topics: Sequence[Topic], report: RunReport) -> None:
    # Imported here: pyzotero and httpx2 load only when a pass actually syncs.
    from feedsync.errors import ConfigError, SyncError
    from feedsync.zotero.sync import sync

    # The feeds are published already; whatever happens here only adds a failure line
    # (exit code 1). StorageError still escapes, as it does from every other stage.
    try:
        result = sync(config, store, topics)
    except (SyncError, ConfigError) as e:
        report.failures.append(f"zotero: {e}")
        return
    report.zotero = result.counts()
    report.failures.extend(f"zotero: {problem}" for problem in result.problems())
