"""Topics: the compiled form of each `[topics.<slug>]` table (pure code, no I/O).

A topic's query, `authors`, `organizations` and `min_upvotes` are ANDed into one compiled
``Query``; match/select.py finds its papers in the store.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from feedsync.config import Config, TopicConfig

if TYPE_CHECKING:
    from feedsync.query import Query


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
