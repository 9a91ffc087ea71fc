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

import hashlib
import json
import logging
import resource
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from feedsync.config import Config
from feedsync.errors import FeedsyncError
from feedsync.fragments import VERSION as FRAGMENTS_VERSION
from feedsync.fragments import assemble_atom, assemble_rss, render_fragments
from feedsync.locks import run_lock
from feedsync.models import Fragment
from feedsync.publish import PublishReport, publish
from feedsync.render import FeedSpec, render_opml
from feedsync.store import MatchUpdate, Store, TopicState
from feedsync.topics import Topic, build_topics, match

if TYPE_CHECKING:
    from feedsync.fetch import HttpClient
    from feedsync.sources import Progress, SourceReport

log = logging.getLogger(__name__)
T = TypeVar("T")

ALL = "all"  # the slug of the optional every-paper feed
INDEX_PAPERS = 10  # papers per topic on the index page
RENDER_VERSION = "1"  # bump when the renderers' output changes, to re-render everything


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
                from feedsync.sources import update_store

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
            except FeedsyncError:
                log.exception("cannot record the run status")
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
        found = match(whole, store.documents())
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


def feed_spec(config: Config, slug: str, title: str, description: str) -> FeedSpec:
    return FeedSpec(
        slug=slug,
        title=f"{config.feeds.title_prefix}{title}",
        description=description,
        base_url=config.base_url,
        ttl=ttl_minutes(config),
    )


def ttl_minutes(config: Config) -> int:
    """The feeds' <ttl>: the schedule's period, kept within what readers handle well."""
    minutes = int(config.schedule.period.total_seconds() // 60)
    return max(15, min(minutes, 1440))


def _render_and_publish(
    config: Config, store: Store, topics: Sequence[Topic], report: RunReport
) -> PublishReport:
    states = store.topic_states()
    previous = store.published()
    out = config.output_dir
    # Nothing in the store, the topics or the feed settings changed since the last publish,
    # and every file is still there: an idle run stops here, without a query per topic.
    everything = _digest(
        [
            RENDER_VERSION,
            store.seq,
            config.base_url,
            ttl_minutes(config),
            config.feeds.title_prefix,
            config.feeds.all_papers,
            config.feeds.max_items,
            [(t.slug, t.title, t.description, t.max_items, t.signature) for t in topics],
        ]
    )
    if (
        store.get_value("rendered:all-feeds") == everything
        and all(_intact(out, name, previous) for name in previous)
        and previous
    ):
        return PublishReport(written=[], unchanged=sorted(previous), removed=[])
    files: dict[str, bytes] = {}
    kept: set[str] = set()
    rendered: dict[str, str] = {}

    feeds: list[tuple[str, str, str, int]] = [
        (t.slug, t.title, t.description, t.max_items) for t in topics
    ]
    if config.feeds.all_papers:
        feeds.append(
            (ALL, "All papers", "Every paper of the Daily Papers digest", config.feeds.max_items)
        )
    specs = []
    newest_of: dict[str, list[int]] = {}  # each feed's papers, newest first, by row id
    revs: dict[int, int] = {}  # row id -> rev of every paper in some feed
    todo: list[tuple[FeedSpec, tuple[str, str]]] = []
    for slug, title, description, limit in feeds:
        spec = feed_spec(config, slug, title, description)
        specs.append(spec)
        newest = store.newest_ids(slug, limit) if slug != ALL else store.newest_all_ids(limit)
        newest_of[slug] = [rowid for rowid, _ in newest]
        revs.update(newest)
        signature = _digest([RENDER_VERSION, repr(spec), newest])
        names = (f"{slug}.rss", f"{slug}.atom")
        state = states.get(slug)
        last = state.rendered if state else store.get_value(f"rendered:{slug}")
        if last == signature and all(_intact(out, n, previous) for n in names):
            kept.update(names)
            continue
        todo.append((spec, names))
        rendered[slug] = signature
        if slug in report.topics:
            report.topics[slug].rendered = True
    if todo:
        wanted = {i: revs[i] for spec, _ in todo for i in newest_of[spec.slug]}
        entries = _entries(store, wanted, keep=revs)
        for spec, (rss_name, atom_name) in todo:
            chosen = [entries[i] for i in newest_of[spec.slug]]
            files[rss_name] = assemble_rss(spec, chosen)
            files[atom_name] = assemble_atom(spec, chosen)

    title = (
        f"{config.feeds.title_prefix.strip(' :')} feeds"
        if config.feeds.title_prefix
        else "feedsync feeds"
    )
    files["index.opml"] = render_opml(specs, title=title, base_url=config.base_url)
    index_signature = _digest(
        [RENDER_VERSION, [repr(s) for s in specs], sorted(rendered.items()), sorted(kept)]
    )
    if (
        rendered
        or store.get_value("rendered:index") != index_signature
        or not _intact(out, "index.html", previous)
    ):
        files["index.html"] = _index_page(config, store, specs, topics, title, newest_of)
    else:
        kept.add("index.html")

    result = publish(out, files, owned=set(previous) - kept)
    store.save_rendered({slug: sig for slug, sig in rendered.items() if slug != ALL})
    if ALL in rendered:
        store.set_value(f"rendered:{ALL}", rendered[ALL])
    store.set_value("rendered:index", index_signature)
    now_published = {name: previous[name] for name in kept if name in previous}
    now_published.update(
        {
            name: (hashlib.sha256(data).hexdigest(), _stamp(out / name))
            for name, data in files.items()
        }
    )
    store.save_published(now_published)
    store.set_value("rendered:all-feeds", everything)
    return result


def _stamp(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{st.st_mtime_ns}-{st.st_size}"


def _intact(out: Path, name: str, published: dict[str, tuple[str, str | None]]) -> bool:
    """Is ``name`` still the file we published (not deleted, not overwritten by anyone)?"""
    known = published.get(name)
    return known is not None and known[1] is not None and _stamp(out / name) == known[1]


def _entries(store: Store, wanted: dict[int, int], keep: Iterable[int]) -> dict[int, Fragment]:
    """The rendered entries of ``wanted`` (row id -> rev): cached, or rendered now once.

    Entries of papers in no feed (``keep``) leave the cache.
    """
    cached = store.fragments(wanted, FRAGMENTS_VERSION)
    missing = store.paper_map(i for i in wanted if i not in cached)
    fresh = render_fragments([missing[i] for i in wanted if i in missing])
    store.save_fragments(fresh, keep)
    return cached | fresh


def _index_page(
    config: Config,
    store: Store,
    specs: Sequence[FeedSpec],
    topics: Sequence[Topic],
    title: str,
    newest_of: dict[str, list[int]],
) -> bytes:
    from feedsync.pages import render_index

    queries = {t.slug: t.description for t in topics}
    queries[ALL] = "every paper"
    papers = store.paper_map({i for ids in newest_of.values() for i in ids[:INDEX_PAPERS]})
    sections = [
        (spec, queries[spec.slug], [papers[i] for i in newest_of[spec.slug][:INDEX_PAPERS]])
        for spec in specs
    ]
    return render_index(
        sections, title=title, opml_url=f"{config.base_url}/index.opml", generated=None
    )


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, default=str).encode()).hexdigest()[:24]


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
