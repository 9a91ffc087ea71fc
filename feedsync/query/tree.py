"""The compiled query: a tree of nodes that matches one document or selects from an index."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from feedsync.errors import QueryError
from feedsync.query.index import _COMPARE, Index, _has_phrase
from feedsync.query.regexes import Pattern
from feedsync.query.words import DEFAULT_FIELDS, FIELDS, Document, tokenize

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
    """A case-insensitive RE2 regular expression searched in each raw field value."""

    field: str | None
    pattern: Pattern

    def matches(self, doc: Document) -> bool:
        found = self.pattern.found
        return any(found(text) for field in self.fields for text in doc.raw(field))

    def _hits(self, doc: Document) -> list[str]:
        first = self.pattern.first
        return [hit for f in self.fields for t in doc.raw(f) if (hit := first(t)) is not None]

    def _select(self, index: Index, field: str) -> set[int]:
        return index.regex(field, self.pattern)

    def _form(self) -> str:
        escaped = self.pattern.source.replace("/", "\\/")
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
    # Imported here: the parser builds this module's nodes, so it imports this module.
    from feedsync.query.parse import _Parser

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
