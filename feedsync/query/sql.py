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
   values of each of its fields; when every match must contain some literal text, a LIKE
   on the column screens the rows first (SQLite's LIKE ignores ASCII case only, so a row
   holding one of the two other characters RE2 folds to an ASCII letter, ſ and the Kelvin
   sign, is always let through to the regex).
"""

from __future__ import annotations

from dataclasses import dataclass

from feedsync.query.regexes import FOLD_CHARS, required_literals
from feedsync.query.tree import And, Node, Not, Or, Phrase, Prefix, Regex, Term, Upvotes
from feedsync.query.words import DEFAULT_FIELDS

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
    """A condition over ``papers p``, and its parameters in order."""

    where: str
    params: tuple[object, ...]


def to_sql(node: Node, *, floor: int | None = None) -> Sql:
    """The condition that holds for the papers ``node`` matches. ``floor``: only rows from
    that id on are asked of the full-text table (an hourly run's new papers)."""
    params: list[object] = []
    return Sql(_sql(node, params, floor), tuple(params))


def match_expression(node: Node) -> str | None:
    """``node`` as one FTS5 MATCH expression, or None when FTS5 cannot say it (rule 2)."""
    if isinstance(node, Term):
        return f'{_columns(node.field)} : "{node.token}"'
    if isinstance(node, Phrase):
        return f'{_columns(node.field)} : "{" ".join(node.tokens)}"'
    if isinstance(node, Prefix):
        return f'{_columns(node.field)} : "{node.prefix}"*'
    if isinstance(node, Or):
        parts = [match_expression(child) for child in node.children]
        if any(part is None for part in parts):
            return None
        return "(" + " OR ".join(p for p in parts if p is not None) + ")"
    if isinstance(node, And):
        positive = [match_expression(c) for c in node.children if not isinstance(c, Not)]
        negative = [match_expression(c.child) for c in node.children if isinstance(c, Not)]
        if not positive or any(p is None for p in [*positive, *negative]):
            return None
        expression = "(" + " AND ".join(p for p in positive if p is not None) + ")"
        for part in negative:
            expression = f"({expression} NOT {part})"
        return expression
    return None


def _columns(field: str | None) -> str:
    return "{" + " ".join(DEFAULT_FIELDS) + "}" if field is None else field


def _sql(node: Node, params: list[object], floor: int | None) -> str:
    expression = match_expression(node)
    if expression is not None:
        return _match(expression, params, floor)
    if isinstance(node, Not):
        return f"NOT ({_sql(node.child, params, floor)})"
    if isinstance(node, Upvotes):
        params.append(node.n)
        return f"coalesce(p.upvotes, 0) {_OPS[node.op]} ?"
    if isinstance(node, Regex):
        return _regex(node, params)
    if isinstance(node, And | Or):
        return _combined(node, params, floor)
    raise TypeError(f"cannot compile {node!r}")


def _combined(node: And | Or, params: list[object], floor: int | None) -> str:
    """AND / OR with the FTS-sayable children gathered into one MATCH, the rest around it."""
    sayable: list[Node] = [c for c in node.children if match_expression(c) is not None]
    others: list[Node] = [c for c in node.children if match_expression(c) is None]
    if isinstance(node, And) and sayable:
        # Negated sayable children join the MATCH of the positive ones (``a NOT b``).
        negated = [c for c in others if isinstance(c, Not) and match_expression(c.child)]
        others = [c for c in others if c not in negated]
        sayable += negated
    joined: list[Node] = []
    if len(sayable) > 1:
        joined = [And(tuple(sayable)) if isinstance(node, And) else Or(tuple(sayable))]
    # Regexes last: SQLite evaluates AND left to right, and a cheap index probe may spare
    # the regex most rows.
    others.sort(key=lambda c: any(isinstance(leaf, Regex) for leaf in c.leaves()))
    parts = [_sql(child, params, floor) for child in (joined or sayable) + others]
    glue = " AND " if isinstance(node, And) else " OR "
    return "(" + glue.join(parts) + ")"


def _match(expression: str, params: list[object], floor: int | None) -> str:
    params.append(expression)
    if floor is None:
        return f"p.id IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ?)"
    params.append(floor)
    return f"p.id IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ? AND rowid >= ?)"


def _regex(node: Regex, params: list[object]) -> str:
    source = node.pattern.source
    screen = _screen(source)
    tests = []
    for field in node.fields:
        column, is_list = COLUMNS[field]
        test = f"{REGEX_FUNCTION}(?, p.{column}, {int(is_list)})"
        if screen is not None:
            test = f"({screen.format(column=f'p.{column}')} AND {test})"
            params.extend(_screen_params(source, is_list))
        params.append(source)
        tests.append(test)
    return tests[0] if len(tests) == 1 else "(" + " OR ".join(tests) + ")"


def _screen(source: str) -> str | None:
    """A LIKE that every value the regex matches passes (rule 4), as a template."""
    branches = required_literals(source)
    if not branches:
        return None
    likes = " OR ".join("{column} LIKE ? ESCAPE '\\'" for _ in branches)
    folds = " OR ".join("instr({column}, ?)" for _ in FOLD_CHARS)
    return f"({likes} OR {folds})"


def _screen_params(source: str, is_list: bool) -> list[object]:
    out: list[object] = []
    for literals in required_literals(source):
        longest = literals[0]
        if is_list and ('"' in longest or "\\" in longest):
            longest = ""  # JSON escapes these in a list column: screen on nothing
        escaped = longest.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        out.append(f"%{escaped}%")
    out.extend(FOLD_CHARS)
    return out
