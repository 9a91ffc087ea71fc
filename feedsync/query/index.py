"""The inverted index queries are evaluated against in bulk (``Query.select``)."""

from __future__ import annotations

import functools
import itertools
import re
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from feedsync.query.words import FIELDS, SEPARATOR, Document, Values

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
        # The space-joined words phrase checks search, made for phrase candidates only: made
        # for every document as it was added, they cost a sixth of indexing 50,000 papers.
        self._spaced: dict[str, dict[int, str]] = {f: {} for f in FIELDS}
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
