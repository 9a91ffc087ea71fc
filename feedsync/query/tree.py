"""The compiled query: a tree of nodes, its canonical form, and the labels preview shows.

The tree says what a query means; query/sql.py says how the store finds it. ``str()`` of a
node is its canonical, fully parenthesized form, which compiles back to the same tree.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from feedsync.errors import QueryError
from feedsync.query.regexes import Pattern
from feedsync.query.words import DEFAULT_FIELDS, FIELDS, tokenize

# ---------------------------------------------------------------------------- the tree


class Node:
    """A node of a compiled query."""

    __slots__ = ()

    def leaves(self) -> Iterator[Leaf]:
        raise NotImplementedError


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

    def leaves(self) -> Iterator[Leaf]:
        yield self


@dataclass(frozen=True, slots=True)
class Term(Leaf):
    """One whole word."""

    field: str | None
    token: str

    def _form(self) -> str:
        return self.token


@dataclass(frozen=True, slots=True)
class Phrase(Leaf):
    """Consecutive words inside one field value."""

    field: str | None
    tokens: tuple[str, ...]

    def _form(self) -> str:
        return f'"{" ".join(self.tokens)}"'


@dataclass(frozen=True, slots=True)
class Prefix(Leaf):
    """Any word that starts with ``prefix``."""

    field: str | None
    prefix: str

    def _form(self) -> str:
        return f"{self.prefix}*"


@dataclass(frozen=True, slots=True)
class Regex(Leaf):
    """A case-insensitive regular expression (RE2) searched in each raw field value."""

    field: str | None
    pattern: Pattern

    def _form(self) -> str:
        escaped = self.pattern.source.replace("/", "\\/")
        return f"/{escaped}/"


@dataclass(frozen=True, slots=True)
class Upvotes(Leaf):
    """A comparison of the upvote count (missing counts as 0)."""

    op: str
    n: int
    field: str | None = dataclasses.field(default=None, init=False, repr=False)

    def _form(self) -> str:
        return f"upvotes:{'' if self.op == '=' else self.op}{self.n}"


@dataclass(frozen=True, slots=True)
class Not(Node):
    child: Node

    def leaves(self) -> Iterator[Leaf]:
        return self.child.leaves()

    def __str__(self) -> str:
        return f"NOT {self.child}"


@dataclass(frozen=True, slots=True)
class And(Node):
    children: tuple[Node, ...]

    def leaves(self) -> Iterator[Leaf]:
        for child in self.children:
            yield from child.leaves()

    def __str__(self) -> str:
        return f"({' AND '.join(map(str, self.children))})"


@dataclass(frozen=True, slots=True)
class Or(Node):
    children: tuple[Node, ...]

    def leaves(self) -> Iterator[Leaf]:
        for child in self.children:
            yield from child.leaves()

    def __str__(self) -> str:
        return f"({' OR '.join(map(str, self.children))})"


def conjunction(children: Sequence[Node]) -> Node:
    """The AND of ``children``, nested ANDs flattened; a single child alone."""
    flat = tuple(g for c in children for g in (c.children if isinstance(c, And) else (c,)))
    return flat[0] if len(flat) == 1 else And(flat)


def disjunction(children: Sequence[Node]) -> Node:
    """The OR of ``children``, nested ORs flattened; a single child alone."""
    flat = tuple(g for c in children for g in (c.children if isinstance(c, Or) else (c,)))
    return flat[0] if len(flat) == 1 else Or(flat)


# ---------------------------------------------------------------------------- the query


@dataclass(frozen=True, slots=True)
class Query:
    """A compiled query: ``text`` is its source, ``node`` the tree it compiled to."""

    text: str
    node: Node

    def leaves(self) -> list[Leaf]:
        """The terms, phrases, wildcards, regexes and comparisons, in source order."""
        return list(self.node.leaves())

    def canonical(self) -> str:
        """The fully parenthesized form, which compiles back to the same tree."""
        return str(self.node)


def all_of(queries: Iterable[Query]) -> Query:
    """One query that matches when every one of ``queries`` does."""
    parts = list(queries)
    if not parts:
        raise ValueError("all_of() needs at least one query")
    if len(parts) == 1:
        return parts[0]
    text = " AND ".join(f"({q.text})" if isinstance(q.node, Or) else q.text for q in parts)
    return Query(text, conjunction([q.node for q in parts]))


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
    return Query(" OR ".join(texts), disjunction(nodes))


def min_upvotes(n: int) -> Query:
    """A query that matches papers with at least ``n`` upvotes."""
    if n < 0:
        raise ValueError("min_upvotes() needs n >= 0")
    node = Upvotes(">=", n)
    return Query(str(node), node)
