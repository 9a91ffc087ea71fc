"""Turn a digest (API response, saved papers page, or plain-text copy) into a ``Digest``.

One module per input form (``hf_json``, ``hf_html``, ``text``); this one sniffs the form,
decodes, dispatches, and owns the rules that hold for every form:

- inputs over 64 MB are refused before anything is decoded, and inputs with more JSON
  values, JSON objects and arrays, or lines than a digest ever holds before they are
  parsed (see ``_check_shape``), so that memory stays bounded whatever the input;
- input must be UTF-8 (a BOM is tolerated). Invalid bytes are a ParseError naming the
  offset, for text copies too: replacing them would quietly corrupt titles, and a file
  that is not UTF-8 is best re-saved, not guessed at;
- a digest in which nothing parses is a ParseError naming the source and why: zero papers
  with warnings (every entry was skipped), or an input that is not recognisably a digest
  (each parser raises that itself). Zero papers and no warnings is a normal empty day:
  ``[]`` from the API, or a page whose DailyPapers list is empty.

Only feedsync's own errors leave this package; anything else escaping is a bug.
"""

from __future__ import annotations

import math
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path

from feedsync.errors import InputError, ParseError
from feedsync.models import Digest
from feedsync.parsers import hf_json
from feedsync.parsers import text as text_parser

__all__ = ["FORMATS", "MAX_BYTES", "detect_format", "parse_digest", "parse_file"]

FORMATS = ("hf-json", "hf-html", "text")
MAX_BYTES = 64 * 1024 * 1024
# Bytes alone do not bound memory: 50 MB of "0," is 26 million JSON values and 50 MB of
# "·" lines 17 million lines, each a Python object (and a warning) many times its size.
# Real digests stay far below these: 64 MB of real entries is ~1 million values and
# ~150,000 objects; a copied page is a few hundred lines.
MAX_JSON_VALUES = 2_000_000  # counted as commas: cheap, and never fewer than the values
MAX_JSON_CONTAINERS = 500_000  # counted as "{" and "["
MAX_LINES = 200_000
_MB = 1024 * 1024
_BOM = b"\xef\xbb\xbf"
_HTML_START = re.compile(rb"<(?:!doctype\s+html|html)[\s>]", re.IGNORECASE)


def detect_format(data: bytes) -> str:
    """ "hf-json", "hf-html" or "text", from the first characters (after a BOM and spaces).

    ``[`` or ``{`` is JSON; ``<`` is a page if it is HTML or holds the DailyPapers element;
    anything else, an unrecognised ``<`` document included, is read as a text copy.
    """
    head = data.removeprefix(_BOM).lstrip()
    if head[:1] in (b"[", b"{"):
        return "hf-json"
    if head[:1] == b"<" and (_HTML_START.search(head[:4096]) or b"DailyPapers" in head):
        return "hf-html"
    return "text"


def parse_digest(
    data: bytes,
    *,
    format: str = "auto",
    as_of: date | None = None,
    day: date | None = None,
    source: str = "<input>",
) -> Digest:
    """Parse one digest held in memory.

    ``format`` is "auto" or one of FORMATS. ``day`` is the featured day when the caller
    knows it (it queried ``?date=D``); a JSON entry's own ``submittedOnDailyAt`` wins.
    ``as_of`` is the capture date of a text copy, which gives its dates their year
    (default: today, UTC). ``source`` names the input in errors.
    """
    _check_size(len(data), source)
    fmt = detect_format(data) if format == "auto" else _known_format(format)
    text = _decode(data, source)
    _check_shape(text, fmt, source)
    if fmt == "hf-json":
        digest = hf_json.parse(text, day=day, source=source)
    elif fmt == "hf-html":
        from feedsync.parsers import hf_html  # lxml: only for HTML input

        digest = hf_html.parse(text, day=day, source=source)
    else:
        as_of = as_of or datetime.now(UTC).date()
        digest = text_parser.parse(text, as_of=as_of, day=day, source=source)
    if not digest.papers and digest.warnings:
        raise ParseError(
            f"no paper could be read ({len(digest.warnings)} warnings; "
            f"first: {digest.warnings[0]})",
            source,
        )
    return digest


def parse_file(
    path: Path, *, format: str = "auto", as_of: date | None = None, day: date | None = None
) -> Digest:
    """Parse a digest file; a text copy's dates default to the file's modification year.

    A missing, unreadable or oversized file is an InputError or ParseError naming it.
    """
    data, modified = _read(path)
    return parse_digest(data, format=format, as_of=as_of or modified, day=day, source=str(path))


def _read(path: Path) -> tuple[bytes, date]:
    """The file's bytes (at most MAX_BYTES + 1 of them) and its modification date (UTC)."""
    try:
        with path.open("rb") as f:
            stat = os.fstat(f.fileno())
            _check_size(stat.st_size, str(path))
            # Read one byte past the limit: a file that grew after fstat is still caught.
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a digest file") from None
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        raise InputError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from e
    return data, datetime.fromtimestamp(stat.st_mtime, UTC).date()


def _check_size(size: int, source: str) -> None:
    if size > MAX_BYTES:
        shown = math.ceil(size * 10 / _MB) / 10  # rounded up: 64 MB + 1 byte is not "64.0"
        raise ParseError(f"digest too large: {shown} MB, limit {MAX_BYTES // _MB} MB", source)


def _check_shape(text: str, fmt: str, source: str) -> None:
    """Refuse a digest with more values or lines than any real one, before parsing it.

    The counts are upper bounds (a comma or brace inside a string counts too); they need
    only be cheap and never undercount.
    """
    if fmt == "text":
        # CRLF counts once this way; a mix of endings is undercounted at most by half.
        lines = max(text.count("\n"), text.count("\r")) + 1
        found = [(lines, MAX_LINES, "lines")]
    else:
        found = [
            (text.count(",") + 1, MAX_JSON_VALUES, "JSON values"),
            (text.count("{") + text.count("["), MAX_JSON_CONTAINERS, "JSON objects and arrays"),
        ]
    for count, limit, what in found:
        if count > limit:
            raise ParseError(f"digest too large: {count:,} {what}, limit {limit:,}", source)


def _known_format(format: str) -> str:
    if format not in FORMATS:
        raise InputError(f"unknown format {format!r}; expected auto, {', '.join(FORMATS)}")
    return format


def _decode(data: bytes, source: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ParseError("the input is UTF-16; save it as UTF-8", source)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ParseError(
            f"not UTF-8: invalid byte 0x{data[e.start]:02x} at offset {e.start}", source
        ) from None
