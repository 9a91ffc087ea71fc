"""The publish stage: find the feeds that changed, render them, write what changed.

Rules:
- An idle pass costs one signature lookup and a stat per published file: when nothing in
  the store, the topics or the feed settings changed and every file is still the one we
  wrote, nothing is queried or rendered.
- A feed is rendered only when its newest papers (id and revision) or its settings
  changed; entries come from the store's cache of rendered fragments (fragments.py), so a
  paper is rendered once however many feeds list it.
- A file someone else overwrote or deleted is published again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedsync.config import Config
from feedsync.match.topics import Topic
from feedsync.publish.files import PublishReport, publish
from feedsync.store import Store

# The renderers (feedgen, lxml) load only once some feed has to be rendered: an idle pass
# never pays for them.
if TYPE_CHECKING:
    from feedsync.models import Fragment
    from feedsync.render.feeds import FeedSpec

ALL = "all"  # the slug of the optional every-paper feed
INDEX_PAPERS = 10  # papers per topic on the index page
# Bump when the renderers' output changes (render.py, fragments.py, pages.py): every feed
# is then rendered again, and every cached entry is dropped first.
RENDER_VERSION = "1"


def feed_spec(config: Config, slug: str, title: str, description: str) -> FeedSpec:
    from feedsync.render.feeds import FeedSpec

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


def render_and_publish(
    config: Config, store: Store, topics: Sequence[Topic]
) -> tuple[PublishReport, set[str]]:
    """Render the feeds whose papers or settings changed, and publish what changed.

    Returns what was published and the slugs of the feeds rendered.
    """
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
        return PublishReport(written=[], unchanged=sorted(previous), removed=[]), set()
    from feedsync.render.feeds import render_opml
    from feedsync.render.fragments import assemble_atom, assemble_rss

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
    return result, set(rendered)


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
    from feedsync.render.fragments import render_fragments

    cached = store.fragments(wanted, RENDER_VERSION)
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
    from feedsync.render.index_page import render_index

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
