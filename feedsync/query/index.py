"""The inverted index queries are evaluated against in bulk (``Query.select``)."""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from feedsync.query.regexes import Pattern, fold, literal_words, required_literals
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

    def regex(self, field: str, pattern: Pattern) -> set[int]: ...

    def upvotes(self, op: str, n: int) -> set[int]: ...


class Answers:
    """Each index's memo of answers by (kind, field, argument): computed once, until cleared."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, str, object], set[int]] = {}

    def get(self, key: tuple[str, str, object], compute: Callable[[], set[int]]) -> set[int]:
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = compute()
        return found

    def clear(self) -> None:
        self._found.clear()


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
        self._joined: dict[str, str | None] = dict.fromkeys(FIELDS)  # the vocab, for substrings
        self._memo = Answers()  # cleared on every change
        self._regexes: dict[tuple[str, Pattern], set[int]] = {}  # kept up to date
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
                self._vocab[field] = self._joined[field] = None
        for (field, odd_only), folded in self._folded.items():
            raw = doc.raw(field)
            if not (odd_only and _is_ascii(raw)):
                folded[doc_id] = fold("\n".join(raw))
        for (field, pattern), ids in self._regexes.items():
            if any(map(pattern.found, doc.raw(field))):
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
                    self._vocab[field] = self._joined[field] = None
        for folded in self._folded.values():
            folded.pop(doc_id, None)
        for spaced in self._spaced.values():
            spaced.pop(doc_id, None)
        for matching in self._regexes.values():
            matching.discard(doc_id)

    def all_ids(self) -> set[int]:
        return self._ids

    def documents(self) -> Mapping[int, Document]:
        return self._docs

    def postings(self, field: str) -> Mapping[str, list[int]]:
        """Each word of ``field`` and the ids of the documents that hold it (do not modify)."""
        return self._postings[field]

    def term(self, field: str, token: str) -> set[int]:
        return self._memo.get(
            ("term", field, token), lambda: set(self._postings[field].get(token, ()))
        )

    def prefix(self, field: str, prefix: str) -> set[int]:
        def compute() -> set[int]:
            postings = self._postings[field]
            words = self._expand(field, prefix)
            return set(itertools.chain.from_iterable(postings[w] for w in words))

        return self._memo.get(("prefix", field, prefix), compute)

    def phrase(self, field: str, tokens: Sequence[str]) -> set[int]:
        phrase = tuple(tokens)

        def compute() -> set[int]:
            candidates = phrase_candidates(self, field, phrase)
            needle, docs, spaced = _spaced((phrase,)), self._docs, self._spaced[field]
            found = set()
            for i in candidates:
                text = spaced.get(i)
                if text is None:
                    text = spaced[i] = _spaced(docs[i].values(field))
                if needle in text:
                    found.add(i)
            return found

        return self._memo.get(("phrase", field, phrase), compute)

    def regex(self, field: str, pattern: Pattern) -> set[int]:
        key = (field, pattern)
        if key not in self._regexes:
            self._regexes[key] = self._scan(field, pattern)
        return self._regexes[key]

    def upvotes(self, op: str, n: int) -> set[int]:
        compare = _COMPARE[op]
        return self._memo.get(
            ("upvotes", op, n),
            lambda: {i for i, doc in self._docs.items() if compare(doc.upvotes, n)},
        )

    def _expand(self, field: str, prefix: str) -> Iterator[str]:
        """The indexed words of ``field`` that start with ``prefix``, in order."""
        vocab = self._vocab[field]
        if vocab is None:
            vocab = self._vocab[field] = sorted(self._postings[field])
        for i in range(bisect_left(vocab, prefix), len(vocab)):
            if not vocab[i].startswith(prefix):
                break
            yield vocab[i]

    def _scan(self, field: str, pattern: Pattern) -> set[int]:
        found, docs = pattern.found, self._docs
        branches = required_literals(pattern.source)
        if not branches:
            return {i for i, doc in docs.items() if any(map(found, doc.raw(field)))}
        candidates = set().union(*(self._may_contain(field, branch) for branch in branches))
        return {i for i in candidates if any(map(found, docs[i].raw(field)))}

    def _may_contain(self, field: str, literals: tuple[str, ...]) -> set[int]:
        """A superset, usually small, of the documents whose ``field`` holds every one of
        ``literals`` (ignoring case), found without the regex engine: the regex then runs on
        these alone, not on every document."""
        words = literal_words(literals)
        if not words:
            return self._folded_with(field, literals, odd_only=False)
        # In ASCII text, a literal's run of letters and digits lies inside one word, so the
        # postings of the words that contain that run cover every ASCII document that can
        # match. Other text (which NFKC or case rules may have changed) is read instead.
        ascii_docs = set.intersection(*(self._having_word_with(field, w) for w in words))
        return ascii_docs | self._folded_with(field, literals, odd_only=True)

    def _having_word_with(self, field: str, part: str) -> set[int]:
        postings, joined = self._postings[field], self._joined[field]
        if joined is None:
            joined = self._joined[field] = "".join(word + "\n" for word in postings)
        words = words_containing(joined, part)
        return set(itertools.chain.from_iterable(postings[w] for w in words))

    def _folded_with(self, field: str, literals: tuple[str, ...], *, odd_only: bool) -> set[int]:
        """The documents (only those with non-ASCII text, if ``odd_only``) whose case-folded
        ``field`` contains every one of ``literals``."""
        key = (field, odd_only)
        if key not in self._folded:
            self._folded[key] = {
                i: fold("\n".join(doc.raw(field)))
                for i, doc in self._docs.items()
                if not (odd_only and _is_ascii(doc.raw(field)))
            }
        first, *others = literals
        return {
            i
            for i, text in self._folded[key].items()
            if first in text and all(other in text for other in others)
        }


def phrase_candidates(index: Index, field: str, phrase: tuple[str, ...]) -> set[int]:
    """The documents that hold every word of ``phrase`` (a new set): those to check for it."""
    sets = sorted((index.term(field, t) for t in set(phrase)), key=len)
    return sets[0].intersection(*sets[1:]) if sets else set()


def words_containing(joined: str, part: str) -> list[str]:
    """The words of ``joined`` (each followed by a newline) that contain ``part``.

    One C-speed search through all the words, rather than a Python test per word: a regex
    with a literal checks tens of thousands of words for it.
    """
    found = []
    at = joined.find(part)
    while at >= 0:
        start = joined.rfind("\n", 0, at) + 1
        end = joined.find("\n", at)
        found.append(joined[start:end])
        at = joined.find(part, end)
    return found


def _is_ascii(texts: tuple[str, ...]) -> bool:
    return all(map(str.isascii, texts))


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


_COMPARE: dict[str, Callable[[int, int], bool]] = {
    ">=": int.__ge__,
    "<=": int.__le__,
    ">": int.__gt__,
    "<": int.__lt__,
    "=": int.__eq__,
}
