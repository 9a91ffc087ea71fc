"""Read a plain-text copy of the papers page (select all, copy, paste into a file).

Blank lines carry no meaning and are dropped; line numbers in warnings are the file's
(1-based). The header (``new``, ``Subscribe``, ``Daily Papers``, ``by AK and the research
community``, the Daily/Weekly/Monthly switch, ...) is skipped up to the page-date line
(``Nov 4``), which a search page may precede with its query echo. Then come cards:

1. an optional upvote count (``42``; ``-`` is 0), which always starts a new card;
2. the title, then the abstract (absent or short at times);
3. the byline: ``• N authors`` (``- N authors`` in Markdown copies), an organization's
   name, or nothing;
4. a line with only ``·``; it is shown only with a byline, so when the byline is not an
   author count, the text line just before ``·`` is the organization;
5. the date line, ``May 22`` or ``May 26, 2023``, maybe followed by the comment count.
   It ends the card; a number on the next line is the next card's upvote count.

The card date is the **arXiv date** (``published``), not the featured day: the featured
day is only the caller's ``day``. A date without a year takes the page date's year, and
one that would fall after the page date is from the year before. The page date has no
year either: it takes the year of ``as_of`` (the capture date) by the same rule.

Without an upvote or date line between them, cards run together; their text lines are
then read in pairs (title, abstract), with a warning, since the split is a guess.
Text cards have no arXiv id, so they are keyed by title. The trending page's cards
(``Submitted by``, ``Upvote``, each shown twice) are another form, not read here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from feedsync.errors import ParseError
from feedsync.models import Digest, Paper, ParseWarning
from feedsync.parsers.hf_json import cap_abstract, clean
from feedsync.text import normalize_title, title_key

FORMAT = "text"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_NEWLINE = re.compile(r"\r\n|\r|\n")
# Digits are bounded: a 5,000-digit "count" is not one, and int() would refuse it.
_COUNT = re.compile(r"^(?:[0-9]{1,9}|-)$")
_DOT = "·"
_AUTHORS = re.compile(r"^[•*-] ?([0-9]{1,9}) authors?$")
_DATE = re.compile(
    rf"^({'|'.join(_MONTHS)}) ([0-9]{{1,2}})(?:, ([0-9]{{4}}))?(?: ([0-9]{{1,9}}))?$"
)
_HEADER = re.compile(
    r"^(?:new|Subscribe|Daily Papers|by ?AK and the research community|Daily|Weekly|Monthly"
    r"|Trending Papers|Get trending papers in your email inbox.*)$"
)
# An organization's name is short; a longer line before "·" is an abstract after all.
_MAX_ORG = 200


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    text: str


@dataclass(slots=True)
class _Card:
    """What has been read of the current card (or of several run together)."""

    upvotes: int | None = None
    upvote_line: int = 0
    texts: list[_Line] = field(default_factory=list)
    author_count: int | None = None
    dot: bool = False
    published: date | None = None
    comments: int | None = None


def parse(text: str, *, as_of: date, day: date | None, source: str) -> Digest:
    lines = _lines(text)
    start, page_line, header_seen = _split_header(lines)
    warnings: list[ParseWarning] = []
    page_date = _page_date(page_line, as_of, warnings)
    reader = _Reader(page_date, day, warnings)
    for line in lines[start:]:
        reader.feed(line)
    reader.finish()
    if not (header_seen or page_line or reader.anchored):
        raise ParseError(
            "not a copy of the papers page: no header and no byline, '·' or date line", source
        )
    return Digest(papers=tuple(reader.papers), warnings=tuple(warnings), format=FORMAT, day=day)


def _lines(text: str) -> list[_Line]:
    """Non-blank lines, cleaned, with their 1-based numbers.

    Only CR/LF end a line: ``str.splitlines`` would also split on form feeds and U+2028,
    and the numbers would no longer match the reader's editor.
    """
    cleaned = (_Line(n, clean(raw)) for n, raw in enumerate(_NEWLINE.split(text), start=1))
    return [line for line in cleaned if line.text]


def _split_header(lines: list[_Line]) -> tuple[int, _Line | None, bool]:
    """Where the cards start, the page-date line, and whether a header was seen."""
    i = 0
    while i < len(lines) and _HEADER.match(lines[i].text):
        i += 1
    header_seen = i > 0
    # The page date ends the header; on a search page the query echo comes before it.
    for echo in (0, 1) if header_seen else (0,):
        candidate = lines[i + echo] if i + echo < len(lines) else None
        if candidate and _is_page_date(candidate.text) and not _is_anchor(lines[i].text):
            return i + echo + 1, candidate, header_seen
    return i, None, header_seen


def _is_page_date(text: str) -> bool:
    match = _DATE.match(text)
    return match is not None and match[4] is None  # a trailing count makes it a card's


def _is_anchor(text: str) -> bool:
    return bool(_COUNT.match(text) or text == _DOT or _AUTHORS.match(text))


def _page_date(line: _Line | None, as_of: date, warnings: list[ParseWarning]) -> date:
    if line is None:
        return as_of
    match = _DATE.match(line.text)
    assert match is not None  # _split_header only returns date lines
    return _resolve(match, as_of, line, warnings) or as_of


def _resolve(
    match: re.Match[str], reference: date, line: _Line, warnings: list[ParseWarning]
) -> date | None:
    """The date of a date line; without a year, the latest one not after ``reference``."""
    month, day = _MONTHS.index(match[1]) + 1, int(match[2])
    years = [int(match[3])] if match[3] else [reference.year, reference.year - 1]
    for year in years:
        try:
            resolved = date(year, month, day)
        except ValueError:
            continue
        if match[3] or resolved <= reference:
            return resolved
    warnings.append(ParseWarning(f"line {line.number}", f"no such date: {match[0]!r}"))
    return None


class _Reader:
    """The card state machine: feed it the lines after the header, then ``finish``."""

    def __init__(self, page_date: date, day: date | None, warnings: list[ParseWarning]) -> None:
        self.page_date = page_date
        self.day = day
        self.warnings = warnings
        self.papers: list[Paper] = []
        self.card = _Card()
        # Whether any byline, "·" or date line belonged to a card: plain prose has none.
        self.anchored = False

    def feed(self, line: _Line) -> None:
        text = line.text
        if _COUNT.match(text):
            self._count(line)
        elif text == _DOT:
            self._dot(line)
        elif match := _AUTHORS.match(text):
            self._byline(line, int(match[1]))
        elif match := _DATE.match(text):
            self._date(line, match)
        else:
            self._text(line)

    def finish(self) -> None:
        self._flush()

    def _warn(self, line: int, message: str) -> None:
        self.warnings.append(ParseWarning(f"line {line}", message))

    def _count(self, line: _Line) -> None:
        self._flush()  # an upvote count always starts a new card
        self.card.upvotes = 0 if line.text == "-" else int(line.text)
        self.card.upvote_line = line.number

    def _text(self, line: _Line) -> None:
        if self.card.dot or self.card.author_count is not None:
            self._flush()  # the byline was the last line of a card without a date line
        self.card.texts.append(line)

    def _byline(self, line: _Line, count: int) -> None:
        if not self.card.texts or self.card.dot or self.card.author_count is not None:
            self._warn(line.number, f"stray author count {line.text!r}")
            return
        self.card.author_count = count
        self.anchored = True

    def _dot(self, line: _Line) -> None:
        if not self.card.texts or self.card.dot:
            self._warn(line.number, "stray '·'")
            return
        self.card.dot = True
        self.anchored = True

    def _date(self, line: _Line, match: re.Match[str]) -> None:
        if not self.card.texts:
            self._warn(line.number, f"stray date {line.text!r}")
            return
        self.card.published = _resolve(match, self.page_date, line, self.warnings)
        self.card.comments = int(match[4]) if match[4] else 0
        self.anchored = True
        self._flush()

    def _flush(self) -> None:
        """Turn the card read so far into papers and start a new one."""
        card, self.card = self.card, _Card()
        if not card.texts:
            if card.upvotes is not None:
                self._warn(card.upvote_line, "upvote count with no paper after it")
            return
        texts = list(card.texts)
        organization = None
        is_byline = card.dot and card.author_count is None and len(texts) >= 2
        if is_byline and len(texts[-1].text) <= _MAX_ORG:
            organization = _organization(texts.pop().text)
        groups = [texts[i : i + 2] for i in range(0, len(texts), 2)]
        if len(groups) > 1:
            self._warn(
                texts[0].number,
                f"{len(texts)} text lines with no upvote or date line between them "
                f"(lines {texts[0].number}-{texts[-1].number}); read as {len(groups)} "
                "papers of a title and an abstract each",
            )
        for i, group in enumerate(groups):
            # The upvote count precedes the first card; byline and date follow the last.
            first, last = i == 0, i == len(groups) - 1
            self.papers.append(
                self._paper(
                    group,
                    upvotes=card.upvotes if first else None,
                    author_count=card.author_count if last else None,
                    organization=organization if last else None,
                    published=card.published if last else None,
                    comments=card.comments if last else None,
                )
            )

    def _paper(
        self,
        group: list[_Line],
        *,
        upvotes: int | None,
        author_count: int | None,
        organization: str | None,
        published: date | None,
        comments: int | None,
    ) -> Paper:
        title = group[0].text
        abstract = ""
        if len(group) > 1:
            abstract = cap_abstract(group[1].text, f"line {group[1].number}", self.warnings)
        return Paper(
            key=title_key(title),
            title=title,
            abstract=abstract,
            author_count=author_count,
            organization=organization,
            published=datetime.combine(published, time(), UTC) if published else None,
            featured=self.day,
            upvotes=upvotes,
            comments=comments,
        )


def _organization(byline: str) -> str:
    """The organization's name from its byline.

    Copies repeat the name: the avatar's alt text (the org's handle), then its full
    name, as in ``acme-lab Acme Lab``; keep the full name when the halves agree.
    """
    words = byline.split(" ")
    for k in range(1, len(words)):
        handle, fullname = " ".join(words[:k]), " ".join(words[k:])
        if normalize_title(handle) and normalize_title(handle) == normalize_title(fullname):
            return fullname
    return byline
