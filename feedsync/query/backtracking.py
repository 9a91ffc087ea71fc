"""Finding the regexes that can take exponential time before any text meets them.

`re` backtracks, and it has no time limit: a repeated group whose iterations can divide
the same text in many ways, like ``(\\w+\\s?)+`` (a word may end anywhere, the space is
optional), tries every division before it gives up on a paper whose abstract does not match.
On a 1,500-character abstract that is longer than any run can wait, and a daemon would
hang on it for good. So such a regex is refused when the query is read, with a way out.

The test, on the parsed pattern: a repeat that may run many times (unbounded, or more than
``MANY`` times) is refused when its body holds an unbounded repeat X and every other part of
the body that must match at least one character can match some character X can. A part
that cannot (the ``\\s`` of ``(\\w+\\s)+``) marks where each iteration ends: one division.
Possessive repeats and atomic groups do not backtrack and are let through. It does not see
every slow regex (``(a|aa)+`` is let through): it catches the common accident.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import Any

# What re.compile itself parses and compiles with: there is no public parse tree. The
# modules are private (typeshed does not describe them); sre_parse, their public alias, is
# deprecated.
_parser: Any = importlib.import_module("re._parser")
_compiler: Any = importlib.import_module("re._compiler")
sre: Any = importlib.import_module("re._constants")  # the parser's names for its opcodes

MANY = 8  # a repeat bounded above this counts as "many times"
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT)
_NO_BACKTRACKING = (sre.POSSESSIVE_REPEAT, sre.ATOMIC_GROUP)
# Characters that stand for the classes a pattern can name: ASCII, and a few others that
# case folding or \w treats apart.
_SAMPLE = tuple(chr(c) for c in range(128)) + tuple("\u00a0\u00e9\u00df\u0131\u017f\u212a\u4e2d")

Item = tuple[Any, Any]  # (opcode, argument), as the parser gives them


def exponential_repeat(pattern: re.Pattern[str]) -> bool:
    """Whether ``pattern`` has a repeat that can backtrack exponentially (see above)."""
    try:
        tree = _parser.parse(pattern.pattern, pattern.flags)
        return any(_refused(item, pattern.flags) for item in _walk(list(tree)))
    except (re.error, RecursionError):  # it compiled: what this test cannot read, it lets be
        return False


def _walk(items: list[Item]) -> Iterator[Item]:
    """Every item of a parsed pattern, at any depth, except inside what cannot backtrack."""
    for item in items:
        op, av = item
        if op in _NO_BACKTRACKING:
            continue
        yield item
        for child in _children(op, av):
            yield from _walk(child)


def _children(op: Any, av: Any) -> list[list[Item]]:
    if op in _REPEATS:
        return [list(av[2])]
    if op is sre.SUBPATTERN:
        return [list(av[3])]
    if op is sre.BRANCH:
        return [list(branch) for branch in av[1]]
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return [list(av[1])]
    if op is sre.GROUPREF_EXISTS:
        return [list(branch) for branch in av[1:] if branch]
    return []


def _refused(item: Item, flags: int) -> bool:
    op, av = item
    if op not in _REPEATS:
        return False
    _low, high, body = av
    if high != sre.MAXREPEAT and high <= MANY:
        return False
    parts = list(_sequence(list(body)))
    for inner in parts:
        if inner[0] not in _REPEATS or inner[1][1] != sre.MAXREPEAT:
            continue
        inner_chars = _chars([inner], flags)
        others = [part for part in parts if part is not inner and _min_width(part) > 0]
        if all(not _chars([part], flags).isdisjoint(inner_chars) for part in others):
            return True
    return False


def _sequence(items: list[Item]) -> Iterator[Item]:
    """The parts of a body in order, with plain groups opened: ((a)b)+ is (ab)+."""
    for item in items:
        if item[0] is sre.SUBPATTERN:
            yield from _sequence(list(item[1][3]))
        else:
            yield item


def _min_width(item: Item) -> int:
    sub = _parser.SubPattern(_parser.State(), [item])
    return int(sub.getwidth()[0])


def _chars(items: list[Item], flags: int) -> frozenset[str]:
    """The sample characters that some single-character part of ``items`` matches."""
    found: set[str] = set()
    for op, av in items:
        children = _children(op, av)
        if children:
            for child in children:
                found |= _chars(child, flags)
        elif op in (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN, sre.CATEGORY):
            found |= _one_char(op, av, flags)
    return frozenset(found)


def _one_char(op: Any, av: Any, flags: int) -> frozenset[str]:
    """The sample characters one single-character part matches, as `re` itself decides
    (case folding included): the part is compiled alone and tried on each."""
    sub = _parser.SubPattern(_parser.State(), [(op, av)])
    matches = _compiler.compile(sub, flags).fullmatch
    return frozenset(char for char in _SAMPLE if matches(char))
