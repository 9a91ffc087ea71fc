r"""The topic query language: parse once, compile to SQL for the store, pure.

A topic's ``query`` is compiled once (:func:`compile_query`) into a :class:`Query`, a tree
of nodes (query/tree.py), which query/sql.py turns into a condition over the store's
full-text table (SQLite FTS5, store/search.py) and RE2 for regexes. A property test checks
the store's answers against a plain evaluator of the rules below (tests/query_reference.py).
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
4. ``/regex/`` is an RE2 regular expression searched, ignoring case, in each raw value
   (the text as written, not its words), in time linear in its length. RE2's syntax is
   Python's without lookaround, backreferences, possessive repeats or atomic groups, and
   its ``\w``, ``\d``, ``\s``, ``\b`` are ASCII only (see :mod:`feedsync.query.regexes`).
5. ``upvotes:>=N`` (also ``>``, ``<``, ``<=``, and ``upvotes:N`` for exactly N) compares
   the upvote count; a paper without one has 0.

A query that breaks the grammar raises :class:`~feedsync.errors.QueryError` with the 1-based
column of the culprit: unbalanced parentheses, an unterminated quote or regex, an operator
with nothing on one side, an empty query, group or phrase, an unknown field, a bad upvotes
value, a regex RE2 cannot compile (at the regex's column: RE2 tells no position), a
misplaced or too short wildcard, nesting over 100 levels deep.
"""

from __future__ import annotations

from feedsync.query.parse import compile_query
from feedsync.query.tree import (
    And,
    Leaf,
    Node,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    Regex,
    Term,
    Upvotes,
    all_of,
    any_phrase,
    min_upvotes,
)
from feedsync.query.words import DEFAULT_FIELDS, FIELDS, SEPARATOR, UPVOTE_OPS, tokenize

__all__ = [
    "DEFAULT_FIELDS",
    "FIELDS",
    "SEPARATOR",
    "UPVOTE_OPS",
    "And",
    "Leaf",
    "Node",
    "Not",
    "Or",
    "Phrase",
    "Prefix",
    "Query",
    "Regex",
    "Term",
    "Upvotes",
    "all_of",
    "any_phrase",
    "compile_query",
    "min_upvotes",
    "tokenize",
]
