"""Read the ``/api/daily_papers`` payload: a bare JSON array of entries, each with a ``paper``.

Rule order for one entry (see docs: shared reference, section 1):

1. The entry must be an object with a ``paper`` object (or be a bare paper object, as
   ``/api/papers/{id}`` returns), and ``paper.id`` must be present; otherwise the entry is
   skipped with a warning ``entry N``, where N is the 0-based index in the array (as
   ``jq '.[N]'`` counts).
2. Title: top-level ``title``, else ``paper.title``; abstract: ``paper.summary``, else
   ``summary``. Both have every whitespace run collapsed (arXiv hard-wraps them) and
   characters XML cannot carry removed. No title: the entry is skipped.
3. arXiv date (``published``) from ``paper.publishedAt``; featured day from
   ``paper.submittedOnDailyAt``, else the day the caller queried. The top-level
   ``publishedAt`` is never read: its meaning changed between 2024 and 2026.
4. Upvotes from ``paper.upvotes`` only (the top level has none); comments from the
   top-level ``numComments``.
5. Every other field is optional and a value of the wrong type is treated as absent.

Helpers shared with the text parser (``clean``, ``cap_abstract``) live here too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from feedsync.errors import ParseError
from feedsync.models import Digest, Paper, ParseWarning
from feedsync.text import collapse, is_arxiv_id, title_key, xml_safe

FORMAT = "hf-json"
MAX_ABSTRACT = 100_000
MAX_AUTHORS = 2_000
# A month page holds about 3,000 entries; tens of thousands of tiny ones are an attack on
# memory, not a digest.
MAX_ENTRIES = 50_000
# No field keeps more than MAX_ABSTRACT characters, so cleaning looks at no more than this
# many: collapsing whitespace builds one object per run, and a 50 MB field of words would
# cost gigabytes.
_MAX_RAW = 4 * MAX_ABSTRACT
# Larger counts are not real (HF has fewer users than this) and would overflow SQLite.
_MAX_COUNT = 2**53 - 1
# A new-style id, YYMM.NNNNN; the number may have lost trailing zeros (see _arxiv_id).
_NEW_ID = re.compile(r"^(\d{2})(\d{2})\.(\d{1,5})$", re.ASCII)
_VERSION = re.compile(r"v\d+$", re.ASCII)


def clean(value: object) -> str:
    """A display string: XML-unsafe characters dropped, then whitespace runs collapsed.

    Collapsing comes last so that a dropped NUL between two spaces cannot leave a run.
    Anything but a string is treated as absent (""); only the first ``_MAX_RAW``
    characters of a longer one are read.
    """
    return collapse(xml_safe(value[:_MAX_RAW])) if isinstance(value, str) else ""


def cap_abstract(abstract: str, where: str, warnings: list[ParseWarning]) -> str:
    if len(abstract) <= MAX_ABSTRACT:
        return abstract
    warnings.append(ParseWarning(where, f"abstract truncated to {MAX_ABSTRACT} characters"))
    return abstract[:MAX_ABSTRACT].rstrip()


def load_json(text: str, what: str, source: str) -> Any:
    """``json.loads`` that keeps numbers with a fraction exact and fails only with ParseError.

    Fractions become ``Decimal`` so that an id sent as a number (2503.02130) keeps its
    digits. Deep nesting (RecursionError), huge integers and NaN all end as ParseError.
    """
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError:
        raise ParseError(f"{what} is nested too deeply", source) from None
    except ValueError as e:  # JSONDecodeError is a ValueError
        raise ParseError(f"{what} is not valid JSON: {e}", source) from e


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def parse(text: str, *, day: date | None, source: str) -> Digest:
    """Parse an API response (or a saved ``data-props`` object) into a Digest."""
    value = load_json(text, "the digest", source)
    if isinstance(value, Mapping):
        value, day = _unwrap(value, day, source)
    if not isinstance(value, list):
        got = _json_type(value)
        raise ParseError(f"expected a JSON array of daily papers, got {got}", source)
    return parse_entries(value, day=day, fmt=FORMAT, source=source)


def _unwrap(obj: Mapping[str, Any], day: date | None, source: str) -> tuple[Any, date | None]:
    """The entries inside the object forms the reference describes, as a list."""
    if isinstance(obj.get("dailyPapers"), list):  # a page's data-props, saved as JSON
        return obj["dailyPapers"], day or props_day(obj)
    if "paper" in obj or "id" in obj:  # one entry, or one paper from /api/papers/{id}
        return [obj], day
    raise ParseError("expected a JSON array of daily papers, got an object", source)


def props_day(props: Mapping[str, Any]) -> date | None:
    """The day a daily page's ``data-props`` is for (``dateString``), if it says so.

    Week and month pages (``periodType``) span many days, so they give none.
    """
    if props.get("periodType", "day") != "day":
        return None
    value = props.get("dateString")
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_entries(
    entries: list[Any], *, day: date | None, fmt: str, source: str = "<input>"
) -> Digest:
    if len(entries) > MAX_ENTRIES:
        raise ParseError(
            f"digest too large: {len(entries):,} entries, limit {MAX_ENTRIES:,}", source
        )
    papers: list[Paper] = []
    warnings: list[ParseWarning] = []
    for index, entry in enumerate(entries):
        paper = parse_entry(entry, index, day=day, warnings=warnings)
        if paper is not None:
            papers.append(paper)
    return Digest(papers=tuple(papers), warnings=tuple(warnings), format=fmt, day=day)


def parse_entry(
    entry: object, index: int, *, day: date | None, warnings: list[ParseWarning]
) -> Paper | None:
    """One element of the array as a Paper, or None (and a warning) when it is unusable.

    ``index`` is 0-based; warnings about this entry are appended to ``warnings``.
    """
    where = f"entry {index}"
    if not isinstance(entry, Mapping):
        warnings.append(ParseWarning(where, f"not an object but {_json_type(entry)}"))
        return None
    paper = _paper_of(entry)
    if paper is None:
        warnings.append(ParseWarning(where, "no paper object"))
        return None
    if not _has_id(paper.get("id")):
        warnings.append(ParseWarning(where, "no paper.id"))
        return None
    title = clean(entry.get("title")) or clean(paper.get("title"))
    if not title:
        warnings.append(ParseWarning(where, "no title"))
        return None
    arxiv_id = _arxiv_id(paper["id"], where, warnings)
    abstract = clean(paper.get("summary")) or clean(entry.get("summary"))
    authors, author_count = _authors(paper.get("authors"), where, warnings)
    submitted = _timestamp(paper, "submittedOnDailyAt", where, warnings)
    return Paper(
        key=arxiv_id or title_key(title),
        title=title,
        arxiv_id=arxiv_id,
        abstract=cap_abstract(abstract, where, warnings),
        authors=authors,
        author_count=author_count,
        organization=_organization(entry, paper),
        published=_timestamp(paper, "publishedAt", where, warnings),
        featured=submitted.date() if submitted else day,
        upvotes=_count(paper.get("upvotes")),
        comments=_count(entry.get("numComments")),
        ai_summary=clean(paper.get("ai_summary")) or clean(entry.get("ai_summary")) or None,
        ai_keywords=_keywords(paper.get("ai_keywords")),
        github_repo=_url(paper.get("githubRepo")),
        project_page=_url(paper.get("projectPage")),
    )


def _paper_of(entry: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The nested ``paper``; an entry without that key is itself a paper (/api/papers/{id}).

    Only then are its ``publishedAt`` and ``upvotes`` the paper's own: in a daily entry the
    top-level ``publishedAt`` means something else.
    """
    if "paper" not in entry:
        return entry if "id" in entry else None
    paper = entry["paper"]
    return paper if isinstance(paper, Mapping) else None


def _has_id(value: object) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _arxiv_id(value: object, where: str, warnings: list[ParseWarning]) -> str | None:
    """``paper.id`` as an arXiv id string, repairing the damage a float does to it.

    A JSON number keeps its exact digits (``load_json`` reads it as Decimal), but a
    producer that went through a float already lost trailing zeros: 2503.02130 became
    2503.0213. New-style ids have exactly 5 digits after the dot since 1501 (4 before),
    so the lost zeros can be put back; the warning says that this happened.
    """
    text = _id_text(value)
    match = _NEW_ID.match(text)
    if match is not None and 1 <= int(match[2]) <= 12:
        digits = 5 if int(match[1] + match[2]) >= 1501 else 4
        if len(match[3]) < digits:
            repaired = f"{match[1]}{match[2]}.{match[3].ljust(digits, '0')}"
            warnings.append(
                ParseWarning(where, f"id {text} lost its trailing zeros; read as {repaired}")
            )
            return repaired
        valid = len(match[3]) == digits
    else:
        valid = match is None and is_arxiv_id(text)
    if not valid:
        warnings.append(ParseWarning(where, f"id {text[:40]!r} is not an arXiv id; keyed by title"))
        return None
    if not isinstance(value, str):
        warnings.append(ParseWarning(where, f"id {text} is a JSON number; read as a string"))
    return text


def _id_text(value: object) -> str:
    """The characters of an id: a string without "arXiv:" and version, or a number's digits."""
    if isinstance(value, str):
        return _VERSION.sub("", value.strip().removeprefix("arXiv:"))
    # Only a plausible magnitude is written out in full: 1E+999999999 would be a
    # billion digits.
    if isinstance(value, Decimal) and value.is_finite() and -20 < value.adjusted() < 20:
        return format(value, "f")
    return str(value) if isinstance(value, Decimal) else repr(value)


def _authors(
    value: object, where: str, warnings: list[ParseWarning]
) -> tuple[tuple[str, ...], int | None]:
    """Author names and their true count, which may exceed the names kept.

    Hidden authors are kept: ``hidden`` hides the link to an HF account, not the name on
    the arXiv paper. Entries without a name are not counted, and with no names at all the
    count is unknown (None): no paper has zero authors.
    """
    if not isinstance(value, list):
        return (), None
    names = [name for name in map(_author_name, value) if name]
    if len(names) > MAX_AUTHORS:
        warnings.append(
            ParseWarning(where, f"{len(names)} authors; kept the first {MAX_AUTHORS} names")
        )
    return tuple(names[:MAX_AUTHORS]), len(names) or None


def _author_name(author: object) -> str:
    if isinstance(author, Mapping):
        return clean(author.get("name"))
    return clean(author)  # some dumps flatten authors to plain names


def _organization(entry: Mapping[str, Any], paper: Mapping[str, Any]) -> str | None:
    """The full name before the handle, and the entry's copy before the paper's."""
    orgs = [
        o for o in (entry.get("organization"), paper.get("organization")) if isinstance(o, Mapping)
    ]
    candidates = [o.get(key) for key in ("fullname", "name") for o in orgs]
    return next((name for name in map(clean, candidates) if name), None)


def _timestamp(
    paper: Mapping[str, Any], field: str, where: str, warnings: list[ParseWarning]
) -> datetime | None:
    """An ISO 8601 timestamp as aware UTC; one without an offset is taken as UTC."""
    value = paper.get(field)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
            return parsed.replace(tzinfo=parsed.tzinfo or UTC).astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    shown = repr(value[:40]) if isinstance(value, str) else _json_type(value)
    warnings.append(ParseWarning(where, f"paper.{field} {shown} is not a date; left empty"))
    return None


def _count(value: object) -> int | None:
    """A non-negative integer count; anything else is unknown (None), not zero."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value) if abs(value) <= _MAX_COUNT else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_COUNT:
        return value
    return None


def _keywords(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(word for word in map(clean, value) if word)


def _url(value: object) -> str | None:
    """An http(s) URL, else None: feeds and the index page turn these into links, and a
    ``javascript:`` URL there would run in the reader's browser."""
    url = clean(value)
    return url if url.lower().startswith(("https://", "http://")) and " " not in url else None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
