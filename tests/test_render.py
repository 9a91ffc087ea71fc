"""Feeds, OPML and the index page, read back the way readers read them.

Every feed goes through feedparser (what many readers use) and lxml (strict XML); the
index page goes through lxml.html. Papers are made up here, in code.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import feedparser
import lxml.etree
import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsync.models import Paper, StoredPaper
from feedsync.render.feeds import (
    UNTITLED,
    FeedSpec,
    clean,
    entry_id,
    render_atom,
    render_opml,
    render_rss,
)
from feedsync.render.index_page import render_index
from feedsync.text import collapse, xml_safe

ATOM = "{http://www.w3.org/2005/Atom}"
BASE = "https://feeds.example.org"
SPEC = FeedSpec(
    slug="llm-eval",
    title="Daily Papers: LLM evaluation",
    description="Papers matching: eval OR benchmark",
    base_url=BASE,
    ttl=60,
)
OTHER = FeedSpec(
    slug="agents",
    title="Daily Papers: Agents",
    description="Papers matching: agent*",
    base_url=BASE,
    ttl=60,
)
SEEN = datetime(2026, 3, 6, 8, 30, tzinfo=UTC)
CONTROLS = re.compile("[\x7f-\x84\x86-\x9f]")
NASTY = [
    "\x00",
    "\x0b",
    "\x0c",
    "\x1f",
    "\x7f",
    "\x80",
    "\ufffe",
    "\uffff",
    "\ud800",
    "\udfff",
    "]]>",
]


def make_paper(arxiv_id: str | None = "2603.01234", **changes: Any) -> Paper:
    base = Paper(
        key=arxiv_id or "title:0123456789abcdef",
        arxiv_id=arxiv_id,
        title="Lattice Sketches for Sparse Planning",
        abstract="We study a made-up planner.\nIt is hard wrapped.\n\nA second paragraph.",
        authors=("Ana Ruiz", "Bo Chen"),
        author_count=2,
        organization="Example Lab",
        published=datetime(2026, 3, 4, 17, 59, 2, tzinfo=UTC),
        featured=date(2026, 3, 6),
        upvotes=4321,
        comments=987,
        ai_summary="A planner sketched on a lattice.",
        ai_keywords=("planning", "sparse rewards"),
        github_repo="https://github.com/example/lattice",
        project_page="https://lattice.example.org/",
    )
    return base.replace(**changes)


def stored(paper: Paper, *, changed: datetime = SEEN, rowid: int = 1) -> StoredPaper:
    return StoredPaper(
        paper=paper, rowid=rowid, first_seen=SEEN, last_seen=SEEN, changed=changed, rev=1
    )


def three_days() -> list[StoredPaper]:
    """Newest first, as the store hands them out."""
    return [
        stored(make_paper("2603.00003", title="Third Paper", featured=date(2026, 3, 6)), rowid=3),
        stored(make_paper("2603.00002", title="Second Paper", featured=date(2026, 3, 5)), rowid=2),
        stored(make_paper("2603.00001", title="First Paper", featured=date(2026, 3, 4)), rowid=1),
    ]


def parse_rss(data: bytes) -> Any:
    feed = feedparser.parse(data, response_headers={"content-type": "application/rss+xml"})
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "rss20"
    return feed


def parse_atom(data: bytes) -> Any:
    feed = feedparser.parse(data, response_headers={"content-type": "application/atom+xml"})
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    return feed


def feedparser_sees(text: str) -> str:
    """feedparser "repairs" text that looks like UTF-8 read as Latin-1 ("Â¡" -> "¡").

    That is its quirk (feedparser/mixin.py), not a property of the feed; lxml sees the
    exact text, and that is what the property test holds the renderer to.
    """
    try:
        return text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def links_by_rel(feed: Any) -> dict[str, str]:
    return {link["rel"]: link["href"] for link in feed.feed.links}


# --- FeedSpec -------------------------------------------------------------------------------


def test_spec_urls() -> None:
    spec = FeedSpec("llm", "LLM", "Papers matching: llm", BASE + "/", 30)
    assert spec.base_url == BASE  # pydantic's HttpUrl adds a slash; it is dropped
    assert spec.rss_url == f"{BASE}/llm.rss"
    assert spec.atom_url == f"{BASE}/llm.atom"
    assert spec.html_url == spec.page_url == f"{BASE}/index.html#llm"
    assert spec.authority == "feeds.example.org"


@pytest.mark.parametrize(
    "changes",
    [
        {"base_url": "feeds.example.org"},
        {"base_url": "javascript:alert(1)"},
        {"html_url": "javascript:alert(1)"},
        {"slug": "a/b"},
        {"slug": ""},
        {"slug": "a\\b"},
    ],
)
def test_spec_rejects(changes: dict[str, str]) -> None:
    fields = {"slug": "llm", "title": "T", "description": "D", "base_url": BASE, "ttl": 60}
    with pytest.raises(ValueError, match=r"must be|cannot be"):
        FeedSpec(**{**fields, **changes})  # type: ignore[arg-type]


# --- RSS and Atom, read back ----------------------------------------------------------------


def test_rss_reads_back() -> None:
    feed = parse_rss(render_rss(SPEC, three_days()))
    assert feed.feed.title == SPEC.title
    assert feed.feed.subtitle == SPEC.description
    assert feed.feed.link == SPEC.page_url  # the channel <link> is the HTML page
    assert links_by_rel(feed)["self"] == f"{BASE}/llm-eval.rss"
    assert feed.feed.ttl == "60"
    # lastBuildDate is the newest featured day, not when the store saw anything.
    assert feed.feed.updated_parsed[:6] == (2026, 3, 6, 0, 0, 0)

    assert [e.title for e in feed.entries] == ["Third Paper", "Second Paper", "First Paper"]
    first = feed.entries[0]
    assert first.id == "tag:feeds.example.org,2026:llm-eval/2603.00003"
    assert first.guidislink is False
    assert first.link == "https://arxiv.org/abs/2603.00003"
    assert [a["name"] for a in first.authors] == ["Ana Ruiz", "Bo Chen"]
    assert first.published_parsed[:6] == (2026, 3, 6, 0, 0, 0)
    assert [t.term for t in first.tags] == ["llm-eval", "planning", "sparse rewards"]
    assert first.enclosures == [
        {"href": "https://arxiv.org/pdf/2603.00003", "length": "0", "type": "application/pdf"}
    ]
    assert first.dc_identifier == "10.48550/arXiv.2603.00003"
    assert "We study a made-up planner. It is hard wrapped." in first.summary
    assert "AI-generated summary:" in first.summary


def test_atom_reads_back() -> None:
    feed = parse_atom(render_atom(SPEC, three_days()))
    assert feed.feed.title == SPEC.title
    assert feed.feed.id == SPEC.atom_url
    assert links_by_rel(feed) == {"self": f"{BASE}/llm-eval.atom", "alternate": SPEC.page_url}
    assert feed.feed.author == "feedsync"
    assert feed.feed.updated == "2026-03-06T00:00:00+00:00"
    assert "hub" not in links_by_rel(feed)

    assert [e.title for e in feed.entries] == ["Third Paper", "Second Paper", "First Paper"]
    first = feed.entries[0]
    assert first.id == "tag:feeds.example.org,2026:llm-eval/2603.00003"
    assert [(link.rel, link.href) for link in first.links] == [
        ("alternate", "https://arxiv.org/abs/2603.00003"),
        ("enclosure", "https://arxiv.org/pdf/2603.00003"),
    ]
    assert first.link == "https://arxiv.org/abs/2603.00003"
    assert first.enclosures == [
        {"href": "https://arxiv.org/pdf/2603.00003", "type": "application/pdf"}
    ]
    assert [a["name"] for a in first.authors] == ["Ana Ruiz", "Bo Chen"]  # not doubled
    assert first.published == "2026-03-06T00:00:00+00:00"
    assert first.updated == "2026-03-06T00:00:00+00:00"  # from the data, as published
    assert [t.term for t in first.tags] == ["llm-eval", "planning", "sparse rewards"]
    assert first.summary == "We study a made-up planner. It is hard wrapped.\n\nA second paragraph."
    [content] = first.content
    assert content.type == "text/html"
    for url in (
        "https://huggingface.co/papers/2603.00003",
        "https://arxiv.org/abs/2603.00003",
        "https://arxiv.org/pdf/2603.00003",
        "https://github.com/example/lattice",
        "https://lattice.example.org/",
    ):
        assert f'href="{url}"' in content.value


def test_ids_are_per_topic_unique_and_stable() -> None:
    papers = three_days()
    ids = {
        spec.slug: [e.id for e in parse_atom(render_atom(spec, papers)).entries]
        for spec in (SPEC, OTHER)
    }
    assert len(set(ids["llm-eval"])) == 3
    assert not set(ids["llm-eval"]) & set(ids["agents"])
    assert [e.id for e in parse_rss(render_rss(SPEC, papers)).entries] == ids["llm-eval"]

    # A new title, abstract and authors (and live counts) keep the id.
    edited = [
        stored(
            p.paper.replace(title="Retitled", abstract="New.", authors=("Cy",), upvotes=1),
            rowid=p.rowid,
            changed=datetime(2026, 3, 9, tzinfo=UTC),
        )
        for p in papers
    ]
    assert [e.id for e in parse_atom(render_atom(SPEC, edited)).entries] == ids["llm-eval"]


def test_entry_id_is_a_tag_uri_even_for_odd_keys() -> None:
    odd = make_paper(None).replace(key="title:ab cd")
    assert entry_id(SPEC, odd) == "tag:feeds.example.org,2026:llm-eval/title:ab%20cd"
    pinned = FeedSpec("x", "X", "D", "https://new-host.example.net", 60, tag_authority="old.org")
    assert entry_id(pinned, make_paper()) == "tag:old.org,2026:x/2603.01234"


def test_dates_come_from_the_data_and_fall_back() -> None:
    arxiv_only = make_paper("2603.00010", featured=None)
    bare = make_paper(None, featured=None, published=None)
    edited = make_paper("2603.00011")
    papers = [
        stored(arxiv_only),
        stored(bare),
        stored(edited, changed=datetime(2026, 3, 8, 12, 0, 0, 123456, tzinfo=UTC)),
    ]
    entries = parse_atom(render_atom(SPEC, papers)).entries
    assert entries[0].published == "2026-03-04T17:59:02+00:00"  # arXiv date
    assert entries[1].published == "2026-03-06T08:30:00+00:00"  # no date at all: first seen
    assert entries[2].published == "2026-03-06T00:00:00+00:00"  # featured day
    # A revision (a new abstract, say) does not move the date: it comes from the data,
    # never from when this store noticed the change.
    assert entries[2].updated == "2026-03-06T00:00:00+00:00"
    for entry in entries:
        assert entry.updated == entry.published


def test_the_bytes_do_not_depend_on_when_the_store_saw_the_papers() -> None:
    def seen_at(moment: datetime) -> list[StoredPaper]:
        return [
            StoredPaper(p.paper, p.rowid, first_seen=moment, last_seen=moment, changed=moment)
            for p in three_days()
        ]

    early = seen_at(datetime(2026, 3, 6, 8, 30, tzinfo=UTC))
    late = seen_at(datetime(2027, 1, 1, 23, 59, 59, tzinfo=UTC))
    for render in (render_rss, render_atom):
        assert render(SPEC, early) == render(SPEC, late)


def test_counts_never_reach_the_feed() -> None:
    papers = [stored(make_paper(upvotes=4321, comments=987))]
    for data in (render_rss(SPEC, papers), render_atom(SPEC, papers)):
        text = data.decode()
        assert "4321" not in text
        assert "987" not in text
        assert "upvote" not in text.lower()
    # Only counts changed: same bytes, so the publisher will not even rewrite the file.
    recounted = [stored(make_paper(upvotes=5, comments=0))]
    assert render_rss(SPEC, recounted) == render_rss(SPEC, papers)
    assert render_atom(SPEC, recounted) == render_atom(SPEC, papers)


def test_rendering_is_deterministic() -> None:
    papers = three_days()
    assert render_rss(SPEC, papers) == render_rss(SPEC, list(papers))
    assert render_atom(SPEC, papers) == render_atom(SPEC, list(papers))
    assert render_opml([SPEC, OTHER], title="T", base_url=BASE) == render_opml(
        [SPEC, OTHER], title="T", base_url=BASE
    )
    sections = [(SPEC, "eval OR benchmark", papers)]
    assert render_index(sections, title="T", opml_url="", generated=None) == render_index(
        sections, title="T", opml_url="", generated=None
    )


def test_empty_feeds_are_valid_and_dated_by_the_epoch() -> None:
    rss = parse_rss(render_rss(SPEC, []))
    assert rss.entries == []
    assert rss.feed.updated_parsed[:3] == (1970, 1, 1)
    atom = parse_atom(render_atom(SPEC, []))
    assert atom.entries == []
    assert atom.feed.updated == "1970-01-01T00:00:00+00:00"


def test_paper_without_arxiv_id_links_to_hf_search() -> None:
    paper = make_paper(None, title="Sparse & Dense: A Tale", github_repo=None)
    link = "https://huggingface.co/papers?q=Sparse+%26+Dense%3A+A+Tale"
    rss = parse_rss(render_rss(SPEC, [stored(paper)])).entries[0]
    assert rss.link == link
    assert rss.id == "tag:feeds.example.org,2026:llm-eval/title:0123456789abcdef"
    assert "enclosures" not in rss or rss.enclosures == []
    assert "dc_identifier" not in rss
    atom = parse_atom(render_atom(SPEC, [stored(paper)])).entries[0]
    assert [x.href for x in atom.links] == [link]
    assert atom.enclosures == []
    assert "arxiv.org" not in atom.content[0].value


def test_only_http_urls_are_linked() -> None:
    paper = make_paper(github_repo="javascript:alert(1)", project_page="data:text/html,hi")
    for data in (render_rss(SPEC, [stored(paper)]), render_atom(SPEC, [stored(paper)])):
        assert b"javascript:" not in data
        assert b"data:text" not in data


def test_author_fallbacks() -> None:
    papers = [
        stored(make_paper("2603.00001", authors=(), organization="Example Lab")),
        stored(make_paper("2603.00002", authors=(" ", "\x00"), organization=None)),
    ]
    for render, parse in ((render_rss, parse_rss), (render_atom, parse_atom)):
        data = render(SPEC, papers)
        entries = parse(data).entries
        assert [a["name"] for a in entries[0].authors] == ["Example Lab"]
        # No named author and no organization: no author, not a placeholder name.
        assert "authors" not in entries[1] and "author" not in entries[1]
        assert b"Unknown" not in data
    # The feed's own author stands in for entries without one (RFC 4287 4.1.1).
    assert parse_atom(render_atom(SPEC, papers)).feed.author == "feedsync"


def test_a_hub_is_linked_after_self_in_both_formats() -> None:
    hub = "https://hub.example.org/"
    spec = FeedSpec(SPEC.slug, SPEC.title, SPEC.description, BASE, 60, hub=hub)
    rss = parse_rss(render_rss(spec, three_days()))
    assert links_by_rel(rss)["hub"] == hub
    assert links_by_rel(rss)["self"] == spec.rss_url
    assert rss.feed.link == spec.page_url  # the channel <link> is still the page
    atom = parse_atom(render_atom(spec, three_days()))
    assert links_by_rel(atom) == {"self": spec.atom_url, "hub": hub, "alternate": spec.page_url}
    rels = [e.get("rel") for e in lxml.etree.fromstring(render_atom(spec, [])) if "link" in e.tag]
    assert rels == ["self", "hub", "alternate"]
    with pytest.raises(ValueError, match="hub must be"):
        FeedSpec("x", "X", "D", BASE, 60, hub="ftp://hub.example.org")


def test_html_in_input_stays_text() -> None:
    paper = make_paper(
        abstract="<script>alert(1)</script> & <b>bold</b>", ai_summary="<img src=x onerror=y>"
    )
    atom = parse_atom(render_atom(SPEC, [stored(paper)])).entries[0]
    assert atom.summary == "<script>alert(1)</script> & <b>bold</b>"  # plain text, as is
    content = atom.content[0].value
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in content
    assert "&lt;img src=x onerror=y&gt;" in content


@pytest.mark.parametrize("bad", NASTY)
def test_characters_xml_cannot_hold_are_dropped(bad: str) -> None:
    paper = make_paper(
        title=f"A{bad}B",
        abstract=f"abs{bad}tract",
        authors=(f"Ana{bad}Ruiz",),
        organization=f"Lab{bad}",
        ai_summary=f"sum{bad}mary",
        ai_keywords=(f"key{bad}word",),
        github_repo=f"https://github.com/x/{bad}",
    )
    expected = collapse(CONTROLS.sub("", xml_safe(f"A{bad}B")))
    for render, parse in ((render_rss, parse_rss), (render_atom, parse_atom)):
        data = render(SPEC, [stored(paper)])
        lxml.etree.fromstring(data)
        assert parse(data).entries[0].title == expected


# --- OPML -----------------------------------------------------------------------------------


def test_opml_lists_each_topic_once_by_rss_url() -> None:
    root = lxml.etree.fromstring(render_opml([SPEC, OTHER], title="Daily Papers", base_url=BASE))
    assert root.tag == "opml"
    assert root.get("version") == "2.0"
    assert root.findtext("head/title") == "Daily Papers"
    assert root.find("head/dateCreated") is None
    outlines = root.findall("body/outline")
    assert [dict(o.attrib) for o in outlines] == [
        {
            "type": "rss",
            "text": spec.title,
            "title": spec.title,
            "description": spec.description,
            "xmlUrl": spec.rss_url,
            "htmlUrl": spec.page_url,
        }
        for spec in (SPEC, OTHER)
    ]


# --- index.html -----------------------------------------------------------------------------


def index(sections: list[tuple[FeedSpec, str, list[StoredPaper]]], **kw: Any) -> bytes:
    kw.setdefault("title", "Daily Papers feeds")
    kw.setdefault("opml_url", f"{BASE}/index.opml")
    kw.setdefault("generated", None)
    return render_index(sections, **kw)


def test_index_lists_topics_with_links_and_newest_papers() -> None:
    many = [
        stored(make_paper(f"2603.{i:05d}", title=f"Paper {i}", featured=date(2026, 3, i + 1)))
        for i in range(12, 0, -1)
    ]
    data = index([(SPEC, "eval OR benchmark", many), (OTHER, "agent*", [])])
    page = lxml.html.fromstring(data)
    section = page.get_element_by_id("llm-eval")
    assert section.findtext(".//h2/a") == SPEC.title
    assert section.findtext(".//code") == "eval OR benchmark"
    hrefs = [a.get("href") for a in section.iter("a")]
    assert {SPEC.rss_url, SPEC.atom_url, f"{BASE}/index.opml"} <= set(hrefs)
    titles = [li.findtext("a") for li in section.iter("li")]
    assert titles == [f"Paper {i}" for i in range(12, 2, -1)]  # newest ten
    assert "2026-03-13" in section.text_content()
    assert "Ana Ruiz, Bo Chen" in section.text_content()
    assert "No papers yet." in page.get_element_by_id("agents").text_content()
    assert "Newest paper featured on 2026-03-13." in page.text_content()
    assert page.find(".//style") is not None
    assert page.xpath("//*[@src]") == []  # no external assets
    lxml.etree.fromstring(data)  # polyglot markup: well-formed XML too


def test_index_escapes_everything() -> None:
    evil = "<script>alert(1)</script>"
    paper = make_paper(title=evil, authors=(evil,))
    spec = FeedSpec("x", evil, "D", BASE, 60)
    data = index([(spec, f'"{evil}"', [stored(paper)])], title=evil)
    page = lxml.html.fromstring(data)
    assert page.xpath("//script") == []
    assert b"<script" not in data
    assert evil in page.findtext(".//h1")
    assert f'"{evil}"' == page.findtext(".//code")


def test_index_links_only_http_urls() -> None:
    data = index([(SPEC, "q", [stored(make_paper())])], opml_url="javascript:alert(1)")
    page = lxml.html.fromstring(data)
    for href in (a.get("href") for a in page.iter("a")):
        assert href.startswith(("https://", "#")), href
    assert b"javascript:" not in data


def test_index_shows_generated_time_when_given() -> None:
    data = index([(SPEC, "q", [])], generated=datetime(2026, 3, 6, 9, 5, tzinfo=UTC))
    assert "Updated 2026-03-06 09:05 UTC." in lxml.html.fromstring(data).text_content()


# --- property: any Unicode in any field yields well-formed output ---------------------------

nasty_text = st.one_of(
    st.text(),
    st.lists(
        st.one_of(
            st.characters(),
            st.characters(categories=["Cs"]),  # lone surrogates: st.text() never makes them
            st.sampled_from([*NASTY, "<script>", "&amp;", "\r\n", "\x85", "\u2028", "&#0;"]),
        ),
        max_size=30,
    ).map("".join),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=nasty_text,
    abstract=nasty_text,
    authors=st.lists(nasty_text, max_size=3),
    keywords=st.lists(nasty_text, max_size=3),
    org=nasty_text,
    summary=nasty_text,
    repo=nasty_text,
)
def test_any_unicode_renders_well_formed(
    title: str,
    abstract: str,
    authors: list[str],
    keywords: list[str],
    org: str,
    summary: str,
    repo: str,
) -> None:
    paper = make_paper(
        title=title,
        abstract=abstract,
        authors=tuple(authors),
        ai_keywords=tuple(keywords),
        organization=org,
        ai_summary=summary,
        github_repo=repo,
    )
    spec = FeedSpec("t", title, abstract, BASE, 60)
    papers = [stored(paper)]
    # Decided: a title shows as xml_safe, minus DEL and C1 controls (feedparser would read
    # them as cp1252), then collapsed; an empty one as UNTITLED. clean() is that rule.
    expected = collapse(CONTROLS.sub("", xml_safe(title))) or UNTITLED
    assert (clean(title) or UNTITLED) == expected

    rss = render_rss(spec, papers)
    item = lxml.etree.fromstring(rss).find("channel/item")
    assert item.findtext("title") == expected
    assert parse_rss(rss).entries[0].id == "tag:feeds.example.org,2026:t/2603.01234"

    atom = render_atom(spec, papers)
    entry = lxml.etree.fromstring(atom).find(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == expected
    assert parse_atom(atom).entries[0].title == feedparser_sees(expected)

    lxml.etree.fromstring(render_opml([spec], title=title, base_url=BASE))

    page = index([(spec, abstract, papers)], title=title)
    lxml.etree.fromstring(page)  # polyglot markup: well-formed XML too
    tree = lxml.html.fromstring(page)
    assert tree.xpath("//script") == []
    assert tree.findtext(".//ol/li/a") == expected
