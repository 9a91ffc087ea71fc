"""Word segments: the postings of a block of papers, in a form that is cheap to store and
to read back, and the index that queries a group of them (``SegmentIndex``).

Re-matching a whole archive used to mean reading and tokenizing every paper again: 80% of
the time. A segment keeps what tokenizing gave, so re-matching reads it back instead. Per
field, a segment holds its words sorted and joined into one string, the start of each
word's ids, and all ids in word order: three objects, so reading one back does not create
an object per word; a word is found by bisection, a prefix is one slice, and a substring
search runs over the joined words in C.

What a segment cannot answer from postings (phrase order, regexes) is checked on the raw
field values, taken from the documents at hand or read from the store by ``texts``.
"""

from __future__ import annotations

import marshal
from array import array
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain

from feedsync.query.index import (
    _COMPARE,
    Answers,
    Index,
    MemoryIndex,
    _is_ascii,
    _spaced,
    phrase_candidates,
    words_containing,
)
from feedsync.query.regexes import Pattern, fold, literal_words, required_literals
from feedsync.query.words import FIELDS, tokenize

# Bump whenever tokenize() or the layout below changes: older segments are then rebuilt.
# marshal's own format version is part of it: the format may change between Pythons.
SEGMENT_VERSION = (1, marshal.version)

# Raw values of one field for some documents, as Document.raw gives them.
Texts = Callable[[str, Collection[int]], Mapping[int, tuple[str, ...]]]


def _ids(values: Iterable[int]) -> array[int]:
    return array("I", values)


class Postings:
    """One field of one segment: sorted words, and the ids of the documents holding each."""

    __slots__ = ("_ids", "_joined", "_starts", "words")

    def __init__(self, joined: str, starts: bytes, ids: bytes) -> None:
        self._joined = joined + "\n" if joined else ""
        self.words = joined.split("\n") if joined else []
        self._starts = array("I")
        self._starts.frombytes(starts)
        self._ids = ids

    @classmethod
    def build(cls, postings: Mapping[str, list[int]]) -> Postings:
        words = sorted(postings)
        lists = list(map(postings.__getitem__, words))
        starts = _ids(accumulate(map(len, lists), initial=0))
        ids = _ids(chain.from_iterable(lists))
        return cls("\n".join(words), starts.tobytes(), ids.tobytes())

    def check(self) -> None:
        """Raise ValueError unless words, starts and ids fit together (a damaged segment
        would otherwise fail, or answer wrongly, only once queried)."""
        starts, size = self._starts, self._starts.itemsize
        if (
            len(starts) != len(self.words) + 1
            or starts[0] != 0
            or starts[-1] * size != len(self._ids)
            or self.words != sorted(self.words)
        ):
            raise ValueError("words, starts and ids do not fit together")

    def dump(self) -> tuple[str, bytes, bytes]:
        return self._joined[:-1], self._starts.tobytes(), self._ids

    def _slice(self, first: int, last: int) -> bytes:
        """The ids of words ``first`` to ``last`` (excluded), as packed bytes."""
        size = self._starts.itemsize
        return self._ids[size * self._starts[first] : size * self._starts[last]]

    def word(self, word: str) -> bytes:
        i = bisect_left(self.words, word)
        if i < len(self.words) and self.words[i] == word:
            return self._slice(i, i + 1)
        return b""

    def prefix(self, prefix: str) -> bytes:
        words = self.words
        first = last = bisect_left(words, prefix)
        # Words with a prefix are consecutive in sorted order: one slice of ids.
        while last < len(words) and words[last].startswith(prefix):
            last += 1
        return self._slice(first, last)

    def containing(self, part: str) -> bytes:
        return b"".join(map(self.word, words_containing(self._joined, part)))


@dataclass(frozen=True, slots=True)
class Segment:
    """The postings of a block of documents, with their ids and upvote counts.

    ``odd`` holds, per field, the documents with non-ASCII raw text, which a regex shortcut
    must read rather than trust the words for (see ``MemoryIndex._may_contain``).
    """

    ids: array[int]
    upvotes: array[int]
    fields: tuple[Postings, ...]
    odd: tuple[array[int], ...]

    def to_bytes(self) -> bytes:
        return marshal.dumps(
            (
                SEGMENT_VERSION,
                self.ids.tobytes(),
                self.upvotes.tobytes(),
                tuple(p.dump() for p in self.fields),
                tuple(o.tobytes() for o in self.odd),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Segment:
        """Raises ValueError on anything but a segment of this version."""
        try:
            version, ids, upvotes, fields, odd = marshal.loads(data)
            if tuple(version) != SEGMENT_VERSION or len(fields) != len(FIELDS):
                raise ValueError(f"segment version {version!r}")
            segment = cls(
                ids=_unpack("I", ids),
                upvotes=_unpack("q", upvotes),
                fields=tuple(Postings(*f) for f in fields),
                odd=tuple(_unpack("I", o) for o in odd),
            )
            if len(segment.upvotes) != len(segment.ids) or len(segment.odd) != len(FIELDS):
                raise ValueError("ids and counts differ in length")
            for postings in segment.fields:
                postings.check()
            return segment
        except (EOFError, TypeError, ValueError) as exc:
            raise ValueError(f"not a word segment: {exc}") from exc


class SegmentBuilder:
    """Makes one segment of several in-memory indexes of ascending, disjoint ids, added one
    at a time: a large segment is built a chunk of documents at a time, and each chunk's
    documents can go once it is added (the postings take a tenth of their memory)."""

    def __init__(self) -> None:
        self._postings = tuple(defaultdict[str, list[int]](list) for _ in FIELDS)
        self._ids = _ids(())
        self._upvotes = array("q")
        self._odd = tuple(_ids(()) for _ in FIELDS)

    def add(self, index: MemoryIndex) -> None:
        docs = index.documents()
        ordered = sorted(docs)
        if self._ids and ordered and ordered[0] <= self._ids[-1]:
            raise ValueError("indexes must hold ascending, disjoint ids")
        self._ids.extend(ordered)
        self._upvotes.extend(docs[i].upvotes for i in ordered)
        for field, postings, odd in zip(FIELDS, self._postings, self._odd, strict=True):
            for word, ids in index.postings(field).items():
                postings[word].extend(ids)
            odd.extend(i for i in ordered if not _is_ascii(docs[i].raw(field)))

    def segment(self) -> Segment:
        fields = tuple(map(Postings.build, self._postings))
        return Segment(self._ids, self._upvotes, fields, self._odd)


def _unpack(code: str, data: bytes) -> array[int]:
    out = array(code)
    out.frombytes(data)
    return out


_FIELD_NUMBER = {field: n for n, field in enumerate(FIELDS)}


def _set(packed: bytes) -> set[int]:
    return set(_unpack("I", packed))


class SegmentIndex(Index):
    """Queries over a group of segments: each postings lookup joins the segments' slices.

    Raw field values are read with ``texts``, only for phrase and regex candidates. Not
    thread-safe.
    """

    def __init__(self, segments: Sequence[Segment], texts: Texts) -> None:
        self._segments = segments
        self._texts = texts
        self._all: set[int] | None = None
        self._memo = Answers()
        self._raw: dict[str, dict[int, tuple[str, ...]]] = {f: {} for f in FIELDS}
        self._folded: dict[str, dict[int, str]] = {f: {} for f in FIELDS}

    def all_ids(self) -> set[int]:
        if self._all is None:
            self._all = set().union(*(s.ids for s in self._segments))
        return self._all

    def _join(self, field: str, part: Callable[[Postings], bytes]) -> set[int]:
        n = _FIELD_NUMBER[field]
        return _set(b"".join(part(s.fields[n]) for s in self._segments))

    def term(self, field: str, token: str) -> set[int]:
        return self._memo.get(
            ("term", field, token), lambda: self._join(field, lambda p: p.word(token))
        )

    def _containing(self, field: str, part: str) -> set[int]:
        return self._join(field, lambda p: p.containing(part))

    def prefix(self, field: str, prefix: str) -> set[int]:
        return self._memo.get(
            ("prefix", field, prefix), lambda: self._join(field, lambda p: p.prefix(prefix))
        )

    def phrase(self, field: str, tokens: Sequence[str]) -> set[int]:
        phrase = tuple(tokens)

        def compute() -> set[int]:
            candidates = phrase_candidates(self, field, phrase)
            needle = _spaced((phrase,))
            return {
                i
                for i, values in self._values(field, candidates).items()
                if needle in _spaced(values)
            }

        return self._memo.get(("phrase", field, phrase), compute)

    def regex(self, field: str, pattern: Pattern) -> set[int]:
        def compute() -> set[int]:
            branches = required_literals(pattern.source)
            if branches:
                candidates = set().union(*(self._may_contain(field, b) for b in branches))
            else:
                candidates = self.all_ids()
            found = pattern.found
            values = self._raw_values(field, candidates)
            return {i for i, raw in values.items() if any(map(found, raw))}

        return self._memo.get(("regex", field, pattern), compute)

    def upvotes(self, op: str, n: int) -> set[int]:
        compare = _COMPARE[op]
        return self._memo.get(
            ("upvotes", op, n),
            lambda: {
                i
                for s in self._segments
                for i, votes in zip(s.ids, s.upvotes, strict=True)
                if compare(votes, n)
            },
        )

    # -- reading documents back ---------------------------------------------------------------

    def _raw_values(self, field: str, ids: Collection[int]) -> dict[int, tuple[str, ...]]:
        cache = self._raw[field]
        missing = [i for i in ids if i not in cache]
        if missing:
            cache.update(self._texts(field, missing))
        return {i: cache.get(i, ()) for i in ids}

    def _values(self, field: str, ids: Collection[int]) -> dict[int, tuple[tuple[str, ...], ...]]:
        """The words of each value of ``field``, as Document.values gives them."""
        return {
            i: tuple(tuple(tokenize(value)) for value in raw)
            for i, raw in self._raw_values(field, ids).items()
        }

    def _may_contain(self, field: str, literals: tuple[str, ...]) -> set[int]:
        """As ``MemoryIndex._may_contain``: a superset of the documents whose ``field``
        holds every one of ``literals``, ignoring case."""
        words = literal_words(literals)
        if not words:
            return self._folded_with(field, literals, self.all_ids())
        ascii_docs = set.intersection(*(self._containing(field, word) for word in words))
        n = _FIELD_NUMBER[field]
        odd = set().union(*(s.odd[n] for s in self._segments))
        return ascii_docs | self._folded_with(field, literals, odd)

    def _folded_with(self, field: str, literals: tuple[str, ...], ids: Collection[int]) -> set[int]:
        folded = self._folded[field]
        missing = [i for i in ids if i not in folded]
        for i, raw in self._raw_values(field, missing).items():
            folded[i] = fold("\n".join(raw))
        first, *others = literals
        return {
            i
            for i in ids
            if first in (text := folded[i]) and all(other in text for other in others)
        }
