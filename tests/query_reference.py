"""A plain evaluator of the query language, one paper at a time, with no index: what the
FTS5 engine must agree with (the README's rules, read as literally as possible).

Words are feedsync's own tokenizer's (NFKC, lower case, runs of letters and digits); a
phrase is consecutive words of one value; a regex searches each raw, non-empty value.
"""

from __future__ import annotations

from collections.abc import Iterator

from feedsync.models import Paper
from feedsync.query import tokenize
from feedsync.query.tree import And, Node, Not, Or, Phrase, Prefix, Regex, Term, Upvotes
from feedsync.query.words import DEFAULT_FIELDS

COMPARE = {
    ">=": int.__ge__,
    "<=": int.__le__,
    ">": int.__gt__,
    "<": int.__lt__,
    "=": int.__eq__,
}


def raw_values(paper: Paper, field: str) -> tuple[str, ...]:
    values: tuple[str | None, ...] = {
        "title": (paper.title,),
        "abstract": (paper.abstract,),
        "keyword": paper.ai_keywords,
        "author": paper.authors,
        "org": (paper.organization,),
    }[field]
    return tuple(v for v in values if v)


def word_values(paper: Paper, field: str) -> Iterator[list[str]]:
    for value in raw_values(paper, field):
        yield tokenize(value)


def fields(node: Term | Phrase | Prefix | Regex) -> tuple[str, ...]:
    return DEFAULT_FIELDS if node.field is None else (node.field,)


def has_phrase(words: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(words[i : i + n]) == phrase for i in range(len(words) - n + 1))


def matches(node: Node, paper: Paper) -> bool:
    if isinstance(node, Term):
        return any(node.token in w for f in fields(node) for w in word_values(paper, f))
    if isinstance(node, Phrase):
        return any(has_phrase(w, node.tokens) for f in fields(node) for w in word_values(paper, f))
    if isinstance(node, Prefix):
        return any(
            word.startswith(node.prefix)
            for f in fields(node)
            for words in word_values(paper, f)
            for word in words
        )
    if isinstance(node, Regex):
        return any(node.pattern.found(v) for f in fields(node) for v in raw_values(paper, f))
    if isinstance(node, Upvotes):
        return COMPARE[node.op](paper.upvotes or 0, node.n)
    if isinstance(node, Not):
        return not matches(node.child, paper)
    if isinstance(node, And):
        return all(matches(child, paper) for child in node.children)
    if isinstance(node, Or):
        return any(matches(child, paper) for child in node.children)
    raise TypeError(node)
