r"""The topic query language: parse once, evaluate many times, pure.

A topic's ``query`` is compiled once (:func:`compile_query`) into a :class:`Query`, which then
answers for one paper (:meth:`Query.matches` on the :class:`Document` that :func:`document`
makes of it) or for a whole collection at once (:meth:`Query.select` on an :class:`Index`,
such as :class:`MemoryIndex`). Both always give the same answer; a property test checks it.
:func:`all_of`, :func:`any_phrase` and :func:`min_upvotes` turn a topic's ``query``,
``authors``, ``organizations`` and ``min_upvotes`` into one query.

Words
    Query and papers are cut into words the same way (:func:`tokenize`): NFKC-normalized,
    lower-cased, then maximal runs of letters and digits (Unicode categories L*, N*, and
    Co but for :data:`SEPARATOR`). Everything else separates words: spaces, punctuation,
    ``_``, combining marks. So terms match whole words: ``RL`` matches "RL-based" and "(RL)"
    but not "world"; ``gpt`` matches "GPT-4" (two words) but not "GPT4" (one word: write
    ``gpt4`` or ``gpt*``). A term made of several words, such as ``mixture-of-experts`` or
    ``GPT-4``, is the phrase of those words.

Grammar (``AND``, ``OR``, ``NOT`` are keywords only in upper case; ``and`` is a word)::

    query   = or EOF
    or      = and { "OR" and }
    and     = unary { [ "AND" ] unary }                 (* adjacent items are ANDed *)
    unary   = ( "NOT" | "-" ) unary | field ":" value | value | upvotes
    value   = "(" or ")" | '"' phrase '"' | "/" regex "/" | word [ "*" ]
    field   = "title" | "abstract" | "keyword" | "author" | "org"      (* any case *)
    upvotes = "upvotes:" [ ">=" | ">" | "<=" | "<" | "=" ] digits

``-`` and ``field:`` touch what follows them (``-word``, ``title:(a OR b)``); a regex ends
at the first ``/`` not written ``\/`` and is followed by a space or a parenthesis. NOT binds
tighter than AND, which binds tighter than OR: ``a OR b c -d`` is ``a OR (b AND c AND NOT
d)``. :meth:`Query.canonical` shows how a query was read, fully parenthesized.

What matches, rule by rule:

1. Without a field, a word, phrase, wildcard or regex searches the title, the abstract and
   the keywords (HF ``ai_keywords``). ``author:`` searches each author name on its own,
   ``keyword:`` each keyword, ``org:`` the organization. A field before a group applies to
   whatever inside has no field of its own.
2. A phrase is consecutive words of one value: ``author:"yann lecun"`` never matches the
   end of one name and the start of the next. Punctuation inside quotes is ignored.
3. ``word*`` matches the words that start with ``word``: one word of two letters or more,
   outside quotes.
4. ``/regex/`` is a Python regular expression searched, ignoring case, in each raw value
   (the text as written, not its words).
5. ``upvotes:>=N`` (also ``>``, ``<``, ``<=``, and ``upvotes:N`` for exactly N) compares
   the upvote count; a paper without one has 0.

A query that breaks the grammar raises :class:`~feedsync.errors.QueryError` with the 1-based
column of the culprit: unbalanced parentheses, an unterminated quote or regex, an operator
with nothing on one side, an empty query, group or phrase, an unknown field, a bad upvotes
value, an invalid regex, a misplaced or too short wildcard, nesting over 100 levels deep.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import re
import sys
import unicodedata
import warnings
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from feedsync.errors import QueryError
from feedsync.models import Paper

__all__ = [
    "DEFAULT_FIELDS",
    "FIELDS",
    "SEPARATOR",
    "UPVOTE_OPS",
    "And",
    "Document",
    "Index",
    "Leaf",
    "MemoryIndex",
    "Node",
    "Not",
    "Or",
    "Phrase",
    "Prefix",
    "Query",
    "Regex",
    "Term",
    "Texts",
    "Upvotes",
    "all_of",
    "any_phrase",
    "compile_query",
    "document",
    "min_upvotes",
    "tokenize",
]

FIELDS = ("title", "abstract", "keyword", "author", "org")
DEFAULT_FIELDS = ("title", "abstract", "keyword")
UPVOTE_OPS = (">=", "<=", ">", "<", "=")  # as Index.upvotes() gets them

# Joins the values of a multi-valued field (authors, keywords) into one string, as an FTS
# index wants them, without letting a phrase run from one value into the next. It is the
# first private-use character: never in real text, and tokenize() treats it as a gap
# although other private-use characters (category Co) are word characters.
SEPARATOR = "\ue000"

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


# ---------------------------------------------------------------------------- the index


class Index(Protocol):
    """What :meth:`Query.select` needs to evaluate a query over a collection at once.

    Fields are the names in :data:`FIELDS`; tokens are already normalized by
    :func:`tokenize` (a phrase has two or more, in order, consecutive within one value of
    the field); a regex is searched in each raw value; ``op`` is one of :data:`UPVOTE_OPS`,
    and a missing upvote count is 0. Returned sets may belong to the index: callers must
    not modify them.
    """

    def all_ids(self) -> set[int]: ...

    def term(self, field: str, token: str) -> set[int]: ...

    def prefix(self, field: str, prefix: str) -> set[int]: ...

    def phrase(self, field: str, tokens: Sequence[str]) -> set[int]: ...

    def regex(self, field: str, pattern: re.Pattern[str]) -> set[int]: ...

    def upvotes(self, op: str, n: int) -> set[int]: ...


class MemoryIndex(Index):
    """An in-memory inverted index of documents, built at once or one :meth:`add` at a time.

    Postings are lists of ids per (field, word), cheap to append to, turned into sets when a
    query first needs them. Phrases are checked, by substring search in the space-joined
    words, on the documents that hold every word of them; prefixes walk a sorted
    vocabulary. A regex runs only on the documents that hold a literal it requires (found
    through the words, or in case-folded text), once: :meth:`add` keeps its result current.
    The index keeps the documents; it is not thread-safe.
    """

    def __init__(self, docs: Mapping[int, Document] | Iterable[tuple[int, Document]] = ()) -> None:
        self._docs: dict[int, Document] = {}
        self._ids: set[int] = set()
        self._postings: dict[str, defaultdict[str, list[int]]] = {
            f: defaultdict(list) for f in FIELDS
        }
        self._vocab: dict[str, list[str] | None] = dict.fromkeys(FIELDS)
        self._memo: dict[tuple[str, str, object], set[int]] = {}  # cleared on every change
        self._regexes: dict[tuple[str, re.Pattern[str]], set[int]] = {}  # kept up to date
        # Case-folded raw text by (field, whether only documents with non-ASCII text),
        # built by the first regex scan that needs it.
        self._folded: dict[tuple[str, bool], dict[int, str]] = {}
        self._spaced: dict[str, dict[int, str]] = {f: {} for f in FIELDS}  # by phrase checks
        items = docs.items() if isinstance(docs, Mapping) else docs
        for doc_id, doc in items:
            self.add(doc_id, doc)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._ids

    def add(self, doc_id: int, doc: Document) -> None:
        """Index ``doc`` as ``doc_id``, replacing what that id held before."""
        if doc_id in self._ids:
            self.discard(doc_id)
        self._docs[doc_id] = doc
        self._ids.add(doc_id)
        self._memo.clear()
        for field, values in zip(FIELDS, doc.fields(), strict=True):
            postings = self._postings[field]
            known = len(postings)
            for token in set(values[0]) if len(values) == 1 else set().union(*values):
                postings[token].append(doc_id)
            if len(postings) != known:
                self._vocab[field] = None
            if len(values) == 1:  # titles and abstracts: ready for phrase checks
                self._spaced[field][doc_id] = f" {' '.join(values[0])} "
        for (field, odd_only), folded in self._folded.items():
            raw = doc.raw(field)
            if not (odd_only and _is_ascii(raw)):
                folded[doc_id] = _fold("\n".join(raw))
        for (field, pattern), ids in self._regexes.items():
            if any(map(pattern.search, doc.raw(field))):
                ids.add(doc_id)

    def discard(self, doc_id: int) -> None:
        """Forget ``doc_id`` if it is indexed (slow: for the rare paper that changed)."""
        doc = self._docs.pop(doc_id, None)
        if doc is None:
            return
        self._ids.discard(doc_id)
        self._memo.clear()
        for field in FIELDS:
            postings = self._postings[field]
            for token in set().union(*doc.values(field)):
                posting = postings[token]
                posting.remove(doc_id)
                if not posting:
                    del postings[token]
                    self._vocab[field] = None
        for folded in self._folded.values():
            folded.pop(doc_id, None)
        for spaced in self._spaced.values():
            spaced.pop(doc_id, None)
        for matching in self._regexes.values():
            matching.discard(doc_id)

    def all_ids(self) -> set[int]:
        return self._ids

    def term(self, field: str, token: str) -> set[int]:
        key = ("term", field, token)
        if key not in self._memo:
            self._memo[key] = set(self._postings[field].get(token, ()))
        return self._memo[key]

    def prefix(self, field: str, prefix: str) -> set[int]:
        key = ("prefix", field, prefix)
        if key not in self._memo:
            postings = self._postings[field]
            words = self._expand(field, prefix)
            self._memo[key] = set(itertools.chain.from_iterable(postings[w] for w in words))
        return self._memo[key]

    def phrase(self, field: str, tokens: Sequence[str]) -> set[int]:
        key = ("phrase", field, tuple(tokens))
        if key not in self._memo:
            phrase = tuple(tokens)
            sets = sorted((self.term(field, t) for t in set(phrase)), key=len)
            candidates = sets[0].intersection(*sets[1:]) if sets else set()
            needle, docs, spaced = _spaced((phrase,)), self._docs, self._spaced[field]
            found = set()
            for i in candidates:
                text = spaced.get(i)
                if text is None:
                    text = spaced[i] = _spaced(docs[i].values(field))
                if needle in text:
                    found.add(i)
            self._memo[key] = found
        return self._memo[key]

    def regex(self, field: str, pattern: re.Pattern[str]) -> set[int]:
        key = (field, pattern)
        if key not in self._regexes:
            self._regexes[key] = self._scan(field, pattern)
        return self._regexes[key]

    def upvotes(self, op: str, n: int) -> set[int]:
        key = ("upvotes", op, n)
        if key not in self._memo:
            compare = _COMPARE[op]
            self._memo[key] = {i for i, doc in self._docs.items() if compare(doc.upvotes, n)}
        return self._memo[key]

    def _expand(self, field: str, prefix: str) -> Iterator[str]:
        """The indexed words of ``field`` that start with ``prefix``, in order."""
        vocab = self._vocab[field]
        if vocab is None:
            vocab = self._vocab[field] = sorted(self._postings[field])
        for i in range(bisect_left(vocab, prefix), len(vocab)):
            if not vocab[i].startswith(prefix):
                break
            yield vocab[i]

    def _scan(self, field: str, pattern: re.Pattern[str]) -> set[int]:
        search, docs = pattern.search, self._docs
        branches = _required_literals(pattern)
        if not branches:
            return {i for i, doc in docs.items() if any(map(search, doc.raw(field)))}
        candidates = set().union(*(self._may_contain(field, branch) for branch in branches))
        return {i for i in candidates if any(map(search, docs[i].raw(field)))}

    def _may_contain(self, field: str, literals: tuple[str, ...]) -> set[int]:
        """A superset, usually small, of the documents whose ``field`` holds every one of
        ``literals`` (ignoring case), found without the regex engine, which has no fast
        path for ignoring case."""
        words = [word for word in map(_longest_word, literals) if len(word) >= 3]
        if not words:
            return self._folded_with(field, literals, odd_only=False)
        # In ASCII text, a literal's run of letters and digits lies inside one word, so the
        # postings of the words that contain that run cover every ASCII document that can
        # match. Other text (which NFKC or case rules may have changed) is read instead.
        ascii_docs = set.intersection(*(self._having_word_with(field, w) for w in words))
        return ascii_docs | self._folded_with(field, literals, odd_only=True)

    def _having_word_with(self, field: str, part: str) -> set[int]:
        postings = self._postings[field]
        return set(itertools.chain.from_iterable(postings[w] for w in postings if part in w))

    def _folded_with(self, field: str, literals: tuple[str, ...], *, odd_only: bool) -> set[int]:
        """The documents (only those with non-ASCII text, if ``odd_only``) whose case-folded
        ``field`` contains every one of ``literals``."""
        key = (field, odd_only)
        if key not in self._folded:
            self._folded[key] = {
                i: _fold("\n".join(doc.raw(field)))
                for i, doc in self._docs.items()
                if not (odd_only and _is_ascii(doc.raw(field)))
            }
        first, *others = literals
        return {
            i
            for i, text in self._folded[key].items()
            if first in text and all(other in text for other in others)
        }


def _is_ascii(texts: tuple[str, ...]) -> bool:
    return all(map(str.isascii, texts))


def _longest_word(literal: str) -> str:
    return max(_ASCII_WORD.findall(literal), key=len, default="")


_ASCII_WORD = re.compile(r"[a-z0-9]+")


def _spaced(values: Values) -> str:
    """The words of a field, each between spaces, with SEPARATOR between two values: so
    `" a b "` is in it exactly when "a b" is a phrase of one value."""
    return f" {_VALUE_GAP.join(map(' '.join, values))} "


_VALUE_GAP = f" {SEPARATOR} "


def _has_phrase(value: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    """Whether ``phrase`` occurs as consecutive words of ``value``."""
    first, width, at = phrase[0], len(phrase), -1
    for _ in range(value.count(first)):
        at = value.index(first, at + 1)
        if value[at : at + width] == phrase:
            return True
    return False


# Under IGNORECASE, `re` matches these four non-ASCII characters to ASCII letters; lower()
# does not (a test finds them by brute force). Everything else that matches an ASCII
# character case-insensitively is ASCII.
_RE_FOLD_CHARS = {"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"}
_RE_FOLD = str.maketrans(_RE_FOLD_CHARS)


def _fold(text: str) -> str:
    """Lower case, so that an ASCII literal the regex requires is found with `in`."""
    if text.isascii() or not any(char in text for char in _RE_FOLD_CHARS):
        return text.lower()  # translate() is slow on non-ASCII text: only when needed
    return text.translate(_RE_FOLD).lower()


_REGEX_SPECIAL = frozenset(".^$*+?{}[]|()\\")
_ESCAPE_WITH_ARGUMENTS = frozenset("xuUN0123456789")  # \x41, \N{...}, \1: not plain text
_VERBOSE_FLAG = re.compile(r"\(\?[a-zA-Z-]*x")


@functools.lru_cache(maxsize=256)
def _required_literals(pattern: re.Pattern[str]) -> tuple[tuple[str, ...], ...]:
    """For each top-level alternative of ``pattern``, lower-cased ASCII strings that each of
    its matches contains; empty when some alternative has none (or the pattern is odd).

    Conservative: only literal runs outside groups and classes count, a run ends before a
    quantifier that may skip or repeat its last character, and verbose mode or an escape
    with arguments gives up.
    """
    source = pattern.pattern
    if pattern.flags & re.VERBOSE or _VERBOSE_FLAG.search(source):
        return ()
    branches: list[tuple[str, ...]] = []
    runs: list[str] = []
    run: list[str] = []
    depth, i = 0, 0
    while i < len(source):
        char, i = source[i], i + 1
        if char == "\\":
            char, i = source[i : i + 1], i + 1
            if char in _ESCAPE_WITH_ARGUMENTS:
                return ()
            if depth == 0 and char.isascii() and char.isprintable() and not char.isalnum():
                run.append(char)  # \. \- \( and friends stand for themselves
            else:
                runs.append("".join(run))  # \b \d \s ...
                run = []
            continue
        if char in "?*{" and run:
            run.pop()  # the character before may be absent
        elif depth == 0 and char not in _REGEX_SPECIAL and char.isascii() and char.isprintable():
            run.append(char.lower())
            continue
        # Anything else ends the run ("x+" keeps its x but may repeat it).
        runs.append("".join(run))
        run = []
        depth += (char == "(") - (char == ")")
        if char == "[":
            i = _class_end(source, i - 1)
        elif char == "{":
            i = source.find("}", i) + 1 or len(source)
        elif char == "|" and depth == 0:
            branches.append(_longest(runs))
            runs = []
    branches.append(_longest([*runs, "".join(run)]))
    return () if () in branches else tuple(branches)


def _longest(runs: list[str]) -> tuple[str, ...]:
    return tuple(sorted((r for r in runs if len(r) >= 2), key=len, reverse=True)[:3])


def _class_end(source: str, start: int) -> int:
    """The index just past the character class that opens at ``start``."""
    i = start + 1
    if source[i : i + 1] == "^":
        i += 1
    if source[i : i + 1] == "]":
        i += 1  # a leading "]" is a member
    while i < len(source) and source[i] != "]":
        i += 2 if source[i] == "\\" else 1
    return i + 1


_COMPARE: dict[str, Callable[[int, int], bool]] = {
    ">=": int.__ge__,
    "<=": int.__le__,
    ">": int.__gt__,
    "<": int.__lt__,
    "=": int.__eq__,
}

# ---------------------------------------------------------------------------- the tree


class Node:
    """A node of a compiled query. ``str()`` gives its canonical, fully parenthesized form."""

    __slots__ = ()

    def matches(self, doc: Document) -> bool:
        raise NotImplementedError

    def select(self, index: Index) -> set[int]:
        """The matching ids; may be a set owned by ``index``, so never modify it."""
        raise NotImplementedError

    def explain(self, doc: Document) -> list[str]:
        """Labels of the positive leaves that make this node true for ``doc``."""
        raise NotImplementedError

    def leaves(self) -> Iterator[Leaf]:
        raise NotImplementedError

    @property
    def slow(self) -> bool:
        """Whether selecting it may scan every document (a regex)."""
        return any(isinstance(leaf, Regex) for leaf in self.leaves())


class Leaf(Node):
    """A node that tests one thing; ``field`` None means the default fields."""

    __slots__ = ()
    field: str | None  # a dataclass field of each subclass

    @property
    def fields(self) -> tuple[str, ...]:
        return DEFAULT_FIELDS if self.field is None else (self.field,)

    @property
    def label(self) -> str:
        return f"{self.field}:{self._form()}" if self.field else self._form()

    def __str__(self) -> str:
        return self.label

    def _form(self) -> str:
        raise NotImplementedError

    def _hits(self, doc: Document) -> list[str]:
        """What the label does not tell: the words a wildcard or regex matched."""
        return []

    def explain(self, doc: Document) -> list[str]:
        if not self.matches(doc):
            return []
        hits = sorted({hit for hit in self._hits(doc) if hit})
        return [f"{self.label}→{'/'.join(hits)}" if hits else self.label]

    def leaves(self) -> Iterator[Leaf]:
        yield self

    def select(self, index: Index) -> set[int]:
        sets = [self._select(index, field) for field in self.fields]
        return sets[0] if len(sets) == 1 else set().union(*sets)

    def _select(self, index: Index, field: str) -> set[int]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Term(Leaf):
    """One whole word."""

    field: str | None
    token: str

    def matches(self, doc: Document) -> bool:
        token = self.token
        return any(token in value for field in self.fields for value in doc.values(field))

    def _select(self, index: Index, field: str) -> set[int]:
        return index.term(field, self.token)

    def _form(self) -> str:
        return self.token


@dataclass(frozen=True, slots=True)
class Phrase(Leaf):
    """Consecutive words inside one field value."""

    field: str | None
    tokens: tuple[str, ...]

    def matches(self, doc: Document) -> bool:
        phrase = self.tokens
        return any(
            _has_phrase(value, phrase) for field in self.fields for value in doc.values(field)
        )

    def _select(self, index: Index, field: str) -> set[int]:
        return index.phrase(field, self.tokens)

    def _form(self) -> str:
        return f'"{" ".join(self.tokens)}"'


@dataclass(frozen=True, slots=True)
class Prefix(Leaf):
    """Any word that starts with ``prefix``."""

    field: str | None
    prefix: str

    def matches(self, doc: Document) -> bool:
        prefix = self.prefix
        return any(
            token.startswith(prefix)
            for field in self.fields
            for value in doc.values(field)
            for token in value
        )

    def _hits(self, doc: Document) -> list[str]:
        prefix = self.prefix
        return [
            token
            for field in self.fields
            for value in doc.values(field)
            for token in value
            if token.startswith(prefix)
        ]

    def _select(self, index: Index, field: str) -> set[int]:
        return index.prefix(field, self.prefix)

    def _form(self) -> str:
        return f"{self.prefix}*"


@dataclass(frozen=True, slots=True)
class Regex(Leaf):
    """A case-insensitive regular expression searched in each raw field value."""

    field: str | None
    pattern: re.Pattern[str]

    def matches(self, doc: Document) -> bool:
        search = self.pattern.search
        return any(search(text) for field in self.fields for text in doc.raw(field))

    def _hits(self, doc: Document) -> list[str]:
        found = (self.pattern.search(t) for f in self.fields for t in doc.raw(f))
        return [m.group() for m in found if m]

    def _select(self, index: Index, field: str) -> set[int]:
        return index.regex(field, self.pattern)

    def _form(self) -> str:
        escaped = self.pattern.pattern.replace("/", "\\/")
        return f"/{escaped}/"


@dataclass(frozen=True, slots=True)
class Upvotes(Leaf):
    """A comparison of the upvote count (missing counts as 0)."""

    op: str
    n: int
    field: str | None = dataclasses.field(default=None, init=False, repr=False)

    def matches(self, doc: Document) -> bool:
        return _COMPARE[self.op](doc.upvotes, self.n)

    def _hits(self, doc: Document) -> list[str]:
        return [str(doc.upvotes)]

    def select(self, index: Index) -> set[int]:
        return index.upvotes(self.op, self.n)

    def _form(self) -> str:
        return f"upvotes:{'' if self.op == '=' else self.op}{self.n}"


@dataclass(frozen=True, slots=True)
class Not(Node):
    child: Node

    def matches(self, doc: Document) -> bool:
        return not self.child.matches(doc)

    def select(self, index: Index) -> set[int]:
        return index.all_ids() - self.child.select(index)

    def explain(self, doc: Document) -> list[str]:
        return []  # true because something is absent: nothing to show

    def leaves(self) -> Iterator[Leaf]:
        return self.child.leaves()

    def __str__(self) -> str:
        return f"NOT {self.child}"


@dataclass(frozen=True, slots=True)
class And(Node):
    children: tuple[Node, ...]

    def matches(self, doc: Document) -> bool:
        return all(child.matches(doc) for child in self.children)

    def select(self, index: Index) -> set[int]:
        # Intersect the positive children, smallest first, then subtract the negated ones,
        # leaving regexes (which may scan everything) for last and stopping once empty.
        positive = [c for c in self.children if not isinstance(c, Not)]
        negative = [c.child for c in self.children if isinstance(c, Not)]
        fast = sorted((c.select(index) for c in positive if not c.slow), key=len)
        slow = [c for c in positive if c.slow]
        result = fast[0].intersection(*fast[1:]) if fast else None
        for child in slow:
            if result is not None and not result:
                return result
            ids = child.select(index)
            result = set(ids) if result is None else result & ids
        if result is None:
            result = set(index.all_ids())
        for child in sorted(negative, key=lambda c: c.slow):
            if not result:
                break
            result -= child.select(index)
        return result

    def explain(self, doc: Document) -> list[str]:
        if not self.matches(doc):
            return []
        return [label for child in self.children for label in child.explain(doc)]

    def leaves(self) -> Iterator[Leaf]:
        for child in self.children:
            yield from child.leaves()

    def __str__(self) -> str:
        return f"({' AND '.join(map(str, self.children))})"


@dataclass(frozen=True, slots=True)
class Or(Node):
    children: tuple[Node, ...]

    def matches(self, doc: Document) -> bool:
        return any(child.matches(doc) for child in self.children)

    def select(self, index: Index) -> set[int]:
        return set().union(*(child.select(index) for child in self.children))

    def explain(self, doc: Document) -> list[str]:
        return [label for child in self.children for label in child.explain(doc)]

    def leaves(self) -> Iterator[Leaf]:
        for child in self.children:
            yield from child.leaves()

    def __str__(self) -> str:
        return f"({' OR '.join(map(str, self.children))})"


def _and(children: Sequence[Node]) -> Node:
    flat = tuple(g for c in children for g in (c.children if isinstance(c, And) else (c,)))
    return flat[0] if len(flat) == 1 else And(flat)


def _or(children: Sequence[Node]) -> Node:
    flat = tuple(g for c in children for g in (c.children if isinstance(c, Or) else (c,)))
    return flat[0] if len(flat) == 1 else Or(flat)


# ---------------------------------------------------------------------------- the query


@dataclass(frozen=True, slots=True)
class Query:
    """A compiled query: ``text`` is its source, ``node`` the tree it compiled to."""

    text: str
    node: Node

    def matches(self, doc: Document) -> bool:
        return self.node.matches(doc)

    def select(self, index: Index) -> set[int]:
        """The ids of every document of ``index`` that matches (a new set)."""
        ids = self.node.select(index)
        return set(ids) if isinstance(self.node, Leaf) else ids  # others build new sets

    def explain(self, doc: Document) -> list[str]:
        """Why ``doc`` matches: the leaves that matched, e.g. ``'reason*→reasoning'``.

        Empty when it does not match; terms under NOT are never listed.
        """
        return list(dict.fromkeys(self.node.explain(doc))) if self.matches(doc) else []

    def leaves(self) -> list[Leaf]:
        """The terms, phrases, wildcards, regexes and comparisons, in source order."""
        return list(self.node.leaves())

    def canonical(self) -> str:
        """The fully parenthesized form, which compiles back to the same tree."""
        return str(self.node)


def compile_query(text: str) -> Query:
    """Parse ``text``; raises :class:`QueryError` with a 1-based column on a syntax error."""
    return Query(text, _Parser(text).parse())


def all_of(queries: Iterable[Query]) -> Query:
    """One query that matches when every one of ``queries`` does."""
    parts = list(queries)
    if not parts:
        raise ValueError("all_of() needs at least one query")
    if len(parts) == 1:
        return parts[0]
    text = " AND ".join(f"({q.text})" if isinstance(q.node, Or) else q.text for q in parts)
    return Query(text, _and([q.node for q in parts]))


# A name is quoted as is, but for what would end the quotes or read as a wildcard; neither
# is part of a word, so the phrase keeps its words.
_NOT_IN_QUOTES = re.compile(r'["*]')


def any_phrase(field: str, names: Sequence[str]) -> Query:
    """One query that matches a paper with any of ``names`` as a phrase of ``field``.

    It turns a topic's ``authors`` (field "author") or ``organizations`` (field "org") list
    into a query: each name must appear as consecutive words within one value.
    """
    if field not in FIELDS:
        raise ValueError(f"unknown field {field!r}")
    if not names:
        raise ValueError("any_phrase() needs at least one name")
    nodes: list[Node] = []
    texts: list[str] = []
    for name in names:
        tokens = tuple(tokenize(name))
        text = f'{field}:"{_NOT_IN_QUOTES.sub(" ", name)}"'
        if not tokens:
            raise QueryError("a name needs letters or digits", text, len(field) + 2)
        nodes.append(Term(field, tokens[0]) if len(tokens) == 1 else Phrase(field, tokens))
        texts.append(text)
    return Query(" OR ".join(texts), _or(nodes))


def min_upvotes(n: int) -> Query:
    """A query that matches papers with at least ``n`` upvotes."""
    if n < 0:
        raise ValueError("min_upvotes() needs n >= 0")
    node = Upvotes(">=", n)
    return Query(str(node), node)


# ---------------------------------------------------------------------------- lexing

_KEYWORDS = ("AND", "OR", "NOT")
_FIELD_NAMES = (*FIELDS, "upvotes")
_FIELD = re.compile(r"([A-Za-z_]+):")
_COMPARISON = re.compile(rf"({'|'.join(UPVOTE_OPS)})?(\d+)(?=[\s()]|$)")
_WORD_END = re.compile(r'[\s()"]')
# Turns an atom into a node once the parser knows its field (None: the default fields).
Make = Callable[[str | None], Node]


@dataclass(frozen=True, slots=True)
class _Lexeme:
    kind: str  # "(", ")", "AND", "OR", "NOT", "-", "field", "atom" or "end"
    text: str
    column: int  # 1-based
    make: Make | None = None


class _Lexer:
    """Cuts the query into lexemes; atoms (words, phrases, regexes) are checked here."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.out: list[_Lexeme] = []

    def error(self, message: str, pos: int) -> QueryError:
        return QueryError(message, self.text, pos + 1)

    def run(self) -> list[_Lexeme]:
        text = self.text
        while True:
            while self.pos < len(text) and text[self.pos].isspace():
                self.pos += 1
            if self.pos >= len(text):
                self.out.append(_Lexeme("end", "", len(text) + 1))
                return self.out
            self.item()

    def emit(self, kind: str, start: int, end: int, make: Make | None = None) -> None:
        self.out.append(_Lexeme(kind, self.text[start:end], start + 1, make))
        self.pos = end

    def item(self) -> None:
        text, start = self.text, self.pos
        char = text[start]
        if char in "()":
            self.emit(char, start, start + 1)
        elif char == "-":
            if start + 1 == len(text) or text[start + 1].isspace() or text[start + 1] == ")":
                raise self.error("'-' needs a term right after it", start)
            self.emit("-", start, start + 1)
        elif char in '"/':
            self.value()
        elif match := _FIELD.match(text, start):
            self.field(match)
        else:
            end = self.word_end(start)
            word = text[start:end]
            if word in _KEYWORDS:
                self.emit(word, start, end)
            else:
                self.emit("atom", start, end, self.word(word, start))

    def word_end(self, start: int) -> int:
        match = _WORD_END.search(self.text, start)
        return match.start() if match else len(self.text)

    def field(self, match: re.Match[str]) -> None:
        name, start, after = match.group(1).lower(), match.start(), match.end()
        if name not in _FIELD_NAMES:
            known = ", ".join(_FIELD_NAMES)
            raise self.error(f"unknown field '{match.group(1)}' (known fields: {known})", start)
        if name == "upvotes":
            self.upvotes(after)
            return
        text = self.text
        if after == len(text) or text[after].isspace() or text[after] == ")":
            raise self.error(f"'{match.group()}' needs a value right after it", start)
        if text[after] == "-":
            raise self.error(f"put '-' before the field: -{match.group()}…", after)
        if _FIELD.match(text, after):
            raise self.error("a field cannot follow another field", after)
        self.out.append(_Lexeme("field", name, start + 1))
        self.pos = after
        if text[after] != "(":
            self.value()

    def value(self) -> None:
        """A word, phrase or regex: anything that can follow a field (keywords included)."""
        start = self.pos
        char = self.text[start]
        if char == '"':
            self.phrase(start)
        elif char == "/":
            self.regex(start)
        else:
            end = self.word_end(start)
            self.emit("atom", start, end, self.word(self.text[start:end], start))

    def upvotes(self, start: int) -> None:
        match = _COMPARISON.match(self.text, start)
        if not match:
            raise self.error("upvotes needs a count such as upvotes:>=10 or upvotes:5", start)
        node = Upvotes(match.group(1) or "=", int(match.group(2)))
        self.emit("atom", start - len("upvotes:"), match.end(), lambda _field: node)

    def word(self, word: str, start: int) -> Make:
        star = word.find("*")
        if star != -1 and star != len(word) - 1:
            raise self.error("'*' is only allowed at the end of a word", start + star)
        body = word[:-1] if star != -1 else word
        tokens = tuple(tokenize(body))
        if not tokens:
            if star != -1 and not body:
                raise self.error("'*' alone would match everything", start)
            raise self.error(f"'{word}' has no letters or digits", start)
        if star == -1:
            return _make_words(tokens)
        if not _is_word_char(body[-1]):
            raise self.error("'*' must follow a letter or digit", start + star)
        if len(tokens) > 1:
            raise self.error("a wildcard applies to a single word", start)
        if len(tokens[0]) < 2:
            raise self.error("a wildcard needs at least 2 letters before '*'", start)
        return functools.partial(Prefix, prefix=tokens[0])

    def phrase(self, start: int) -> None:
        end = self.text.find('"', start + 1)
        if end == -1:
            raise self.error("unterminated quote", start)
        content = self.text[start + 1 : end]
        tokens = tuple(tokenize(content))
        if not tokens:
            raise self.error("empty phrase", start)
        stripped = content.rstrip()
        if stripped.endswith("*") and _is_word_char(stripped[-2:-1] or " "):
            raise self.error("wildcards are not supported inside quotes", start + len(stripped))
        self.emit("atom", start, end + 1, _make_words(tokens))

    def regex(self, start: int) -> None:
        source, columns = self.regex_source(start)
        if not source:
            raise self.error("empty regex", start)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # "possible nested set" and friends
                pattern = re.compile(source, re.IGNORECASE)
        except (re.error, OverflowError, RecursionError) as e:
            pos = getattr(e, "pos", None)
            column = columns[pos] if pos is not None and pos < len(columns) else start
            raise self.error(f"invalid regex: {getattr(e, 'msg', e)}", column) from None
        except Warning as e:
            raise self.error(f"ambiguous regex: {e}", start) from None
        end = columns[-1] + 1
        if end < len(self.text) and not _WORD_END.match(self.text, end):
            message = "a space must follow a regex (there are no flags: case is always ignored)"
            raise self.error(message, end)
        self.emit("atom", start, end, functools.partial(Regex, pattern=pattern))

    def regex_source(self, start: int) -> tuple[str, list[int]]:
        """The pattern between slashes with ``\\/`` unescaped, and each char's position.

        The last position is that of the closing slash.
        """
        text, chars, columns = self.text, [], []
        i = start + 1
        while i < len(text) and text[i] != "/":
            if text[i] == "\\" and i + 1 < len(text):
                if text[i + 1] != "/":
                    chars.append("\\")
                    columns.append(i)
                i += 1
            chars.append(text[i])
            columns.append(i)
            i += 1
        if i >= len(text):
            raise self.error("unterminated regex", start)
        return "".join(chars), [*columns, i]


def _make_words(tokens: tuple[str, ...]) -> Make:
    if len(tokens) == 1:
        return functools.partial(Term, token=tokens[0])
    return functools.partial(Phrase, tokens=tokens)


# ---------------------------------------------------------------------------- parsing

_STARTS = ("atom", "field", "(", "-", "NOT", "AND")  # what may follow an AND (or begin one)
_MAX_DEPTH = 100  # nested groups and negations; deeper would exhaust Python's stack


class _Parser:
    """Recursive descent over the lexemes, one method per grammar rule."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lexemes = _Lexer(text).run()
        self.pos = 0
        self.depth = 0

    def peek(self) -> _Lexeme:
        return self.lexemes[self.pos]

    def next(self) -> _Lexeme:
        lexeme = self.lexemes[self.pos]
        self.pos += 1
        return lexeme

    def error(self, message: str, lexeme: _Lexeme) -> QueryError:
        return QueryError(message, self.text, lexeme.column)

    def parse(self) -> Node:
        node = self.or_(None)
        if self.peek().kind == ")":
            raise self.error("unbalanced ')': there is no '(' to close", self.peek())
        return node

    def or_(self, field: str | None) -> Node:
        children = [self.and_(field, None)]
        while self.peek().kind == "OR":
            children.append(self.and_(field, self.next()))
        return _or(children)

    def and_(self, field: str | None, after: _Lexeme | None) -> Node:
        children = [self.unary(field, after)]
        while self.peek().kind in _STARTS:
            op = self.next() if self.peek().kind == "AND" else None
            children.append(self.unary(field, op))
        return _and(children)

    def unary(self, field: str | None, after: _Lexeme | None) -> Node:
        lexeme = self.peek()
        if lexeme.kind in ("NOT", "-"):
            with self.nested():
                return Not(self.unary(field, self.next()))
        if lexeme.kind == "field":
            self.next()
            return self.group(lexeme.text) if self.peek().kind == "(" else self.atom(lexeme.text)
        if lexeme.kind == "(":
            return self.group(field)
        if lexeme.kind == "atom":
            return self.atom(field)
        raise self.missing(lexeme, after)

    @contextlib.contextmanager
    def nested(self) -> Iterator[None]:
        """One more level of groups and negations; too many would exhaust the stack."""
        if self.depth == _MAX_DEPTH:
            raise self.error(f"too deeply nested (more than {_MAX_DEPTH} levels)", self.peek())
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def atom(self, field: str | None) -> Node:
        make = self.next().make
        assert make is not None
        return make(field)

    def group(self, field: str | None) -> Node:
        with self.nested():
            opening = self.next()
            node = self.or_(field)
        if self.peek().kind != ")":
            raise self.error("unbalanced '(': it is never closed", opening)
        self.next()
        return node

    def missing(self, lexeme: _Lexeme, after: _Lexeme | None) -> QueryError:
        """The error for a place that needs a term but holds ``lexeme``."""
        previous = self.lexemes[self.pos - 1] if self.pos else None
        if after is not None:
            name = "'-'" if after.kind == "-" else after.text
            return self.error(f"{name} needs a term after it", after)
        if lexeme.kind in ("AND", "OR"):
            return self.error(f"{lexeme.kind} needs a term before it", lexeme)
        if previous is not None and previous.kind == "(":
            if lexeme.kind == ")":
                return self.error("empty group '()'", previous)
            return self.error("unbalanced '(': it is never closed", previous)
        if lexeme.kind == ")":
            return self.error("unbalanced ')': there is no '(' to close", lexeme)
        return QueryError("empty query", self.text, 1)
