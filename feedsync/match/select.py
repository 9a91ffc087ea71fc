"""Which stored papers a topic selects: its query compiled to SQL (query/sql.py) and run on
the store's full-text table, for the whole store or for the papers changed since a seq."""

from __future__ import annotations

from collections.abc import Sequence

from feedsync.match.topics import Topic
from feedsync.store import Store


def select_all(store: Store, topics: Sequence[Topic]) -> dict[str, set[int]]:
    """Every stored paper each topic selects, by slug."""
    from feedsync.query.sql import to_sql

    store.search_ready()
    found = {}
    for topic in topics:
        sql = to_sql(topic.query.node)
        if sql.match is not None:  # the full-text table alone answers it
            found[topic.slug] = store.select_matching(sql.match)
        else:
            found[topic.slug] = store.select(sql)
    return found


def select_changed(
    store: Store, topics: Sequence[Topic], since_seq: int
) -> tuple[set[int], dict[str, set[int]]]:
    """The papers changed after ``since_seq``, and those of them each topic selects: the
    same SQL, asked of a full-text table of those papers alone."""
    from feedsync.query.sql import to_sql

    found = {}
    with store.changed_table(since_seq) as (table, changed):
        for topic in topics:
            sql = to_sql(topic.query.node, table=table)
            found[topic.slug] = store.select(sql, among=changed) if changed else set()
    return changed, found
