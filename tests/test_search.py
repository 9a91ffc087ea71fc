"""The FTS5 engine gives the answers of the query language's rules: a property test
against the plain evaluator in tests/query_reference.py, over random papers and random
queries of the whole language (words, phrases, fields, wildcards, regexes, upvotes,
AND / OR / NOT, groups), for the whole store and for the papers an hourly run changed."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsync.match.select import select_all, select_changed
from feedsync.match.topics import Topic
from feedsync.models import Paper
from feedsync.query import compile_query
from feedsync.store import Store
from tests.query_reference import matches
from tests.test_query import _QUERIES, papers


def stored(paper: Paper, n: int) -> Paper:
    """``paper`` as the n-th distinct paper of a store (ids and titles must differ)."""
    return paper.replace(key=f"2603.{n:05d}", arxiv_id=f"2603.{n:05d}", title=paper.title or "x")


def probes(queries: list[str]) -> list[Topic]:
    return [
        Topic(f"q{n}", "", "", 50, False, "", compile_query(text)) for n, text in enumerate(queries)
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(papers(), max_size=6),
    st.lists(_QUERIES, min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(0, 5), papers()), max_size=3),
)
def test_the_engine_agrees_with_the_rules(
    corpus: list[Paper], queries: list[str], changes: list[tuple[int, Paper]]
) -> None:
    topics = probes(queries)
    with Store(Path(":memory:")) as store:
        for n, paper in enumerate(corpus):
            store.upsert([stored(paper, n)])
        _agree(store, topics)
        seq = store.seq
        for n, paper in changes:  # an hourly run: some papers change, one is new
            store.upsert([stored(paper, n)])
        store.upsert([stored(corpus[0] if corpus else Paper(key="x", title="x"), 99)])
        changed, found = select_changed(store, topics, seq)
        everything = _agree(store, topics)
        for topic in topics:
            assert found[topic.slug] == everything[topic.slug] & changed


def _agree(store: Store, topics: list[Topic]) -> dict[str, set[int]]:
    papers_now = {s.rowid: s.paper for s in store.papers()}
    found = select_all(store, topics)
    for topic in topics:
        expected = {i for i, p in papers_now.items() if matches(topic.query.node, p)}
        assert found[topic.slug] == expected, topic.query.text
    return found


def test_a_regex_that_matches_nothing_still_needs_a_value() -> None:
    """``/(al)?/`` matches the empty string, yet a paper has no abstract to search: the
    rules search each non-empty raw value only."""
    empty = Paper(key="2603.00001", arxiv_id="2603.00001", title="Lattices", abstract="")
    full = empty.replace(key="2603.00002", arxiv_id="2603.00002", abstract="Any text")
    topics = probes(["abstract:/(al)?/", "org:/x*/", "keyword:/.*/", "/(al)?/"])
    with Store(Path(":memory:")) as store:
        store.upsert([empty, full])
        found = select_all(store, topics)
    assert [sorted(found[t.slug]) for t in topics] == [[2], [], [], [1, 2]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(papers(), min_size=1, max_size=5), _QUERIES)
def test_preview_shows_the_terms_that_matched(corpus: list[Paper], text: str) -> None:
    """The terms a preview lists for a paper, from the engine: listed only for a paper the
    query matches, never a term under NOT, and each one holding for that paper."""
    from feedsync.match.explain import explain
    from tests.query_reference import matches as holds

    query = compile_query(text)
    with Store(Path(":memory:")) as store:
        for n, paper in enumerate(corpus):
            store.upsert([stored(paper, n)])
        shown = {s.rowid: s.paper for s in store.papers()}
        reasons = explain(store, query.node, shown)
    leaves = {leaf.label: leaf for leaf in query.leaves()}
    for rowid, paper in shown.items():
        assert bool(reasons[rowid]) <= matches(query.node, paper)
        for reason in reasons[rowid]:
            leaf = leaves[reason.split("→")[0]]
            assert holds(leaf, paper), (reason, paper)


def test_the_tokenizer_differences_the_readme_documents() -> None:
    """Where SQLite's words are not the query language's (README, "Topic queries")."""
    papers = [
        Paper(key=f"2603.0000{n}", arxiv_id=f"2603.0000{n}", title=title)
        for n, title in enumerate(["İstanbul lattices", "\U0001e900\U0001e922 planners"], 1)
    ]
    topics = probes(["İstanbul", "/İstanbul/", "\U0001e922\U0001e922", "\U0001e900\U0001e922"])
    with Store(Path(":memory:")) as store:
        store.upsert(papers)
        found = select_all(store, topics)
    # The dotted capital: one word in the table, "i stanbul" in the query; a regex finds it.
    # Adlam capitals are not folded by SQLite's Unicode 6.1 tables, query words are.
    assert [sorted(found[t.slug]) for t in topics] == [[], [1], [], []]
