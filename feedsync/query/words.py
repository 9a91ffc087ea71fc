"""Words: how text becomes the tokens queries match, and the searchable form of a paper."""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from dataclasses import dataclass

from feedsync.models import Paper
from feedsync.text import SEPARATOR as SEPARATOR  # a gap between two values: see text.py

FIELDS = ("title", "abstract", "keyword", "author", "org")
DEFAULT_FIELDS = ("title", "abstract", "keyword")
UPVOTE_OPS = (">=", "<=", ">", "<", "=")  # as Index.upvotes() gets them


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


def _words(text: str) -> tuple[str, ...]:
    """The words of a field value, interned: 50,000 abstracts hold ten million words from a
    vocabulary of tens of thousands, so this saves most of their memory (about 0.6 GB), and
    index lookups then compare identical strings."""
    return tuple(map(sys.intern, tokenize(text)))


# Author names, keywords and organizations repeat across papers: tokenize each once.
_short_words = functools.lru_cache(maxsize=1 << 16)(_words)


def _is_word_char(char: str) -> bool:
    return bool(tokenize(char))


# ---------------------------------------------------------------------------- documents

Values = tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Texts:
    """The raw strings of each field, one per value, as regexes see them."""

    title: tuple[str, ...] = ()
    abstract: tuple[str, ...] = ()
    keyword: tuple[str, ...] = ()
    author: tuple[str, ...] = ()
    org: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Document:
    """The searchable form of a paper: per field, one tuple of words per value.

    ``title``, ``abstract`` and ``org`` have at most one value; ``author`` has one per author
    and ``keyword`` one per HF keyword. Build it with :func:`document`.
    """

    title: Values = ()
    abstract: Values = ()
    keyword: Values = ()
    author: Values = ()
    org: Values = ()
    upvotes: int = 0
    texts: Texts = Texts()

    def fields(self) -> tuple[Values, ...]:
        """The values of each field, in the order of :data:`FIELDS`."""
        return (self.title, self.abstract, self.keyword, self.author, self.org)

    def values(self, field: str) -> Values:
        values: Values = getattr(self, field)
        return values

    def raw(self, field: str) -> tuple[str, ...]:
        raw: tuple[str, ...] = getattr(self.texts, field)
        return raw


def document(paper: Paper) -> Document:
    """Tokenize a paper once, for any number of queries.

    Pure and deterministic (an equal paper gives an equal document), so callers may memoize
    it; ``Paper`` is hashable. Empty values are left out.
    """
    title, abstract, org = paper.title, paper.abstract, paper.organization
    keywords = (
        paper.ai_keywords if all(paper.ai_keywords) else tuple(filter(None, paper.ai_keywords))
    )
    authors = paper.authors if all(paper.authors) else tuple(filter(None, paper.authors))
    return Document(
        title=(_words(title),) if title else (),
        abstract=(_words(abstract),) if abstract else (),
        keyword=tuple(map(_short_words, keywords)),
        author=tuple(map(_short_words, authors)),
        org=(_short_words(org),) if org else (),
        upvotes=paper.upvotes or 0,
        texts=Texts(
            (title,) if title else (),
            (abstract,) if abstract else (),
            keywords,
            authors,
            (org,) if org else (),
        ),
    )
