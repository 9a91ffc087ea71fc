"""`feedsync preview`: which stored papers a topic or a trial query selects, and why."""

from __future__ import annotations

from collections.abc import Iterator

from feedsync.config import Config
from feedsync.errors import InputError
from feedsync.match.explain import explain
from feedsync.match.select import select_all
from feedsync.match.topics import topic_query
from feedsync.query import compile_query
from feedsync.store import Store


def preview(config: Config, *, topic: str | None, query: str | None, limit: int) -> Iterator[str]:
    """Lines to print: a header, then each matching paper, newest first, with its reasons."""
    if topic is not None:
        if topic not in config.topics:
            known = ", ".join(sorted(config.topics)) or "none configured"
            raise InputError(f"no topic {topic!r} in {config.config_path} (topics: {known})")
        compiled = topic_query(config.topics[topic])
        label = f"topic {topic}"
    else:
        assert query is not None
        compiled = compile_query(query)
        label = f"query {query}"
    from feedsync.match.topics import Topic

    probe = Topic("preview", "", "", limit, False, "", compiled)
    with Store(config.store_path) as store:
        total = store.count()
        found = select_all(store, [probe])["preview"]
        papers = store.papers_by_id(sorted(found))[:limit]
        why = explain(store, compiled.node, {stored.rowid: stored.paper for stored in papers})
    yield f"{label}: {len(found)} of {total} stored papers match"
    for stored in papers:
        paper = stored.paper
        day = paper.featured or (paper.published.date() if paper.published else None)
        ident = paper.arxiv_id or "(no arXiv id)"
        yield f"{day or '????-??-??'}  {ident:<12}  {paper.title}"
        reasons = why[stored.rowid]
        if reasons:
            yield "    matched: " + ", ".join(reasons)
    if len(found) > limit:
        yield f"... and {len(found) - limit} more (--limit)"
