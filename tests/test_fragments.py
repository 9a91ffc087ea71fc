"""Spliced feeds are byte for byte the feeds feedgen renders whole, for any input."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsync.models import StoredPaper
from feedsync.render.feeds import FeedSpec, render_atom, render_rss
from feedsync.render.fragments import assemble_atom, assemble_rss, render_fragments
from tests.test_render import BASE, OTHER, SPEC, make_paper, nasty_text, stored, three_days


def spliced(spec: FeedSpec, papers: list[StoredPaper]) -> tuple[bytes, bytes]:
    fragments = render_fragments(papers)
    ordered = [fragments[p.rowid] for p in papers]
    return assemble_rss(spec, ordered), assemble_atom(spec, ordered)


def whole(spec: FeedSpec, papers: list[StoredPaper]) -> tuple[bytes, bytes]:
    return render_rss(spec, papers), render_atom(spec, papers)


@pytest.mark.parametrize("spec", [SPEC, OTHER])
def test_spliced_feeds_equal_whole_ones(spec: FeedSpec) -> None:
    papers = three_days()
    assert spliced(spec, papers) == whole(spec, papers)


def test_empty_feeds_equal_whole_ones() -> None:
    assert spliced(SPEC, []) == whole(SPEC, [])


def test_one_fragment_serves_every_topic_and_order() -> None:
    papers = three_days()
    fragments = render_fragments(papers)
    for spec in (SPEC, OTHER):
        for chosen in (papers[:1], papers[1:], [papers[2], papers[0]]):
            ordered = [fragments[p.rowid] for p in chosen]
            assert assemble_rss(spec, ordered) == render_rss(spec, chosen)
            assert assemble_atom(spec, ordered) == render_atom(spec, chosen)


def test_a_topic_that_is_also_a_keyword_is_listed_once() -> None:
    paper = stored(make_paper(ai_keywords=("planning", "llm-eval", "agents")))
    assert spliced(SPEC, [paper]) == whole(SPEC, [paper])
    assert spliced(SPEC, [paper])[0].count(b"<category>llm-eval</category>") == 1


def test_fragments_carry_revision_and_no_topic() -> None:
    paper = stored(make_paper())
    fragment = render_fragments([paper])[paper.rowid]
    assert fragment.rev == paper.rev
    assert b"llm-eval" not in fragment.rss + fragment.atom


slugs = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True),
    # Config allows only the first kind; FeedSpec takes any printable file name.
    st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1).filter(
        lambda s: not s.startswith(".") and not set(s) & set("/\\")
    ),
)
hosts = st.one_of(st.none(), st.sampled_from(["old.example.org", "a&b<c>\"d'", "x y"]))
hubs = st.one_of(
    st.none(), st.sampled_from(["https://hub.example.org/", "https://h.test/?a=1&b=<2>"])
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    slug=slugs,
    authority=hosts,
    title=nasty_text,
    abstract=nasty_text,
    authors=st.lists(nasty_text, max_size=3),
    keywords=st.lists(nasty_text, max_size=3),
    topic_keyword=st.booleans(),
    arxiv=st.booleans(),
    hub=hubs,
)
def test_any_input_splices_to_the_same_bytes(
    slug: str,
    authority: str | None,
    title: str,
    abstract: str,
    authors: list[str],
    keywords: list[str],
    topic_keyword: bool,
    arxiv: bool,
    hub: str | None,
) -> None:
    spec = FeedSpec(slug, f"T{title}", abstract, BASE, 60, tag_authority=authority, hub=hub)
    if topic_keyword:
        keywords = [*keywords, slug]
    papers = [
        stored(
            make_paper(
                "2603.01234" if arxiv else None,
                title=title,
                abstract=abstract,
                authors=tuple(authors),
                ai_keywords=tuple(keywords),
            ),
            rowid=1,
        ),
        stored(make_paper("2603.00002", featured=date(2026, 3, 1)), rowid=2),
    ]
    assert spliced(spec, papers) == whole(spec, papers)
