"""The small string helpers shared by parsers, store and renderers."""

from __future__ import annotations

import re
import sys

from feedsync.text import collapse, xml_safe


def test_collapse_agrees_with_the_regex_definition_of_whitespace() -> None:
    ws = re.compile(r"\s+")
    for code in range(sys.maxunicode + 1):
        text = f" a{chr(code)}{chr(code)}b\n"
        assert collapse(text) == ws.sub(" ", text).strip(), hex(code)


def test_xml_safe_drops_exactly_what_xml_1_0_forbids() -> None:
    # The Char production of XML 1.0: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
    # [#x10000-#x10FFFF]. Every code point is either kept as is or dropped.
    def allowed(c: int) -> bool:
        return c in (0x9, 0xA, 0xD) or 0x20 <= c <= 0xD7FF or 0xE000 <= c <= 0xFFFD or c >= 0x10000

    wrong = [c for c in range(sys.maxunicode + 1) if (xml_safe(chr(c)) == chr(c)) != allowed(c)]
    assert wrong == []
