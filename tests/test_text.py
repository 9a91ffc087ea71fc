"""The small string helpers shared by parsers, store and renderers."""

from __future__ import annotations

import re
import sys

from feedsync.text import collapse


def test_collapse_agrees_with_the_regex_definition_of_whitespace() -> None:
    ws = re.compile(r"\s+")
    for code in range(sys.maxunicode + 1):
        text = f" a{chr(code)}{chr(code)}b\n"
        assert collapse(text) == ws.sub(" ", text).strip(), hex(code)
