"""The digest parsers: a corpus of inputs with their expected output, the error cases, and
property tests that hostile input only ever ends in feedsync's own errors.

Corpus layout (tests/data/parsers): each input ``NAME.ext`` has ``NAME.expected.jsonl``
(the exact ``Paper.to_json()`` records), and where relevant ``NAME.warnings.txt`` (one
warning a line; absent means none) and ``NAME.args.json`` (``as_of``, ``day``, ``format``).
"""

from __future__ import annotations

import html
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsync.errors import FeedsyncError, InputError, ParseError
from feedsync.models import Digest, Paper
from feedsync.parsers import MAX_BYTES, detect_format, parse_digest, parse_file
from feedsync.parsers.hf_json import MAX_ABSTRACT, MAX_AUTHORS
from feedsync.text import collapse, xml_safe

CORPUS = Path(__file__).parent / "data" / "parsers"
SIDECARS = (".expected.jsonl", ".warnings.txt", ".args.json")
FORMAT_OF_EXTENSION = {".json": "hf-json", ".html": "hf-html", ".txt": "text"}


def _is_sidecar(path: Path) -> bool:
    return path.name.endswith(SIDECARS)


def _stem(path: Path) -> str:
    return path.name.split(".", 1)[0]


INPUTS = sorted(p for p in CORPUS.iterdir() if p.is_file() and not _is_sidecar(p))


def assert_well_formed(digest: Digest) -> None:
    """What every parsed paper must satisfy, whatever the input."""
    assert isinstance(digest, Digest)
    for paper in digest.papers:
        assert_paper_well_formed(paper)


def assert_paper_well_formed(paper: Paper) -> None:
    assert isinstance(paper.key, str)
    assert paper.key
    assert paper.arxiv_id is None or isinstance(paper.arxiv_id, str)
    if paper.arxiv_id is not None:
        assert paper.key == paper.arxiv_id
    else:
        assert paper.key.startswith("title:")
    assert paper.title
    for text in (paper.title, paper.abstract, *paper.authors, paper.organization or ""):
        assert isinstance(text, str)
        assert collapse(text) == text, f"whitespace run in {text!r}"
        assert xml_safe(text) == text, f"XML-unsafe character in {text!r}"
    if paper.published is not None:
        assert paper.published.tzinfo is UTC
    for count in (paper.upvotes, paper.comments, paper.author_count):
        assert count is None or (type(count) is int and count >= 0)
    assert len(paper.abstract) <= MAX_ABSTRACT
    assert len(paper.authors) <= MAX_AUTHORS
    # What `feedsync parse` prints must be encodable (no lone surrogates survive).
    json.dumps(paper.to_json(), ensure_ascii=False).encode("utf-8")


# --- the corpus ----------------------------------------------------------------------


def test_corpus_is_complete() -> None:
    """Every input has its expected output, no two inputs share a name, no sidecar is stray."""
    assert INPUTS, f"no inputs in {CORPUS}"
    stems = [_stem(p) for p in INPUTS]
    assert len(stems) == len(set(stems)), "two inputs share a name; their sidecars would clash"
    missing = [p.name for p in INPUTS if not (CORPUS / f"{_stem(p)}.expected.jsonl").exists()]
    assert not missing, f"inputs without NAME.expected.jsonl: {missing}"
    stray = [p.name for p in CORPUS.iterdir() if _is_sidecar(p) and _stem(p) not in stems]
    assert not stray, f"sidecars without an input: {stray}"


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_corpus(path: Path) -> None:
    args = _args(path)
    digest = parse_file(path, **args)

    expected = _expected_papers(path)
    assert [p.to_json() for p in digest.papers] == expected
    warnings_file = CORPUS / f"{_stem(path)}.warnings.txt"
    expected_warnings = (
        warnings_file.read_text("utf-8").splitlines() if warnings_file.exists() else []
    )
    assert [str(w) for w in digest.warnings] == expected_warnings
    assert digest.format == args.get("format", FORMAT_OF_EXTENSION[path.suffix])
    assert_well_formed(digest)


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_corpus_format_is_detected(path: Path) -> None:
    assert detect_format(path.read_bytes()) == FORMAT_OF_EXTENSION[path.suffix]


def _args(path: Path) -> dict[str, Any]:
    file = CORPUS / f"{_stem(path)}.args.json"
    raw = json.loads(file.read_text("utf-8")) if file.exists() else {}
    args: dict[str, Any] = {}
    for name in ("as_of", "day"):
        if name in raw:
            args[name] = date.fromisoformat(raw[name])
    if "format" in raw:
        args["format"] = raw["format"]
    return args


def _expected_papers(path: Path) -> list[dict[str, Any]]:
    file = CORPUS / f"{_stem(path)}.expected.jsonl"
    if not file.exists():
        pytest.fail(f"{path.name} has no {file.name}")
    lines = file.read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


# --- format detection and --format ---------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"[]", "hf-json"),
        (b"\xef\xbb\xbf \r\n\t[{}]", "hf-json"),
        (b'{"dailyPapers": []}', "hf-json"),
        (b"<!doctype html><html></html>", "hf-html"),
        (b"\xef\xbb\xbf\n<!DOCTYPE HTML>\n<html lang=en>", "hf-html"),
        (b"<html>\n<body></body></html>", "hf-html"),
        (b'<div data-target="DailyPapers" data-props="{}"></div>', "hf-html"),
        (b"<p>a fragment that is not a papers page</p>", "text"),
        (b"<?xml version='1.0'?><rss/>", "text"),
        (b"Daily Papers\nby AK and the research community\n", "text"),
        (b"", "text"),
        (b"   \n", "text"),
    ],
)
def test_detect_format(data: bytes, expected: str) -> None:
    assert detect_format(data) == expected


# A text copy without its header whose first title starts with "[": sniffed as JSON.
BRACKET_TITLE = "[Re] Replicating Sparse Routers\nWe rerun the routers.\n• 2 authors\n·\nMar 4\n"


def test_format_override_reads_what_detection_gets_wrong() -> None:
    data = BRACKET_TITLE.encode()
    assert detect_format(data) == "hf-json"
    with pytest.raises(ParseError, match="not valid JSON"):
        parse_digest(data, as_of=date(2026, 3, 6))
    digest = parse_digest(data, format="text", as_of=date(2026, 3, 6))
    assert [p.title for p in digest.papers] == ["[Re] Replicating Sparse Routers"]
    assert digest.papers[0].published == datetime(2026, 3, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "forced", "message"),
    [
        ("text-page.txt", "hf-json", "not valid JSON"),
        ("text-page.txt", "hf-html", "data-target"),
        ("html-page.html", "text", "not a copy of the papers page"),
        ("json-2026.json", "hf-html", "data-target"),
    ],
)
def test_format_override_is_obeyed(name: str, forced: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_file(CORPUS / name, format=forced, as_of=date(2026, 3, 6))


def test_unknown_format_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown format 'rss'"):
        parse_digest(b"[]", format="rss")


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'[1, "x", {}]', "no paper could be read (3 warnings; first: entry 0: not an object"),
        (b'{"papers": []}', "expected a JSON array of daily papers, got an object"),
        (b"[NaN]", "not valid JSON"),
        (b"[" * 100_000, "nested too deeply"),
        (b'{"a": ' * 100_000, "nested too deeply"),
        (b"[" + b"1" * 5000 + b"]", "not valid JSON"),
        (b"hello\nworld\n", "not a copy of the papers page"),
        (b"<html><body><p>Too Many Requests</p></body></html>", 'data-target="DailyPapers"'),
        (b'<html><div data-target="DailyPapers" data-props="{oops"></div></html>', "not valid"),
        (b'<html><div data-target="DailyPapers" data-props="[]"></div></html>', "no dailyPapers"),
        (b"\xff\xfe[\x00]\x00", "UTF-16"),
        (b'[{"paper": {"id": "2503.01234", "title": "caf\xe9"}}]', "not UTF-8: invalid byte 0xe9"),
        (b"Daily Papers\nMar 6\n\xc3(", "not UTF-8: invalid byte 0xc3 at offset 19"),
    ],
)
def test_errors_name_the_source_and_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_digest(data, source="digest.bin", as_of=date(2026, 3, 6))
    assert str(caught.value).startswith("digest.bin: ")
    assert message in str(caught.value)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("data", "got"), [(b"42", "a number"), (b'"[]"', "a string"), (b"null", "null")]
)
def test_json_that_is_not_an_array(data: bytes, got: str) -> None:
    with pytest.raises(ParseError, match=f"expected a JSON array of daily papers, got {got}$"):
        parse_digest(data, format="hf-json")


def test_html_nested_too_deeply_in_props() -> None:
    props = ("[" * 50_000).replace("[", "&#91;")
    page = f'<html><div data-target="DailyPapers" data-props="{props}"></div></html>'
    with pytest.raises(ParseError, match="nested too deeply"):
        parse_digest(page.encode())


def test_deeply_nested_html_is_not_a_crash() -> None:
    page = "<html><body>" + "<div>" * 20_000 + "</div>" * 20_000 + "</body></html>"
    with pytest.raises(ParseError, match=r"DailyPapers|not a readable HTML page"):
        parse_digest(page.encode())


def test_empty_day_is_not_an_error() -> None:
    assert parse_digest(b"[]") == Digest(papers=(), format="hf-json")
    assert parse_digest(b"  [ ]\n", day=date(2026, 3, 7)).day == date(2026, 3, 7)


def test_header_only_text_copy_is_an_empty_day() -> None:
    data = b"Daily Papers\nby AK and the research community\nMar 7\n"
    assert parse_digest(data, as_of=date(2026, 3, 7)).papers == ()


def test_too_large_input() -> None:
    with pytest.raises(ParseError, match=r"digest too large: 64\.1 MB, limit 64 MB"):
        parse_digest(b" " * (MAX_BYTES + 1), source="big.json")


def test_too_large_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as f:
        f.truncate(100 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(ParseError, match=r"huge\.json: digest too large: 100\.0 MB, limit 64 MB"):
        parse_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.json: no such file"):
        parse_file(tmp_path / "nope.json")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        parse_file(tmp_path)


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("[]")
    with pytest.raises(InputError, match=r"plain/x\.json: cannot read: Not a directory"):
        parse_file(tmp_path / "plain" / "x.json")


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[{"title": "no paper"}]')
    with pytest.raises(ParseError, match=rf"^{path}: no paper could be read"):
        parse_file(path)


# --- dates and days ------------------------------------------------------------------


def test_year_rollover_of_the_page_date_itself() -> None:
    """Copied on Jan 1: the page says Dec 31, which is last year's, and so are its cards."""
    data = (
        "Daily Papers\nDec 31\n"
        "Posted Before the Page\nAbstract.\n• 2 authors\n·\nDec 30\n"
        "Dated After the Page\nAbstract.\n• 2 authors\n·\nJan 1\n"
    ).encode()
    digest = parse_digest(data, as_of=date(2026, 1, 1))
    assert [p.published for p in digest.papers] == [
        datetime(2025, 12, 30, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
    ]


def test_without_a_page_date_line_as_of_is_the_page_date() -> None:
    data = "A Title\nAn abstract.\n• 3 authors\n·\nDec 30\n".encode()
    digest = parse_digest(data, as_of=date(2026, 1, 2))
    assert digest.papers[0].published == datetime(2025, 12, 30, tzinfo=UTC)


def test_as_of_defaults_to_the_file_modification_date(tmp_path: Path) -> None:
    path = tmp_path / "copy.txt"
    path.write_text("A Title\nAn abstract.\n• 3 authors\n·\nDec 30\n", encoding="utf-8")
    modified = datetime(2026, 1, 2, 12, tzinfo=UTC).timestamp()
    os.utime(path, (modified, modified))
    assert parse_file(path).papers[0].published == datetime(2025, 12, 30, tzinfo=UTC)


def test_html_day_comes_from_the_page_unless_given() -> None:
    page = CORPUS / "html-page.html"
    assert parse_file(page).day == date(2026, 3, 6)
    given_day = parse_file(page, day=date(2026, 3, 9))
    assert given_day.day == date(2026, 3, 9)
    # An entry's own submittedOnDailyAt still wins over the given day.
    assert [p.featured for p in given_day.papers] == [date(2026, 3, 6), date(2026, 3, 9)]


def test_week_page_gives_no_day() -> None:
    props = {"dailyPapers": [], "dateString": "2026-03-02", "periodType": "week"}
    attribute = html.escape(json.dumps(props), quote=True)
    page = f'<html><div data-target="DailyPapers" data-props="{attribute}"></div></html>'
    assert parse_digest(page.encode()).day is None


def test_top_level_published_at_is_never_the_arxiv_date() -> None:
    entry = {
        "paper": {"id": "2603.00001", "title": "T", "publishedAt": "2026-03-05T01:00:00Z"},
        "publishedAt": "2026-03-04T20:00:00Z",
    }
    paper = parse_digest(json.dumps([entry]).encode()).papers[0]
    assert paper.published == datetime(2026, 3, 5, 1, tzinfo=UTC)


# --- limits --------------------------------------------------------------------------


def test_long_abstract_is_truncated_with_a_warning() -> None:
    entry = {"paper": {"id": "2603.00001", "title": "T", "summary": "word " * 30_000}}
    digest = parse_digest(json.dumps([entry]).encode())
    assert len(digest.papers[0].abstract) <= MAX_ABSTRACT
    assert [str(w) for w in digest.warnings] == [
        f"entry 0: abstract truncated to {MAX_ABSTRACT} characters"
    ]


def test_author_list_is_capped_but_counted() -> None:
    authors = [{"name": f"Author {i}"} for i in range(MAX_AUTHORS + 500)]
    entry = {"paper": {"id": "2603.00001", "title": "T", "authors": authors}}
    digest = parse_digest(json.dumps([entry]).encode())
    paper = digest.papers[0]
    assert len(paper.authors) == MAX_AUTHORS
    assert paper.author_count == MAX_AUTHORS + 500
    assert [str(w) for w in digest.warnings] == [
        f"entry 0: {MAX_AUTHORS + 500} authors; kept the first {MAX_AUTHORS} names"
    ]


# --- properties ----------------------------------------------------------------------

FORMATS = ["auto", "hf-json", "hf-html", "text"]
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def parses_or_refuses(data: bytes, format: str = "auto") -> Digest | None:
    """Parse; a FeedsyncError is an acceptable answer, anything else fails the test."""
    try:
        digest = parse_digest(data, format=format, as_of=date(2026, 3, 6), source="<fuzz>")
    except FeedsyncError:
        return None
    assert_well_formed(digest)
    return digest


@PROPERTY_SETTINGS
@given(data=st.binary(max_size=2000), format=st.sampled_from(FORMATS))
def test_any_bytes(data: bytes, format: str) -> None:
    parses_or_refuses(data, format)


@PROPERTY_SETTINGS
@given(text=st.text(max_size=2000), format=st.sampled_from(FORMATS))
def test_any_text(text: str, format: str) -> None:
    parses_or_refuses(text.encode("utf-8", "surrogatepass"), format)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)


@PROPERTY_SETTINGS
@given(value=JSON_VALUES)
def test_any_json(value: Any) -> None:
    parses_or_refuses(json.dumps(value).encode())
    parses_or_refuses(json.dumps({"dailyPapers": [value]}).encode())


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right-ish value, sometimes any JSON value in its place."""
    return st.one_of(strategy, strategy, strategy, JSON_VALUES)


TIMESTAMPS = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat().replace("+00:00", "Z")),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.isoformat() + "-23:59"
    ),
    st.dates().map(date.isoformat),
    st.text(max_size=30),
)
IDS = st.one_of(
    st.from_regex(r"\A[0-9]{4}\.[0-9]{1,6}(v[0-9])?\Z"),
    st.floats(min_value=0, max_value=9999.99999),
    st.decimals(min_value=0, max_value=10_000, places=5).map(float),
    st.sampled_from(["cs/0501001", "arXiv:2503.01234", "2513.01234", " ", "", "1e400"]),
)
NAMES = st.text(max_size=20)
ORGS = st.fixed_dictionaries({}, optional={"name": _maybe(NAMES), "fullname": _maybe(NAMES)})
PAPERS = st.fixed_dictionaries(
    {"id": _maybe(IDS), "title": _maybe(st.text(max_size=60))},
    optional={
        "summary": _maybe(st.text(max_size=200)),
        "authors": _maybe(
            st.lists(
                st.one_of(
                    st.fixed_dictionaries(
                        {"name": _maybe(NAMES)}, optional={"hidden": st.booleans()}
                    ),
                    NAMES,
                ),
                max_size=5,
            )
        ),
        "publishedAt": _maybe(TIMESTAMPS),
        "submittedOnDailyAt": _maybe(TIMESTAMPS),
        "upvotes": _maybe(st.integers(min_value=-5, max_value=2**64)),
        "ai_summary": _maybe(st.text(max_size=40)),
        "ai_keywords": _maybe(st.lists(st.text(max_size=10), max_size=4)),
        "githubRepo": _maybe(st.sampled_from(["https://github.com/a/b", "javascript:x", ""])),
        "projectPage": _maybe(st.text(max_size=20)),
        "organization": _maybe(ORGS),
    },
)
ENTRIES = st.fixed_dictionaries(
    {"paper": _maybe(PAPERS)},
    optional={
        "title": _maybe(st.text(max_size=60)),
        "summary": _maybe(st.text(max_size=100)),
        "publishedAt": _maybe(TIMESTAMPS),
        "numComments": _maybe(st.integers(min_value=-5, max_value=2**64)),
        "organization": _maybe(ORGS),
    },
)


@PROPERTY_SETTINGS
@given(entries=st.lists(ENTRIES, max_size=4), day=st.none() | st.dates())
def test_fuzzed_entries(entries: list[Any], day: date | None) -> None:
    data = json.dumps(entries).encode()
    try:
        digest = parse_digest(data, day=day)
    except ParseError:
        # Only a list in which every entry was skipped may be refused.
        assert entries
        return
    assert_well_formed(digest)
    # Every entry is either a paper or a warning saying why it was skipped.
    assert len(digest.papers) + len(digest.warnings) >= len(entries)


CARD_LINES = st.sampled_from(
    [
        "Daily Papers",
        "by AK and the research community",
        "42",
        "-",
        "0",
        "·",
        "• 3 authors",
        "- 12 authors",
        "Mar 4",
        "Feb 29",
        "Dec 31 7",
        "Oct 17, 2024 11",
        "Jan 1, 0000",
        "Example Lab",
        "acme-lab Acme Lab",
        "A Title About Things",
        "An abstract that goes on for a while.",
        "",
        "  ",
    ]
)


@PROPERTY_SETTINGS
@given(
    lines=st.lists(CARD_LINES | st.text(max_size=30), max_size=30),
    as_of=st.dates(),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_fuzzed_text_copies(lines: list[str], as_of: date, newline: str) -> None:
    data = newline.join(lines).encode("utf-8", "surrogatepass")
    try:
        digest = parse_digest(data, format="text", as_of=as_of)
    except FeedsyncError:
        return
    assert_well_formed(digest)
    for paper in digest.papers:
        # A date without a year is never after the page, nor the page after as_of; the
        # only dates with a year in CARD_LINES are in 2024.
        if paper.published is not None:
            assert paper.published.date() <= as_of or paper.published.year == 2024
