"""Topics: the compiled form of each `[topics.<slug>]` table, and matching papers to them.

Pure code, no I/O. A topic's query, `authors`, `organizations` and `min_upvotes` are ANDed
into one compiled ``Query``. Matching many papers at once goes through an inverted index
(``MemoryIndex``), one ``select`` per topic; a handful of new papers are tested one by one,
which is cheaper than building an index for them.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from feedsync.config import Config, TopicConfig
from feedsync.models import Paper

if TYPE_CHECKING:
    from feedsync.query import Query

# Below this many papers, testing each paper against each topic beats building an index.
# Measured with 100 benchmark topics: about even at 5 papers, the index 3x faster at 20
# and 10x at 80 (an hourly run's new papers).
INDEX_THRESHOLD = 8
# Papers indexed at once when re-matching many: bounds memory, costs little speed.
INDEX_CHUNK = 10_000


@dataclass(frozen=True)
class Topic:
    """One topic feed, ready to match: ``signature`` changes whenever what it selects may.

    ``selection`` is the topic's table, or an already compiled query; it is compiled on
    first use, so a run with nothing to match never pays for compiling a hundred queries.
    """

    slug: str
    title: str
    description: str
    max_items: int
    zotero: bool
    signature: str
    selection: TopicConfig | Query

    @functools.cached_property
    def query(self) -> Query:
        if isinstance(self.selection, TopicConfig):
            return topic_query(self.selection)
        return self.selection


def build_topics(config: Config) -> list[Topic]:
    """Every configured topic, compiled, in slug order (config validation already passed)."""
    return [
        build_topic(slug, topic, config.feeds.max_items)
        for slug, topic in sorted(config.topics.items())
    ]


def build_topic(slug: str, topic: TopicConfig, default_max: int) -> Topic:
    return Topic(
        slug=slug,
        title=topic.title,
        description=describe(topic),
        max_items=topic.max_items or default_max,
        zotero=topic.zotero,
        signature=_signature(topic),
        selection=topic,
    )


def topic_query(topic: TopicConfig) -> Query:
    from feedsync.query import all_of, any_phrase, compile_query, min_upvotes

    parts: list[Query] = []
    if topic.query:
        parts.append(compile_query(topic.query))
    if topic.authors:
        parts.append(any_phrase("author", topic.authors))
    if topic.organizations:
        parts.append(any_phrase("org", topic.organizations))
    if topic.min_upvotes:
        parts.append(min_upvotes(topic.min_upvotes))
    return all_of(parts)


def describe(topic: TopicConfig) -> str:
    """The topic's selection in words, for feed descriptions and the index page."""
    parts = []
    if topic.query:
        parts.append(topic.query)
    if topic.authors:
        parts.append("authors: " + ", ".join(topic.authors))
    if topic.organizations:
        parts.append("organizations: " + ", ".join(topic.organizations))
    if topic.min_upvotes:
        parts.append(f"at least {topic.min_upvotes} upvotes")
    return "; ".join(parts)


def _signature(topic: TopicConfig) -> str:
    # Only what decides membership: a new title or max_items does not force a re-match.
    selection = {
        "query": topic.query,
        "authors": topic.authors,
        "organizations": topic.organizations,
        "min_upvotes": topic.min_upvotes,
        "version": 1,  # bump when the query language's semantics change
    }
    return hashlib.sha256(json.dumps(selection, sort_keys=True).encode()).hexdigest()[:16]


def match(topics: Sequence[Topic], papers: Iterable[tuple[int, Paper]]) -> dict[str, set[int]]:
    """For each topic, the ids (store row ids) of the given papers it selects.

    Papers are taken ``INDEX_CHUNK`` at a time, each chunk indexed, queried and dropped:
    re-matching a whole archive costs the memory of one chunk's index, not of all of it.
    """
    found: dict[str, set[int]] = {topic.slug: set() for topic in topics}
    # An index holds millions of small tuples and no reference cycles: the cyclic garbage
    # collector would walk them again and again as they are made (a quarter of the time
    # to index 50,000 papers), and has nothing to collect.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for chunk in _batched(papers):
            for slug, ids in _match_chunk(topics, chunk).items():
                found[slug] |= ids
    finally:
        if collecting:
            gc.enable()
    return found


def _batched(papers: Iterable[tuple[int, Paper]]) -> Iterator[tuple[tuple[int, Paper], ...]]:
    iterator = iter(papers)
    while chunk := tuple(itertools.islice(iterator, INDEX_CHUNK)):
        yield chunk


def _match_chunk(
    topics: Sequence[Topic], papers: Sequence[tuple[int, Paper]]
) -> dict[str, set[int]]:
    from feedsync.query import MemoryIndex, document

    docs = {rowid: document(paper) for rowid, paper in papers}
    if len(docs) >= INDEX_THRESHOLD:
        index = MemoryIndex(docs.items())
        return {topic.slug: topic.query.select(index) for topic in topics}
    return {
        topic.slug: {rowid for rowid, doc in docs.items() if topic.query.matches(doc)}
        for topic in topics
    }
