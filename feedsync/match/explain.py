"""Why a paper matches a query: the terms that made it true, as ``preview`` shows them.

Whether each term holds for a paper comes from the same engine the feeds use (each term's
SQL, asked of the papers shown only); the words a wildcard or a regex matched come from the
paper's text. Terms under NOT are never listed: they count because they are absent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from feedsync.models import Paper
from feedsync.query import Leaf, Node, tokenize
from feedsync.query.tree import And, Not, Or, Prefix, Regex, Upvotes
from feedsync.query.words import DEFAULT_FIELDS
from feedsync.store import Store


def explain(store: Store, node: Node, papers: Mapping[int, Paper]) -> dict[int, list[str]]:
    """For each paper (by row id), the labels of the terms that make ``node`` hold for it,
    e.g. ``reason*→reasoning``; empty for a paper it does not hold for."""
    from feedsync.query.sql import to_sql

    store.search_ready()
    ids = set(papers)
    holds: dict[Leaf, Collection[int]] = {}
    for leaf in node.leaves():
        if leaf not in holds:
            sql = to_sql(leaf)
            holds[leaf] = store.select(sql, among=ids) if ids else set()
    out = {}
    for rowid, paper in papers.items():
        out[rowid] = list(dict.fromkeys(_labels(node, rowid, paper, holds)))
    return out


def _true(node: Node, rowid: int, holds: Mapping[Leaf, Collection[int]]) -> bool:
    if isinstance(node, Not):
        return not _true(node.child, rowid, holds)
    if isinstance(node, And):
        return all(_true(child, rowid, holds) for child in node.children)
    if isinstance(node, Or):
        return any(_true(child, rowid, holds) for child in node.children)
    assert isinstance(node, Leaf)
    return rowid in holds[node]


def _labels(
    node: Node, rowid: int, paper: Paper, holds: Mapping[Leaf, Collection[int]]
) -> list[str]:
    if isinstance(node, Not) or not _true(node, rowid, holds):
        return []
    if isinstance(node, And | Or):
        return [label for c in node.children for label in _labels(c, rowid, paper, holds)]
    assert isinstance(node, Leaf)
    hits = sorted(set(_hits(node, paper)))
    return [f"{node.label}→{'/'.join(hits)}" if hits else node.label]


def _hits(leaf: Leaf, paper: Paper) -> list[str]:
    """What the label does not tell: the words a wildcard matched, a regex's match, the
    upvote count."""
    if isinstance(leaf, Upvotes):
        return [str(paper.upvotes or 0)]
    if not isinstance(leaf, Prefix | Regex):
        return []
    fields = DEFAULT_FIELDS if leaf.field is None else (leaf.field,)
    values = [v for field in fields for v in _values(paper, field) if v]
    if isinstance(leaf, Prefix):
        return [w for v in values for w in tokenize(v) if w.startswith(leaf.prefix)]
    found = (leaf.pattern.first(v) for v in values)
    return [match for match in found if match]


def _values(paper: Paper, field: str) -> tuple[str | None, ...]:
    return {
        "title": (paper.title,),
        "abstract": (paper.abstract,),
        "keyword": paper.ai_keywords,
        "author": paper.authors,
        "org": (paper.organization,),
    }[field]
