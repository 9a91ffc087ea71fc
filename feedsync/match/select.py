"""Which stored papers a topic selects: its query compiled to SQL (query/sql.py) and run on
the store's full-text table, for the whole store or for the papers changed since a seq."""

from __future__ import annotations

from collections.abc import Sequence

from feedsync.match.topics import Topic
from feedsync.store import Store


def select_all(store: Store, topics: Sequence[Topic]) -> dict[str, set[int]]:
    """Every stored paper each topic selects, by slug."""
    from feedsync.query.sql import to_sql

    found = {}
    for topic in topics:
        sql = to_sql(topic.query.node)
        found[topic.slug] = store.select(sql.where, sql.params)
    return found


def select_changed(
    store: Store, topics: Sequence[Topic], since_seq: int
) -> tuple[set[int], dict[str, set[int]]]:
    """The papers changed after ``since_seq``, and those of them each topic selects."""
    from feedsync.query.sql import to_sql

    changed = store.changed_ids(since_seq)
    if not changed:
        return changed, {topic.slug: set() for topic in topics}
    # The full-text table is asked only from the oldest changed row on: an hourly run's
    # new papers are the newest rows, so each MATCH reads the end of its lists only.
    floor = min(changed)
    found = {}
    for topic in topics:
        sql = to_sql(topic.query.node, floor=floor)
        found[topic.slug] = store.select(sql.where, sql.params, since_seq=since_seq)
    return changed, found
