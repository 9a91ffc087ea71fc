"""Read a saved Hugging Face papers page (``/papers/date/YYYY-MM-DD``).

The page carries its list as HTML-escaped JSON in the ``data-props`` attribute of the
element with ``data-target="DailyPapers"``; its ``dailyPapers`` entries have the API
shape, so each is read by ``hf_json.parse_entry``. The card markup (Tailwind classes,
DOM layout) is never read: scrapers that did broke whenever the layout changed.

Rule order: find the element with an HTML parser (which also unescapes the attribute),
``json.loads`` the attribute, take ``dailyPapers``; the featured day is the caller's
``day``, else the page's ``dateString`` (daily pages only).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import lxml.etree  # type: ignore[import-untyped, unused-ignore]  # lxml ships no stubs
import lxml.html  # type: ignore[import-untyped, unused-ignore]

from feedsync.errors import ParseError
from feedsync.models import Digest
from feedsync.parsers import hf_json

FORMAT = "hf-html"
_TARGET = "DailyPapers"


def parse(text: str, *, day: date | None, source: str) -> Digest:
    props = hf_json.load_json(_data_props(text, source), "the DailyPapers data-props", source)
    if not isinstance(props, Mapping) or not isinstance(props.get("dailyPapers"), list):
        raise ParseError("the DailyPapers data-props has no dailyPapers list", source)
    entries: list[Any] = props["dailyPapers"]
    return hf_json.parse_entries(
        entries, day=day or hf_json.props_day(props), fmt=FORMAT, source=source
    )


def _data_props(text: str, source: str) -> str:
    """The unescaped ``data-props`` of the first DailyPapers element."""
    # Bytes and an explicit encoding: lxml refuses a str that starts with an XML
    # declaration naming an encoding, and the input was already checked to be UTF-8.
    # huge_tree lifts libxml2's 10 MB limit on one attribute (a month page can be large);
    # the 64 MB cap on the whole input still bounds it.
    parser = lxml.html.HTMLParser(encoding="utf-8", huge_tree=True)
    try:
        root = lxml.html.document_fromstring(text.encode("utf-8"), parser=parser)
    except (lxml.etree.LxmlError, ValueError) as e:
        raise ParseError(f"not a readable HTML page: {e}", source) from e
    for props in root.xpath("//*[@data-target=$target]/@data-props", target=_TARGET):
        if props.strip():
            return str(props)
    raise ParseError(
        f'no element with data-target="{_TARGET}" and data-props: not a papers page '
        "(or HF changed its layout)",
        source,
    )
