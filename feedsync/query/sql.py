"""A query tree as SQL over the store's papers: one FTS5 MATCH per largest subtree that FTS5
can say, plain SQL around it (pure: the store runs it).

Rules, in order:
1. Words, phrases and wildcards become FTS5 strings with a column filter: the default
   fields are ``{title abstract keyword}``. A phrase is a quoted string, which FTS5 matches
   as consecutive words of one column; values of a multi-valued column are separated by a
   word no query holds (text.SEPARATOR), so it never runs across two authors.
2. AND, OR and NOT of FTS-sayable parts are one MATCH (FTS5's NOT is binary: ``a NOT b``
   needs an ``a``). A lone NOT, a NOT under OR, and anything that holds a regex or an
   upvotes comparison become SQL around MATCH subqueries: ``p.id IN (SELECT rowid ...)``.
3. ``upvotes:`` compares ``coalesce(p.upvotes, 0)``.
4. A regex runs, through the function ``feedsync_regex`` the store registers, on the raw
   values of each of its fields. When each of its matches must contain a word-like
   literal (letters and digits, three or more), the rows are screened first: those with a
   word (``search_terms``) holding that literal in one of the regex's columns, and those
   whose text there is not plain ASCII (``search_odd``: the words SQLite made of it may
   not be what the screen assumes, so the regex decides). See store/search.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from feedsync.query.regexes import literal_words, required_literals
from feedsync.query.tree import And, Node, Not, Or, Phrase, Prefix, Regex, Term, Upvotes
from feedsync.query.words import DEFAULT_FIELDS, FIELDS

FTS_TABLE = "papers_fts"
# A query field's papers column, and whether it holds a JSON list of values.
COLUMNS = {
    "title": ("title", False),
    "abstract": ("abstract", False),
    "keyword": ("ai_keywords", True),
    "author": ("authors", True),
    "org": ("organization", False),
}
REGEX_FUNCTION = "feedsync_regex"  # (pattern, value, is_list) -> 0 or 1
_OPS = {">=": ">=", "<=": "<=", ">": ">", "<": "<", "=": "="}


@dataclass(frozen=True, slots=True)
class Sql:
    """A condition over ``papers p`` and its parameters in order; ``common``, a WITH
    clause the condition needs (its parameters come first); ``match``, when the whole
    query is one FTS5 MATCH expression, which the store can then run alone."""

    where: str
    params: tuple[object, ...]
    common: str = ""
    match: str | None = None


def to_sql(node: Node, *, table: str = FTS_TABLE) -> Sql:
    """The condition that holds for the papers ``node`` matches. ``table``: another
    full-text table of the same columns to ask, such as one holding only an hourly run's
    new papers (regexes then run on each of its rows, unscreened)."""
    compiler = _Compiler(table)
    params: list[object] = []
    where = compiler.sql(node, params, 0)
    common = ""
    if compiler.parts:
        common = "WITH " + ", ".join(part for part, _ in compiler.parts)
        params = [p for _, part_params in compiler.parts for p in part_params] + params
    return Sql(where, tuple(params), common, match_expression(node))


# FTS5's parser has a small stack: a deeper group is said in SQL around shallower MATCHes.
MAX_DEPTH = 30


def match_expression(node: Node, depth: int = 0) -> str | None:
    """``node`` as one FTS5 MATCH expression, or None when FTS5 cannot say it (rule 2)."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(node, Term):
        return f'{_columns(node.field)} : "{node.token}"'
    if isinstance(node, Phrase):
        return f'{_columns(node.field)} : "{" ".join(node.tokens)}"'
    if isinstance(node, Prefix):
        return f'{_columns(node.field)} : "{node.prefix}"*'
    if isinstance(node, Or):
        parts = [match_expression(child, depth + 1) for child in node.children]
        if any(part is None for part in parts):
            return None
        return "(" + " OR ".join(p for p in parts if p is not None) + ")"
    if isinstance(node, And):
        positive = [match_expression(c, depth + 1) for c in node.children if not isinstance(c, Not)]
        negative = [
            match_expression(c.child, depth + 1) for c in node.children if isinstance(c, Not)
        ]
        if not positive or any(p is None for p in [*positive, *negative]):
            return None
        expression = "(" + " AND ".join(p for p in positive if p is not None) + ")"
        for part in negative:
            expression = f"({expression} NOT {part})"
        return expression
    return None


def _columns(field: str | None) -> str:
    return "{" + " ".join(DEFAULT_FIELDS) + "}" if field is None else field


# SQLite's own parser has a stack too: a group this deep in the SQL becomes a common table
# expression of its own, referenced by name (rule 2 at any depth).
SQL_DEPTH = 12


class _Compiler:
    def __init__(self, table: str) -> None:
        self.table = table
        self.parts: list[tuple[str, list[object]]] = []  # the WITH clause's, in order

    def sql(self, node: Node, params: list[object], depth: int) -> str:
        expression = match_expression(node)
        if expression is not None:
            return _match(expression, params, self.table)
        if depth >= SQL_DEPTH and isinstance(node, And | Or | Not):
            inner: list[object] = []
            body = self.sql(node, inner, 0)
            name = f"deep{len(self.parts)}"
            self.parts.append((f"{name}(id) AS (SELECT p.id FROM papers p WHERE {body})", inner))
            return f"p.id IN (SELECT id FROM {name})"
        if isinstance(node, Not):
            return f"NOT ({self.sql(node.child, params, depth + 1)})"
        if isinstance(node, Upvotes):
            params.append(node.n)
            return f"coalesce(p.upvotes, 0) {_OPS[node.op]} ?"
        if isinstance(node, Regex):
            return _regex(node, params, self.table)
        if isinstance(node, And | Or):
            return self.combined(node, params, depth)
        raise TypeError(f"cannot compile {node!r}")

    def combined(self, node: And | Or, params: list[object], depth: int) -> str:
        """AND / OR with the FTS-sayable children gathered into one MATCH, the rest
        around it."""
        sayable: list[Node] = [c for c in node.children if match_expression(c) is not None]
        others: list[Node] = [c for c in node.children if match_expression(c) is None]
        if isinstance(node, And) and sayable:
            # Negated sayable children join the MATCH of the positive ones (``a NOT b``).
            negated = [c for c in others if isinstance(c, Not) and match_expression(c.child)]
            others = [c for c in others if c not in negated]
            sayable += negated
        joined: list[Node] = []
        if len(sayable) > 1:
            group = And(tuple(sayable)) if isinstance(node, And) else Or(tuple(sayable))
            if match_expression(group) is not None:  # not when too deep for FTS5 as a whole
                joined = [group]
        # Regexes last: SQLite evaluates AND left to right, and a cheap index probe may
        # spare the regex most rows.
        others.sort(key=lambda c: any(isinstance(leaf, Regex) for leaf in c.leaves()))
        parts = [self.sql(child, params, depth + 1) for child in (joined or sayable) + others]
        glue = " AND " if isinstance(node, And) else " OR "
        return "(" + glue.join(parts) + ")"


def _match(expression: str, params: list[object], table: str) -> str:
    params.append(expression)
    return f"p.id IN (SELECT rowid FROM {table} WHERE {table} MATCH ?)"


def _regex(node: Regex, params: list[object], table: str) -> str:
    screen = _screen(node) if table == FTS_TABLE else None
    if screen is not None:
        params.extend(screen[1])  # written first, so its parameters come first
    tests = []
    for field in node.fields:
        column, is_list = COLUMNS[field]
        tests.append(f"{REGEX_FUNCTION}(?, p.{column}, {int(is_list)})")
        params.append(node.pattern.source)
    found = tests[0] if len(tests) == 1 else "(" + " OR ".join(tests) + ")"
    return found if screen is None else f"({screen[0]} AND {found})"


# A word no text holds (two separators are always apart): the MATCH of an empty term list.
_NO_WORD = '"\ue000\ue000"'


def _screen(node: Regex) -> tuple[str, list[object]] | None:
    """The rows a regex may match (rule 4), or None when it requires no word-like literal."""
    words = []
    for literals in required_literals(node.pattern.source):
        # The literal holding the longest word picks the fewest candidates.
        found = sorted(literal_words(literals), key=len)
        if not found:
            return None  # an alternative holds no literal word of three letters or more
        words.append(found[-1])
    if not words:
        return None
    columns = _columns(node.field)
    holding = " OR ".join("instr(term, ?)" for _ in words)
    expression = (
        f"(SELECT coalesce('{columns} : (' || group_concat('\"' || term || '\"', ' OR ')"
        f" || ')', '{columns} : {_NO_WORD}') FROM search_terms WHERE {holding})"
    )
    odd = sum(1 << FIELDS.index(field) for field in node.fields)
    rows = f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH {expression}"
    params: list[object] = [*words, odd]
    where = f"(p.id IN ({rows}) OR p.id IN (SELECT paper_id FROM search_odd WHERE columns & ?))"
    return where, params
