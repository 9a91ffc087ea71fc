"""The publish stage: find the feeds that changed (plan.py decides), render them, write
what changed to the target (a folder or a bucket: target.py), and record it.

An idle pass costs one signature lookup and, for a folder, a stat per published file; for
a bucket, nothing (no request). Entries come from the store's cache of rendered fragments
(render/fragments.py), so a paper is rendered once however many feeds list it. A file
someone else overwrote or deleted in a folder is published again.

Before anything is written, the records of the files about to be written lose their stamp
(no longer known to be intact): a run that fails or is killed half-way leaves them to the
next run, which writes them again, whatever it finds there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from feedsync.config import Config
from feedsync.match.topics import Topic
from feedsync.publish import plan as planning
from feedsync.publish.files import PublishReport
from feedsync.publish.plan import ALL, RENDER_VERSION, Feed
from feedsync.publish.target import Folder, Target
from feedsync.store import Store

# The renderers (feedgen, lxml) load only once some feed has to be rendered: an idle pass
# never pays for them.
if TYPE_CHECKING:
    from feedsync.models import Fragment
    from feedsync.render.feeds import FeedSpec

INDEX_PAPERS = 10  # papers per topic on the index page


@dataclass(frozen=True, slots=True)
class Published:
    """What the stage did: the files, the slugs of the feeds it rendered, and where."""

    files: PublishReport
    rendered: frozenset[str]
    where: str = ""


def feed_spec(config: Config, slug: str, title: str, description: str) -> FeedSpec:
    from feedsync.render.feeds import FeedSpec

    return FeedSpec(
        slug=slug,
        title=f"{config.feeds.title_prefix}{title}",
        description=description,
        base_url=config.base_url,
        ttl=ttl_minutes(config),
        hub=config.feeds.websub_hub,
    )


def ttl_minutes(config: Config) -> int:
    """The feeds' <ttl>: the schedule's period, kept within what readers handle well."""
    minutes = int(config.schedule.period.total_seconds() // 60)
    return max(15, min(minutes, 1440))


def render_and_publish(
    config: Config,
    store: Store,
    topics: Sequence[Topic],
    target: Target | None = None,
    *,
    recheck: bool = False,
) -> Published:
    """Render the feeds whose papers or settings changed, and publish what changed.

    ``recheck`` (``run --refresh``) trusts no record: every feed is rendered again, and
    written where its bytes differ on disk, or uploaded again to a bucket.
    """
    target = target or target_of(config)
    previous = store.published() if target.owns(store.get_value("published:target")) else {}
    intact = set() if recheck else {n for n, r in previous.items() if target.intact(n, r)}
    signature = planning.run_signature(
        [
            store.seq,
            config.base_url,
            ttl_minutes(config),
            config.feeds.title_prefix,
            config.feeds.all_papers,
            config.feeds.max_items,
            config.feeds.websub_hub,
            [(t.slug, t.title, t.description, t.max_items, t.signature) for t in topics],
        ]
    )
    if planning.idle(signature, store.get_value("rendered:all-feeds"), previous, intact):
        unchanged = PublishReport(unchanged=tuple(sorted(previous)))
        return Published(unchanged, frozenset(), target.where)

    feeds = _feeds(config, store, topics)
    states = store.topic_states()
    # The every-paper feed is no topic: its signature is kept as a plain value.
    last = {
        f.slug: states[f.slug].rendered
        if f.slug in states
        else store.get_value(f"rendered:{f.slug}")
        for f in feeds
    }
    chosen = planning.plan(feeds, last, intact, store.get_value("rendered:index"))
    files = _render(config, store, topics, feeds, chosen)

    # From here until the records are saved, the files being written are not known intact.
    unsure = {name: (sha, None) for name, (sha, _) in previous.items() if name in files}
    store.save_published({**previous, **unsure})
    store.set_value("published:target", target.identity)
    result, stamps = target.publish(
        files, previous=previous, intact=intact, owned=set(previous) - chosen.kept
    )
    rendered = chosen.rendered
    store.save_rendered({slug: sig for slug, sig in rendered.items() if slug != ALL})
    if ALL in rendered:
        store.set_value(f"rendered:{ALL}", rendered[ALL])
    store.set_value("rendered:index", chosen.index_signature)
    now_published = {name: previous[name] for name in chosen.kept if name in previous}
    now_published.update(
        {name: (hashlib.sha256(data).hexdigest(), stamps[name]) for name, data in files.items()}
    )
    store.save_published(now_published)
    store.set_value("rendered:all-feeds", signature)
    return Published(result, frozenset(rendered), target.where)


def target_of(config: Config) -> Target:
    """The folder or the bucket of ``output_dir``; the bucket's code loads only then."""
    if isinstance(config.output_dir, Path):
        return Folder(config.output_dir)
    from feedsync.publish.bucket import Bucket

    return Bucket(config.output_dir, config)


def _feeds(config: Config, store: Store, topics: Sequence[Topic]) -> list[Feed]:
    """Every feed to publish, with its newest papers from the store."""
    wanted = [(t.slug, t.title, t.description, t.max_items) for t in topics]
    if config.feeds.all_papers:
        every = "Every paper of the Daily Papers digest"
        wanted.append((ALL, "All papers", every, config.feeds.max_items))
    feeds = []
    for slug, title, description, limit in wanted:
        newest = store.newest_ids(slug, limit) if slug != ALL else store.newest_all_ids(limit)
        spec = feed_spec(config, slug, title, description)
        feeds.append(Feed(slug, spec, tuple((rowid, rev) for rowid, rev in newest)))
    return feeds


def _render(
    config: Config,
    store: Store,
    topics: Sequence[Topic],
    feeds: Sequence[Feed],
    chosen: planning.Plan,
) -> dict[str, bytes]:
    from feedsync.render.feeds import render_opml
    from feedsync.render.fragments import assemble_atom, assemble_rss

    files: dict[str, bytes] = {}
    revs = {rowid: rev for feed in feeds for rowid, rev in feed.newest}
    if chosen.render:
        wanted = {rowid: rev for feed in chosen.render for rowid, rev in feed.newest}
        entries = _entries(store, wanted, keep=revs)
        for feed in chosen.render:
            papers = [entries[rowid] for rowid, _ in feed.newest]
            rss, atom = feed.files
            files[rss] = assemble_rss(feed.spec, papers)
            files[atom] = assemble_atom(feed.spec, papers)
    title = index_title(config)
    specs = [feed.spec for feed in feeds]
    files["index.opml"] = render_opml(specs, title=title, base_url=config.base_url)
    if chosen.render_index:
        files["index.html"] = _index_page(config, store, feeds, topics, title)
    return files


def index_title(config: Config) -> str:
    prefix = config.feeds.title_prefix.strip(" :")
    return f"{prefix} feeds" if prefix else "feedsync feeds"


def _entries(store: Store, wanted: dict[int, int], keep: Iterable[int]) -> dict[int, Fragment]:
    """The rendered entries of ``wanted`` (row id -> rev): cached, or rendered now once.

    Entries of papers in no feed (``keep``) leave the cache.
    """
    from feedsync.render.fragments import render_fragments

    cached = store.fragments(wanted, RENDER_VERSION)
    missing = store.paper_map(i for i in wanted if i not in cached)
    fresh = render_fragments([missing[i] for i in wanted if i in missing])
    store.save_fragments(fresh, keep)
    return cached | fresh


def _index_page(
    config: Config,
    store: Store,
    feeds: Sequence[Feed],
    topics: Sequence[Topic],
    title: str,
) -> bytes:
    from feedsync.render.index_page import render_index

    queries = {t.slug: t.description for t in topics}
    queries[ALL] = "every paper"
    shown = {feed.slug: [rowid for rowid, _ in feed.newest[:INDEX_PAPERS]] for feed in feeds}
    papers = store.paper_map({rowid for ids in shown.values() for rowid in ids})
    sections = [
        (feed.spec, queries[feed.slug], [papers[rowid] for rowid in shown[feed.slug]])
        for feed in feeds
    ]
    return render_index(
        sections, title=title, opml_url=f"{config.base_url}/index.opml", generated=None
    )
