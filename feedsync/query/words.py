"""Words: how text becomes the tokens queries match (the full-text table's own rule)."""

from __future__ import annotations

import re
import unicodedata

from feedsync.text import SEPARATOR as SEPARATOR  # a gap between two values: see text.py

FIELDS = ("title", "abstract", "keyword", "author", "org")
DEFAULT_FIELDS = ("title", "abstract", "keyword")
UPVOTE_OPS = (">=", "<=", ">", "<", "=")


# ---------------------------------------------------------------------------- tokenizing

# `[^\W_]` is exactly categories L* and N* (Python's \w is str.isalnum() plus "_"; a test
# checks every code point). Co is added by hand, minus SEPARATOR, the first code point of
# the BMP private-use block. Runs inside the group keep it from looping once per character.
_WORD = re.compile(r"(?:[^\W_]+|[\ue001-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]+)+")
# ASCII text (most abstracts) is already NFKC, and in it "not a letter or digit" is a short
# list: one bytes.translate() that lower-cases and turns those into spaces, then split(),
# is ~5x faster than the regex. In UTF-8 the ASCII bytes only ever stand for themselves,
# so other text gets the same treatment after NFKC and lower().
_ASCII_FOLD = bytes(
    32 if not chr(c).isalnum() else c + 32 if chr(c).isupper() else c for c in range(128)
) + bytes(range(128, 256))


def tokenize(text: str) -> list[str]:
    """The words of ``text``: NFKC, lower case, maximal runs of letters and digits.

    ``tokenize("RL-based (GPT-4)")`` is ``["rl", "based", "gpt", "4"]``; "GPT4" is one word.
    """
    if text.isascii():
        return text.encode().translate(_ASCII_FOLD).decode().split()
    folded = unicodedata.normalize("NFKC", text).lower().encode(errors="surrogatepass")
    chunks = folded.translate(_ASCII_FOLD).decode(errors="surrogatepass").split()
    # A chunk of letters and digits only (isalnum is exactly "all L* or N*") is one word;
    # the rest, holding non-ASCII punctuation or private-use characters, takes the regex.
    if all(map(str.isalnum, chunks)):
        return chunks
    words: list[str] = []
    for chunk in chunks:
        if chunk.isalnum():
            words.append(chunk)
        else:
            words.extend(_WORD.findall(chunk))
    return words


def is_word_char(char: str) -> bool:
    """Whether ``char`` is part of a word (a letter, a digit or a private-use character)."""
    return bool(tokenize(char))
