"""Lexing and parsing the query language into the tree (see the package docstring)."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from feedsync.errors import QueryError
from feedsync.query.regexes import RegexRefused, compile_regex
from feedsync.query.tree import (
    Node,
    Not,
    Phrase,
    Prefix,
    Query,
    Regex,
    Term,
    Upvotes,
    conjunction,
    disjunction,
)
from feedsync.query.words import FIELDS, UPVOTE_OPS, is_word_char, tokenize


def compile_query(text: str) -> Query:
    """Parse ``text``; raises :class:`QueryError` with a 1-based column on a syntax error."""
    return Query(text, _Parser(text).parse())


# ---------------------------------------------------------------------------- lexing

_KEYWORDS = ("AND", "OR", "NOT")
_FIELD_NAMES = (*FIELDS, "upvotes")
_FIELD = re.compile(r"([A-Za-z_]+):")
_COMPARISON = re.compile(rf"({'|'.join(UPVOTE_OPS)})?(\d+)(?=[\s()]|$)")
_WORD_END = re.compile(r'[\s()"]')
# Turns an atom into a node once the parser knows its field (None: the default fields).
Make = Callable[[str | None], Node]


@dataclass(frozen=True, slots=True)
class _Lexeme:
    kind: str  # "(", ")", "AND", "OR", "NOT", "-", "field", "atom" or "end"
    text: str
    column: int  # 1-based
    make: Make | None = None


class _Lexer:
    """Cuts the query into lexemes; atoms (words, phrases, regexes) are checked here."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.out: list[_Lexeme] = []

    def error(self, message: str, pos: int) -> QueryError:
        return QueryError(message, self.text, pos + 1)

    def run(self) -> list[_Lexeme]:
        text = self.text
        while True:
            while self.pos < len(text) and text[self.pos].isspace():
                self.pos += 1
            if self.pos >= len(text):
                self.out.append(_Lexeme("end", "", len(text) + 1))
                return self.out
            self.item()

    def emit(self, kind: str, start: int, end: int, make: Make | None = None) -> None:
        self.out.append(_Lexeme(kind, self.text[start:end], start + 1, make))
        self.pos = end

    def item(self) -> None:
        text, start = self.text, self.pos
        char = text[start]
        if char in "()":
            self.emit(char, start, start + 1)
        elif char == "-":
            if start + 1 == len(text) or text[start + 1].isspace() or text[start + 1] == ")":
                raise self.error("'-' needs a term right after it", start)
            self.emit("-", start, start + 1)
        elif char in '"/':
            self.value()
        elif match := _FIELD.match(text, start):
            self.field(match)
        else:
            end = self.word_end(start)
            word = text[start:end]
            if word in _KEYWORDS:
                self.emit(word, start, end)
            else:
                self.emit("atom", start, end, self.word(word, start))

    def word_end(self, start: int) -> int:
        match = _WORD_END.search(self.text, start)
        return match.start() if match else len(self.text)

    def field(self, match: re.Match[str]) -> None:
        name, start, after = match.group(1).lower(), match.start(), match.end()
        if name not in _FIELD_NAMES:
            known = ", ".join(_FIELD_NAMES)
            raise self.error(f"unknown field '{match.group(1)}' (known fields: {known})", start)
        if name == "upvotes":
            self.upvotes(after)
            return
        text = self.text
        if after == len(text) or text[after].isspace() or text[after] == ")":
            raise self.error(f"'{match.group()}' needs a value right after it", start)
        if text[after] == "-":
            raise self.error(f"put '-' before the field: -{match.group()}…", after)
        if _FIELD.match(text, after):
            raise self.error("a field cannot follow another field", after)
        self.out.append(_Lexeme("field", name, start + 1))
        self.pos = after
        if text[after] != "(":
            self.value()

    def value(self) -> None:
        """A word, phrase or regex: anything that can follow a field (keywords included)."""
        start = self.pos
        char = self.text[start]
        if char == '"':
            self.phrase(start)
        elif char == "/":
            self.regex(start)
        else:
            end = self.word_end(start)
            self.emit("atom", start, end, self.word(self.text[start:end], start))

    def upvotes(self, start: int) -> None:
        match = _COMPARISON.match(self.text, start)
        if not match:
            raise self.error("upvotes needs a count such as upvotes:>=10 or upvotes:5", start)
        node = Upvotes(match.group(1) or "=", int(match.group(2)))
        self.emit("atom", start - len("upvotes:"), match.end(), lambda _field: node)

    def word(self, word: str, start: int) -> Make:
        star = word.find("*")
        if star != -1 and star != len(word) - 1:
            raise self.error("'*' is only allowed at the end of a word", start + star)
        body = word[:-1] if star != -1 else word
        tokens = tuple(tokenize(body))
        if not tokens:
            if star != -1 and not body:
                raise self.error("'*' alone would match everything", start)
            raise self.error(f"'{word}' has no letters or digits", start)
        if star == -1:
            return _make_words(tokens)
        if not is_word_char(body[-1]):
            raise self.error("'*' must follow a letter or digit", start + star)
        if len(tokens) > 1:
            raise self.error("a wildcard applies to a single word", start)
        if len(tokens[0]) < 2:
            raise self.error("a wildcard needs at least 2 letters before '*'", start)
        return functools.partial(Prefix, prefix=tokens[0])

    def phrase(self, start: int) -> None:
        end = self.text.find('"', start + 1)
        if end == -1:
            raise self.error("unterminated quote", start)
        content = self.text[start + 1 : end]
        tokens = tuple(tokenize(content))
        if not tokens:
            raise self.error("empty phrase", start)
        stripped = content.rstrip()
        if stripped.endswith("*") and is_word_char(stripped[-2:-1] or " "):
            raise self.error("wildcards are not supported inside quotes", start + len(stripped))
        self.emit("atom", start, end + 1, _make_words(tokens))

    def regex(self, start: int) -> None:
        source, columns = self.regex_source(start)
        if not source:
            raise self.error("empty regex", start)
        try:
            pattern = compile_regex(source)
        except RegexRefused as e:
            # RE2 says what is wrong but not where: the column is the regex's start.
            raise self.error(str(e), start) from None
        end = columns[-1] + 1
        if end < len(self.text) and not _WORD_END.match(self.text, end):
            message = "a space must follow a regex (there are no flags: case is always ignored)"
            raise self.error(message, end)
        self.emit("atom", start, end, functools.partial(Regex, pattern=pattern))

    def regex_source(self, start: int) -> tuple[str, list[int]]:
        """The pattern between slashes with ``\\/`` unescaped, and each char's position.

        The last position is that of the closing slash.
        """
        text, chars, columns = self.text, [], []
        i = start + 1
        while i < len(text) and text[i] != "/":
            if text[i] == "\\" and i + 1 < len(text):
                if text[i + 1] != "/":
                    chars.append("\\")
                    columns.append(i)
                i += 1
            chars.append(text[i])
            columns.append(i)
            i += 1
        if i >= len(text):
            raise self.error("unterminated regex", start)
        return "".join(chars), [*columns, i]


def _make_words(tokens: tuple[str, ...]) -> Make:
    if len(tokens) == 1:
        return functools.partial(Term, token=tokens[0])
    return functools.partial(Phrase, tokens=tokens)


# ---------------------------------------------------------------------------- parsing

_STARTS = ("atom", "field", "(", "-", "NOT", "AND")  # what may follow an AND (or begin one)
_MAX_DEPTH = 100  # nested groups and negations; deeper would exhaust Python's stack


class _Parser:
    """Recursive descent over the lexemes, one method per grammar rule."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lexemes = _Lexer(text).run()
        self.pos = 0
        self.depth = 0

    def peek(self) -> _Lexeme:
        return self.lexemes[self.pos]

    def next(self) -> _Lexeme:
        lexeme = self.lexemes[self.pos]
        self.pos += 1
        return lexeme

    def error(self, message: str, lexeme: _Lexeme) -> QueryError:
        return QueryError(message, self.text, lexeme.column)

    def parse(self) -> Node:
        node = self.or_(None)
        if self.peek().kind == ")":
            raise self.error("unbalanced ')': there is no '(' to close", self.peek())
        return node

    def or_(self, field: str | None) -> Node:
        children = [self.and_(field, None)]
        while self.peek().kind == "OR":
            children.append(self.and_(field, self.next()))
        return disjunction(children)

    def and_(self, field: str | None, after: _Lexeme | None) -> Node:
        children = [self.unary(field, after)]
        while self.peek().kind in _STARTS:
            op = self.next() if self.peek().kind == "AND" else None
            children.append(self.unary(field, op))
        return conjunction(children)

    def unary(self, field: str | None, after: _Lexeme | None) -> Node:
        lexeme = self.peek()
        if lexeme.kind in ("NOT", "-"):
            with self.nested():
                return Not(self.unary(field, self.next()))
        if lexeme.kind == "field":
            self.next()
            return self.group(lexeme.text) if self.peek().kind == "(" else self.atom(lexeme.text)
        if lexeme.kind == "(":
            return self.group(field)
        if lexeme.kind == "atom":
            return self.atom(field)
        raise self.missing(lexeme, after)

    @contextlib.contextmanager
    def nested(self) -> Iterator[None]:
        """One more level of groups and negations; too many would exhaust the stack."""
        if self.depth == _MAX_DEPTH:
            raise self.error(f"too deeply nested (more than {_MAX_DEPTH} levels)", self.peek())
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def atom(self, field: str | None) -> Node:
        make = self.next().make
        assert make is not None
        return make(field)

    def group(self, field: str | None) -> Node:
        with self.nested():
            opening = self.next()
            node = self.or_(field)
        if self.peek().kind != ")":
            raise self.error("unbalanced '(': it is never closed", opening)
        self.next()
        return node

    def missing(self, lexeme: _Lexeme, after: _Lexeme | None) -> QueryError:
        """The error for a place that needs a term but holds ``lexeme``."""
        previous = self.lexemes[self.pos - 1] if self.pos else None
        if after is not None:
            name = "'-'" if after.kind == "-" else after.text
            return self.error(f"{name} needs a term after it", after)
        if lexeme.kind in ("AND", "OR"):
            return self.error(f"{lexeme.kind} needs a term before it", lexeme)
        if previous is not None and previous.kind == "(":
            if lexeme.kind == ")":
                return self.error("empty group '()'", previous)
            return self.error("unbalanced '(': it is never closed", previous)
        if lexeme.kind == ")":
            return self.error("unbalanced ')': there is no '(' to close", lexeme)
        return QueryError("empty query", self.text, 1)
