"""Reliability 4: hostile digests and queries, from the file to the published page.

Hypothesis writes digests in all three forms (API JSON, an HTML page with the list in its
``data-props``, a plain-text copy) full of control characters, lone surrogates escaped in
JSON (``"\\ud800"``), markup (``<script>``, ``]]>``, entities), huge and negative numbers
and links with every scheme, plus topic queries (random strings and random well-formed
queries, titled with the same junk). Each example goes through the real pass (a
``files`` source: parse -> store -> match -> render -> publish) into a fresh directory, and:

- nothing is raised but feedsync's own errors (a bad query is a ``QueryError``, a digest
  nothing can be read from a failure in the run report);
- every published ``.rss`` and ``.atom`` is well-formed XML that feedparser reads with
  ``bozo == 0``, and ``index.opml`` is well-formed XML;
- ``index.html`` carries no markup from the input: parsed as a browser would (lxml.html),
  it has no ``<script>``, no ``on*`` attribute, no link but http(s) and in-page anchors,
  only the elements the page template uses; and every stored paper's title reads back, as
  text, exactly as cleaned (so a ``<script>`` in a title shows as text).

Oversized input: 50 MB digests of several shapes (many entries, one giant abstract, one
giant title, a giant text line, a million tiny values, ...) go through ``feedsync run`` in
a subprocess whose peak RSS is measured; each must be handled within a memory bound or
refused with a clear message. A 1 MB abstract and 10,000 authors are capped (100,000
characters; 2,000 names, the count kept) with a warning.
"""

from __future__ import annotations

import functools
import html
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import feedparser
import lxml.etree
import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsync.config import load_config
from feedsync.config.toml import dumps
from feedsync.errors import FeedsyncError, QueryError
from feedsync.match.select import select_all
from feedsync.match.topics import Topic
from feedsync.models import StoredPaper
from feedsync.parsers import parse_digest
from feedsync.parsers.hf_json import MAX_ABSTRACT, MAX_AUTHORS
from feedsync.pipeline import run
from feedsync.publish.stage import ALL
from feedsync.query import compile_query
from feedsync.render.feeds import UNTITLED, FeedSpec, clean, render_atom, render_rss
from feedsync.render.index_page import render_index
from feedsync.store import Store
from tests.query_reference import matches
from tests.reliability.figures import record

DAY = date(2026, 3, 2)
FEEDSYNC = [sys.executable, "-m", "feedsync"]

# -- strategies ---------------------------------------------------------------------------------

NASTY = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "]]>",
    "<![CDATA[",
    "<!--",
    "-->",
    "&amp;",
    "&lt;b&gt;",
    "&#0;",
    "&#x1F600;",
    "&nbsp;",
    "\x00",
    "\x01",
    "\x0b",
    "\x0c",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\x9f",
    "\ud800",  # lone surrogates: legal in a JSON escape, not in UTF-8 or XML
    "\udfff",
    "\ufeff",
    "\ufffe",
    "\uffff",
    "\u2028",
    "\u202e",
    "\u200b",
    "\U0001f600",
    "\U0010ffff",
    "e\u0301",
    "\r\n",
    "\r",
    "\t",
    "javascript:alert(1)",
    "${jndi:ldap://x}",
    "%s%n",
    "'",
    '"',
    "\\",
    " " * 5,
]
TEXT = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=12)), max_size=6).map("".join)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 2**53, 2**63, 2**64 + 1, 10**400, -(10**400)]),
)
URLS = st.one_of(
    st.sampled_from(
        [
            "https://github.com/a/b",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "http://x/<script>",
            'https://x/"onmouseover="alert(1)',
            "//evil.example",
            "vbscript:x",
            "http://[",
        ]
    ),
    TEXT,
)
TIMES = st.one_of(
    st.sampled_from(["2026-03-02T02:14:40.512Z", "9999-12-31T23:59:59+14:00", "0001-01-01"]),
    TEXT,
    NUMBERS,
)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the expected type (with hostile content), now and then any JSON value."""
    return st.one_of(strategy, strategy, strategy, strategy, strategy, JSON_VALUES)


# Titles mostly survive cleaning, so that papers reach the feeds and the page.
TITLE = st.one_of(
    TEXT,
    st.tuples(
        st.sampled_from(["Lattice ", "Robot ", "<script>alert(1)</script>", "]]>", "&amp; "]), TEXT
    ).map("".join),
    st.tuples(TEXT, st.sampled_from([" lattice", " <b>robot</b>"])).map("".join),
)


ORGS = st.fixed_dictionaries({}, optional={"name": _maybe(TEXT), "fullname": _maybe(TEXT)})
IDS = st.one_of(
    st.integers(min_value=1, max_value=40).map(lambda n: f"2603.{n:05d}"),
    st.integers(min_value=1, max_value=40).map(lambda n: f"2603.{n:05d}"),
    st.sampled_from(["2603.0213", "cs/0501001", "arXiv:2603.00001v2", "../../etc/passwd"]),
    TEXT,
    NUMBERS,
)
PAPERS = st.fixed_dictionaries(
    {"id": _maybe(IDS), "title": _maybe(TITLE)},
    optional={
        "summary": _maybe(TEXT),
        "authors": _maybe(
            st.lists(
                st.one_of(
                    st.fixed_dictionaries(
                        {"name": _maybe(TEXT)}, optional={"hidden": _maybe(TEXT)}
                    ),
                    TEXT,
                ),
                max_size=5,
            )
        ),
        "publishedAt": TIMES,
        "submittedOnDailyAt": TIMES,
        "upvotes": _maybe(NUMBERS),
        "ai_summary": _maybe(TEXT),
        "ai_keywords": _maybe(st.lists(TEXT, max_size=4)),
        "githubRepo": _maybe(URLS),
        "projectPage": _maybe(URLS),
        "organization": _maybe(ORGS),
    },
)
ENTRY = st.fixed_dictionaries(
    {"paper": _maybe(PAPERS)},
    optional={
        "title": _maybe(TITLE),
        "summary": _maybe(TEXT),
        "numComments": _maybe(NUMBERS),
        "organization": _maybe(ORGS),
        "ai_summary": _maybe(TEXT),
    },
)
# Mostly daily entries; a bare paper is what /api/papers/{id} returns.
ENTRIES = st.one_of(ENTRY, ENTRY, ENTRY, PAPERS, JSON_VALUES)
ENTRY_LISTS = st.lists(ENTRIES, max_size=8)


def json_digest(entries: list[Any], wrapped: bool) -> bytes:
    # ensure_ascii: lone surrogates travel as "\ud800" escapes, as a hostile server sends.
    value: Any = {"dailyPapers": entries, "dateString": "2026-03-02"} if wrapped else entries
    return json.dumps(value, ensure_ascii=True).encode()


def html_digest(entries: list[Any], junk: str) -> bytes:
    props = json.dumps({"dailyPapers": entries, "dateString": "2026-03-02"}, ensure_ascii=True)
    junk = html.escape(junk.encode("utf-8", "replace").decode("utf-8"))
    return (
        f"<!doctype html><html><head><title>{junk}</title></head><body>{junk}"
        f'<div data-target="DailyPapers" data-props="{html.escape(props, quote=True)}">'
        f"{junk}</div></body></html>"
    ).encode()


CARD_LINES = st.one_of(
    st.sampled_from(
        ["42", "-", "0", "999999999", "·", "• 3 authors", "- 1 author", "* 10000 authors"]
    ),
    st.sampled_from(["Mar 2", "Feb 29", "Feb 30", "May 26, 2023 5", "Dec 31, 9999", "Jan 1, 0001"]),
    st.sampled_from(["Daily Papers", "new", "Subscribe", "by AK and the research community"]),
    TEXT,
)
TEXT_COPIES = st.tuples(
    st.lists(CARD_LINES, max_size=30), st.sampled_from(["\n", "\r\n", "\r", "\n\n"])
).map(lambda t: ("Daily Papers\nMar 2\n" + t[1].join(t[0])).encode("utf-8", "surrogatepass"))

FORMS: dict[str, st.SearchStrategy[bytes]] = {
    "json": st.builds(json_digest, ENTRY_LISTS, st.booleans()),
    "html": st.builds(html_digest, ENTRY_LISTS, TEXT),
    "text": TEXT_COPIES,
}

WORDS = st.one_of(
    st.sampled_from(["lattice", "robot", "script", "alert", "amp", "x", "2603", "ü", "日本"]),
    st.from_regex(r"\A[a-z0-9]{1,8}\Z"),
)
ATOMS = st.one_of(
    WORDS,
    WORDS.map(lambda w: f"{w}*" if len(w) > 1 else w),
    st.lists(WORDS, min_size=1, max_size=3).map(lambda ws: '"' + " ".join(ws) + '"'),
    st.tuples(st.sampled_from(["title", "abstract", "author", "org", "keyword"]), WORDS).map(
        ":".join
    ),
    st.sampled_from(["/<script>/", r"/\bkv[- ]cache\b/", "/[\\x00-\\x1f]/", "/]]>/"]),
    st.integers(min_value=0, max_value=10**6).map(lambda n: f"upvotes:>={n}"),
)
WELL_FORMED = st.recursive(
    ATOMS,
    lambda q: st.one_of(
        st.tuples(q, st.sampled_from([" AND ", " OR ", " "]), q).map("".join),
        q.map(lambda s: f"({s})"),
        q.map(lambda s: f"NOT {s}"),
        q.map(lambda s: f"-({s})"),
    ),
    max_leaves=6,
)
QUERIES = st.lists(st.one_of(WELL_FORMED, WELL_FORMED, TEXT), min_size=1, max_size=3)
TITLES = TEXT.map(lambda t: t.encode("utf-8", "replace").decode("utf-8")[:200] or "T")

# -- the pass and its checks ----------------------------------------------------------------

# The page template's own elements; anything else in index.html came from the input.
PAGE_ELEMENTS = {
    "html", "head", "meta", "title", "link", "style", "body", "main", "header", "h1", "h2",
    "p", "nav", "ul", "ol", "li", "a", "section", "code", "br", "span", "time", "footer",
    "em", "strong",
}  # fmt: skip


@dataclass
class Outcome:
    examples: int = 0
    papers: int = 0
    feeds: int = 0
    refused_queries: int = 0
    failed_runs: int = 0
    errors: int = 0


STATS: dict[str, Outcome] = {}


def toml_text(value: str) -> str:
    """What TOML can carry of a string: no lone surrogates."""
    return value.encode("utf-8", "replace").decode("utf-8")


def one_pass(base: Path, form: str, digest: bytes, queries: list[str], titles: list[str]) -> None:
    """The real pass over one digest file; every check of the module docstring."""
    outcome = STATS.setdefault(form, Outcome())
    outcome.examples += 1
    home = Path(tempfile.mkdtemp(dir=base))
    (home / f"digest.{form}").write_bytes(digest)
    topics = {}
    for n, (query, title) in enumerate(zip(queries, titles, strict=False)):
        query = toml_text(query)
        try:
            compile_query(query)
        except QueryError:
            outcome.refused_queries += 1
            continue
        topics[f"t{n}"] = {"title": title, "query": query}
    config_path = home / "feedsync.toml"
    config_path.write_text(
        dumps(
            {
                "data_dir": "data",
                "output_dir": "feeds",
                "base_url": "https://feeds.example.org/x",
                "source": {"kind": "files", "paths": [f"digest.{form}"]},
                "feeds": {"all_papers": True, "title_prefix": "<b>&"},
                "topics": topics,
            }
        ),
        encoding="utf-8",
    )
    try:
        config = load_config(config_path, {})
        report = run(config)
    except FeedsyncError:
        # Allowed (feedsync's own error, with a message), and counted: none is expected,
        # since the pass raises only for the store, the lock or the output directory.
        outcome.errors += 1
        return
    outcome.failed_runs += not report.ok
    out = config.output_dir
    for path in sorted(out.iterdir()):
        data = path.read_bytes()
        if path.suffix in (".rss", ".atom"):
            lxml.etree.fromstring(data)
            parsed = feedparser.parse(data)
            assert not parsed.bozo, f"{path.name}: {parsed.get('bozo_exception')}"
            outcome.feeds += 1
        elif path.suffix == ".opml":
            lxml.etree.fromstring(data)
    with Store(config.store_path) as store:
        shown = store.newest(None, 10)
        outcome.papers += store.count()
    check_page(
        (out / "index.html").read_bytes(), ALL, [clean(p.paper.title) or UNTITLED for p in shown]
    )


def check_page(data: bytes, section: str, titles: list[str]) -> None:
    page = lxml.html.document_fromstring(data)
    assert not page.xpath("//script"), "a <script> element in index.html"
    for element in page.iter():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions are the template's own: none
        assert element.tag in PAGE_ELEMENTS, f"<{element.tag}> in index.html"
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), f"{name}= in index.html"
            if name == "href":
                assert value.startswith(("https://", "http://", "#")), value
    # The page is also well-formed XML: its text is exactly what went in, escaped once.
    root = lxml.etree.fromstring(data)
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    listed = root.xpath(f'//h:section[@id="{section}"]//h:li/h:a', namespaces=ns)
    assert ["".join(a.itertext()) for a in listed] == titles


# A full pass costs ~35 ms, most of it feedparser reading six feeds back: 70 examples per
# form keep this file within its CI budget (the queries alone run 200); the slow variant
# runs 2,000 per form and 5,000 queries.
SHORT = settings(
    max_examples=70,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LONG = settings(SHORT, max_examples=2000)


def hostile(form: str, strategy_settings: settings) -> Callable[[pytest.TempPathFactory], None]:
    @strategy_settings
    @given(digest=FORMS[form], queries=QUERIES, titles=st.lists(TITLES, min_size=3, max_size=3))
    def test(
        tmp_path_factory: pytest.TempPathFactory,
        digest: bytes,
        queries: list[str],
        titles: list[str],
    ) -> None:
        one_pass(tmp_path_factory.getbasetemp(), form, digest, queries, titles)

    return test  # type: ignore[no-any-return]


def _figure(form: str) -> None:
    o = STATS.get(form, Outcome())
    record(
        f"hostile input: {form} digests",
        f"{o.examples} examples, {o.papers} papers stored, {o.feeds} feeds valid, "
        f"{o.refused_queries} queries refused (QueryError), {o.failed_runs} runs with a "
        f"source failure, {o.errors} FeedsyncErrors raised, 0 crashes",
    )


@pytest.mark.parametrize("form", list(FORMS))
def test_hostile_digests_and_queries(tmp_path_factory: pytest.TempPathFactory, form: str) -> None:
    STATS.pop(form, None)
    hostile(form, SHORT)(tmp_path_factory)
    _figure(form)


@pytest.mark.slow
@pytest.mark.parametrize("form", list(FORMS))
def test_thousands_of_hostile_digests(tmp_path_factory: pytest.TempPathFactory, form: str) -> None:
    STATS.pop(form, None)
    hostile(form, LONG)(tmp_path_factory)
    _figure(form)


def test_a_script_in_a_title_shows_as_text(tmp_path: Path) -> None:
    title = "<script>alert('x')</script> & ]]> <b>bold</b>"
    entries = [{"paper": {"id": "2603.00001", "title": title, "summary": "lattice"}}]
    one_pass(tmp_path, "json", json_digest(entries, False), ["lattice"], ["<i>T</i>"])
    (home,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    page = (home / "feeds" / "index.html").read_bytes()
    assert b"&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert title in lxml.html.document_fromstring(page).text_content()
    for feed in ("t0.atom", "t0.rss", "all.atom"):
        entry = feedparser.parse((home / "feeds" / feed).read_bytes()).entries[0]
        assert entry.title == title


# -- queries alone: compile, match both ways, render their text -------------------------------


@functools.cache
def hostile_papers() -> tuple[tuple[StoredPaper, ...], Store]:
    """A fixed set of stored papers with every kind of junk in every field, and its store."""
    entries = [
        {
            "paper": {
                "id": f"2603.{n:05d}",
                "title": f"{junk} Lattice robot {n}",
                "summary": f"{junk} alert script amp",
                "authors": [{"name": junk}, {"name": "Ana Ruiz"}],
                "ai_keywords": [junk, "kv cache"],
                "upvotes": n,
                "organization": {"fullname": junk},
            }
        }
        for n, junk in enumerate(NASTY, start=1)
    ]
    digest = parse_digest(json_digest(entries, False), day=DAY, source="<fixed>")
    store = Store(":memory:")  # kept open for every query of the test run
    store.upsert(digest.papers)
    return tuple(store.newest(None, 1000)), store


def one_query(query: str, title: str) -> bool:
    """Compile, match, render; False when the query is refused (QueryError)."""
    try:
        compiled = compile_query(query)
    except QueryError:
        return False
    papers, store = hostile_papers()
    matched = {p.rowid for p in papers if matches(compiled.node, p.paper)}
    probe = Topic("q", "", "", 50, False, "", compiled)
    assert select_all(store, [probe])["q"] == matched
    # The query's own text is what is under test here; a few papers are enough around it.
    shown = [p for p in papers if p.rowid in matched][:3]
    spec = FeedSpec("t", title, query, "https://feeds.example.org/x", 60)
    for data in (render_rss(spec, shown), render_atom(spec, shown)):
        lxml.etree.fromstring(data)
        parsed = feedparser.parse(data)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert len(parsed.entries) == len(shown)
    page = render_index(
        [(spec, query, shown)], title=title, opml_url=spec.base_url + "/index.opml", generated=None
    )
    check_page(page, "t", [clean(p.paper.title) or UNTITLED for p in shown])
    return True


QUERY_STATS = {"tried": 0, "refused": 0}


def queries_test(strategy_settings: settings) -> Callable[[], None]:
    @strategy_settings
    @given(query=st.one_of(WELL_FORMED, TEXT), title=TITLES)
    def test(query: str, title: str) -> None:
        QUERY_STATS["tried"] += 1
        QUERY_STATS["refused"] += not one_query(query, title)

    return test  # type: ignore[no-any-return]


def _query_figure() -> None:
    record(
        "hostile input: topic queries",
        f"{QUERY_STATS['tried']} queries, {QUERY_STATS['refused']} refused (QueryError), "
        "0 crashes, matches == select, every feed and page valid",
    )


def test_hostile_queries() -> None:
    QUERY_STATS.update(tried=0, refused=0)
    queries_test(settings(SHORT, max_examples=200))()
    _query_figure()


@pytest.mark.slow
def test_thousands_of_hostile_queries() -> None:
    QUERY_STATS.update(tried=0, refused=0)
    queries_test(settings(SHORT, max_examples=5000))()
    _query_figure()


# -- oversized input ---------------------------------------------------------------------------

MB = 1 << 20
SIZE = 50 * MB
MEMORY_BOUND_MB = 400


def _entry(
    title: str = "Giant", abstract: str = "a", authors: Any = ("Ana Ruiz",)
) -> dict[str, Any]:
    return {
        "paper": {
            "id": "2603.00001",
            "title": title,
            "summary": abstract,
            "authors": [{"name": a} for a in authors],
            "submittedOnDailyAt": "2026-03-02T00:00:00Z",
        }
    }


def _many_entries(path: Path) -> None:
    """Realistic entries (a long abstract, eight authors) until the file is 50 MB."""
    with path.open("w", encoding="utf-8") as f:
        f.write("[")
        n, size = 0, 2
        while size < SIZE:
            value = _entry(
                f"Lattice planning study number {n}",
                "We study a made-up problem with a made-up method. " * 80,
                tuple(f"Author {n} {i}" for i in range(8)),
            )
            value["paper"]["id"] = f"{2401 + n // 90000 % 12:04d}.{n % 90000:05d}"
            text = ("," if n else "") + json.dumps(value)
            f.write(text)
            size += len(text)
            n += 1
        f.write("]")


def _around(prefix: str, unit: str, suffix: str = "") -> Callable[[Path], None]:
    """``prefix``, then ``unit`` repeated up to 50 MB, then ``suffix``; written in pieces,
    so the test process never holds the whole digest."""

    def write(path: Path) -> None:
        count = (SIZE - len(prefix.encode()) - len(suffix.encode())) // len(unit.encode())
        with path.open("w", encoding="utf-8") as f:
            f.write(prefix)
            for _ in range(count // 100_000):
                f.write(unit * 100_000)
            f.write(unit * (count % 100_000))
            f.write(suffix)

    return write


_PAPER = '[{"paper": {"id": "2603.00001", "submittedOnDailyAt": "2026-03-02", '
_PAGE = '<!doctype html><div data-target="DailyPapers" data-props="'
_TEXT = "Daily Papers\nMar 2\n"

# name -> (form, writer). Each is 50 MB on disk.
OVERSIZED: dict[str, tuple[str, Callable[[Path], None]]] = {
    "many entries": ("json", _many_entries),
    "one giant abstract": ("json", _around(_PAPER + '"title": "T", "summary": "', "x", '"}}]')),
    "one giant abstract of words": (
        "json",
        _around(_PAPER + '"title": "T", "summary": "', "x ", '"}}]'),
    ),
    "one giant title": ("json", _around(_PAPER + '"title": "', "t ", '"}}]')),
    "3 million authors": (
        "json",
        _around(_PAPER + '"title": "T", "authors": [', '{"name": "A B"},', '{"name": "Z"}]}}]'),
    ),
    "26 million zeros": ("json", _around("[", "0,", "0]")),
    "17 million empty objects": ("json", _around("[", "{},", "{}]")),
    "html, one giant abstract": (
        "html",
        _around(
            _PAGE + html.escape('{"dailyPapers": ' + _PAPER + '"title": "T", "summary": "'),
            "x ",
            html.escape('"}}]}') + '"></div>',
        ),
    ),
    "text, one giant line": (
        "text",
        _around(_TEXT + "12\nGiant title\n", "word ", "\n• 3 authors\n·\nMar 1\n"),
    ),
    "text, many cards": (
        "text",
        _around(
            _TEXT, "7\nLattice planning with a robot\nA short abstract.\n• 3 authors\n·\nMar 1\n"
        ),
    ),
    "text, 17 million dots": ("text", _around(_TEXT, "·\n")),
}


def peak_run(home: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """`feedsync run` in a child; (result, the child's peak RSS in MB)."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec, so the child would
    # report the test process's own peak; the high-water mark belongs to the new image.
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['feedsync', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('feedsync', run_name='__main__')\n"
        "finally:\n"
        "    status = open('/proc/self/status').read()\n"
        "    sys.stderr.write('\\npeak-rss-kb ' + status.split('VmHWM:')[1].split()[0] + '\\n')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSYNC_")}
    result = subprocess.run(
        [sys.executable, "-c", probe, "--config", str(home / "feedsync.toml"), "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    found = re.search(r"peak-rss-kb (\d+)", result.stderr)
    assert found, result.stderr[-2000:]
    return result, int(found[1]) / 1024


def write_home_config(home: Path, name: str) -> None:
    (home / "feedsync.toml").write_text(
        dumps(
            {
                "data_dir": "data",
                "output_dir": "feeds",
                "source": {"kind": "files", "paths": [name]},
                "feeds": {"all_papers": True},
                "topics": {"t": {"title": "T", "query": "lattice OR robot"}},
            }
        ),
        encoding="utf-8",
    )


def baseline_mb(tmp: Path) -> float:
    """The peak of a run over a one-paper digest: what the growth is measured from."""
    home = tmp / "baseline"
    home.mkdir()
    (home / "digest.json").write_text(json.dumps([_entry()]), encoding="utf-8")
    write_home_config(home, "digest.json")
    return peak_run(home)[1]


def oversized(tmp: Path, name: str) -> tuple[str, float, str]:
    """(how it ended, the run's peak RSS in MB, its first warning or failure)."""
    form, write = OVERSIZED[name]
    home = tmp / re.sub(r"\W+", "-", name)
    home.mkdir()
    digest = home / f"digest.{form}"
    write(digest)
    assert abs(digest.stat().st_size - SIZE) < MB, digest.stat().st_size
    write_home_config(home, digest.name)
    result, peak = peak_run(home)
    digest.unlink()
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    messages = [
        line.split(f"{digest}: ", 1)[-1]
        for line in result.stderr.splitlines()
        if line.startswith("feedsync: failed:") or " WARNING " in line
    ]
    how = {0: "handled", 1: "refused"}.get(result.returncode, f"exit {result.returncode}")
    return how, peak, (messages[0] if messages else "")[:120]


def check_oversized(tmp: Path, names: list[str]) -> None:
    base = baseline_mb(tmp)
    problems = []
    for name in names:
        how, peak, message = oversized(tmp, name)
        growth = peak - base
        record(f"oversized input: 50 MB, {name}", f"{how}, peak RSS +{growth:.0f} MB; {message}")
        if how not in ("handled", "refused") or growth > MEMORY_BOUND_MB:
            problems.append(f"{name}: {how}, +{growth:.0f} MB")
        if how == "refused" and "limit" not in message:
            problems.append(f"{name}: refused without naming the limit: {message!r}")
    assert not problems, problems


def test_oversized_digests(tmp_path: Path) -> None:
    check_oversized(tmp_path, ["one giant abstract of words", "26 million zeros"])


@pytest.mark.slow
def test_every_oversized_digest(tmp_path: Path) -> None:
    check_oversized(tmp_path, list(OVERSIZED))


def test_a_1mb_abstract_and_10000_authors_are_capped(tmp_path: Path) -> None:
    long_abstract = _entry("Lattice planning, long abstract", "word " * (MB // 5))
    many_authors = _entry(
        "Lattice planning, many authors", authors=[f"A {i}" for i in range(10_000)]
    )
    many_authors["paper"]["id"] = "2603.00002"
    home = tmp_path / "capped"
    home.mkdir()
    (home / "digest.json").write_text(json.dumps([long_abstract, many_authors]), encoding="utf-8")
    write_home_config(home, "digest.json")
    result, peak = peak_run(home)
    assert result.returncode == 0, result.stderr
    assert f"entry 0: abstract truncated to {MAX_ABSTRACT} characters" in result.stderr
    assert f"entry 1: 10000 authors; kept the first {MAX_AUTHORS} names" in result.stderr
    config = load_config(home / "feedsync.toml", {})
    with Store(config.store_path) as store:
        first, second = store.get("2603.00001"), store.get("2603.00002")
    assert first is not None and second is not None
    assert MAX_ABSTRACT - 10 < len(first.paper.abstract) <= MAX_ABSTRACT  # cut, then trimmed
    assert len(second.paper.authors) == MAX_AUTHORS
    assert second.paper.author_count == 10_000
    feed = feedparser.parse((home / "feeds" / "all.atom").read_bytes())
    assert not feed.bozo and len(feed.entries) == 2
    record(
        "oversized input: 1 MB abstract, 10,000 authors",
        f"handled: capped to {MAX_ABSTRACT:,} characters and {MAX_AUTHORS:,} names (the "
        f"count 10,000 kept), with a warning each; peak RSS {peak:.0f} MB",
    )
