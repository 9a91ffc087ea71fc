r"""Topic regexes: compiled by RE2, and what the index learns from one without running it.

RE2 (google-re2) has no backtracking: a search takes time linear in the length of the
text, whatever the pattern. `re` backtracks without a time limit: ``(\w+|\s)+models``
took it 1.3 s on 32 characters of abstract-like text it does not match and 92 s on 40, so
one such topic would hang a run, a preview or the daemon for good.

Case is always ignored, as RE2 folds it (simple Unicode case folding: ASCII letters, and
the few other characters that fold to them, ſ and the Kelvin sign K; not Turkish ı or
İ). What RE2 cannot compile (lookaround, backreferences, possessive repeats, atomic
groups, Python's own escapes and flags) is refused when the query is read, with what to
write instead (:func:`compile_regex`).

The index picks a regex's candidates by the literal text each of its matches must contain
(:func:`required_literals`, read from the source), so that the regex runs on few papers.
"""

from __future__ import annotations

import functools
import re
from typing import Any


class RegexRefused(ValueError):
    """A regex RE2 cannot compile; the message says why, and what to write instead."""


class Pattern:
    """A topic regex compiled by RE2, ignoring case; equal when the sources are."""

    __slots__ = ("_regexp", "source")

    def __init__(self, source: str, regexp: Any) -> None:
        self.source = source
        self._regexp = regexp  # a re2 regexp over UTF-8 bytes

    # Texts are searched as UTF-8 bytes: for a str, the wrapper also maps the match's byte
    # offsets back to characters, which a yes or no never needs (measured on 109
    # abstract-sized candidates, most of which match: 5.4 µs per search rather than 11.7).
    # surrogatepass: a lone surrogate, invalid but possible in a str, must not stop a run.
    def found(self, text: str) -> bool:
        """Whether the regex matches somewhere in ``text``."""
        return self._regexp.search(text.encode("utf-8", "surrogatepass")) is not None

    def first(self, text: str) -> str | None:
        """The leftmost match in ``text`` (perhaps empty), or None."""
        match = self._regexp.search(text.encode("utf-8", "surrogatepass"))
        if match is None:
            return None
        found: bytes = match.group()
        return found.decode("utf-8", "replace")  # a match may end inside a lone surrogate

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and other.source == self.source

    def __hash__(self) -> int:
        return hash((Pattern, self.source))

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"


def compile_regex(source: str) -> Pattern:
    """``source`` compiled by RE2, ignoring case.

    Raises :class:`RegexRefused` when RE2 cannot compile it: RE2's reason, and for the
    syntax of Python's `re` that RE2 lacks, what to write instead.
    """
    import re2  # here, not above: a run whose topics hold no regex never loads it

    try:
        regexp = re2.compile(source.encode("utf-8", "surrogatepass"), _options())
    except re2.error as e:
        said = e.args[0] if e.args else b"cannot be compiled"
        reason = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
        instead = _instead(reason)
        raise RegexRefused(
            f"invalid regex: {reason}" + (f"; {instead}" if instead else "")
        ) from None
    return Pattern(source, regexp)


@functools.cache
def _options() -> Any:
    import re2

    options = re2.Options()
    options.case_sensitive = False
    # RE2 would also log each parse error to stderr (absl's "E0000 ... Error parsing"): the
    # error is raised, and reported as a query error, instead.
    options.log_errors = False
    # Only whether (and what) a regex matches is asked, never a group: RE2 then skips the
    # slower engines that track groups ((\w+\s)+x on 2,000 abstracts that all match: 9.1 µs
    # per search rather than 38.5).
    options.never_capture = True
    return options


# What RE2 says (its reason, which starts with one of these) for what Python's `re` knows and
# RE2 does not, and what to write instead.
_LOOKAROUND = (
    "RE2 has no lookaround: a(?=b) finds the same papers as ab, and (?<=b)a as ba; to leave "
    "papers out, use NOT in the query: /a/ -/b/"
)
_BACKREFERENCE = (
    "RE2 has no backreferences: spell out the texts the group may repeat, as in (aa|bb) for "
    "(a|b)\\1"
)
_POSSESSIVE = (
    "RE2 has no possessive repeats or atomic groups, and needs none: it never backtracks, so "
    "a plain repeat (a+) or group ((?:...)) is never slow"
)
_INSTEAD = (
    ("invalid perl operator: (?=", _LOOKAROUND),
    ("invalid perl operator: (?!", _LOOKAROUND),
    ("invalid perl operator: (?<=", _LOOKAROUND),
    ("invalid perl operator: (?<!", _LOOKAROUND),
    ("invalid perl operator: (?>", _POSSESSIVE),
    ("invalid perl operator: (?#", "RE2 has no comments (?#...): leave them out"),
    ("invalid escape sequence: \\Z", "RE2 writes the end of the text \\z"),
    ("invalid escape sequence: \\u", "write the character itself, or its code point as \\x{e9}"),
    ("invalid escape sequence: \\U", "write the character itself, or its code point as \\x{e9}"),
    ("invalid escape sequence: \\N", "write the character itself, or its code point as \\x{e9}"),
    (
        "invalid repetition size",
        "RE2 repeats at most 1000 times: {m,n} with n up to 1000, nested counts multiplied",
    ),
    (
        "pattern too large",
        "the compiled regex is over RE2's memory budget: use smaller repeat counts, or several "
        "regexes joined with OR",
    ),
)
_BACKREFERENCE_ESCAPE = re.compile(r"invalid escape sequence: \\[1-9]")
_PYTHON_FLAGS = re.compile(r"invalid perl operator: \(\?[a-zA-Z-]*[xauL]")


def _instead(reason: str) -> str | None:
    """What to write instead of the syntax RE2's ``reason`` refers to, if it is `re`'s."""
    for start, instead in _INSTEAD:
        if reason.startswith(start):
            return instead
    if _BACKREFERENCE_ESCAPE.match(reason) or reason == "invalid perl operator: (?P":  # (?P=name)
        return _BACKREFERENCE
    if reason.startswith("bad repetition operator: ") and reason.endswith("+"):
        return _POSSESSIVE  # a++ a*+ a?+ a{2}+
    if _PYTHON_FLAGS.match(reason):
        return "RE2 knows only the flags i, m, s and U (not x, a, u or L); case is always ignored"
    return None


# ---------------------------------------------------------------------------- literals


def literal_words(literals: tuple[str, ...]) -> list[str]:
    """The longest run of letters and digits of each literal, where it is long enough (3+)
    to pick candidates by the indexed words that contain it."""
    longest = (max(_ASCII_WORD.findall(literal), key=len, default="") for literal in literals)
    return [word for word in longest if len(word) >= 3]


_ASCII_WORD = re.compile(r"[a-z0-9]+")


# Ignoring case, RE2 matches these two non-ASCII characters to ASCII letters; lower() does
# not (a test finds them by brute force). Everything else that matches an ASCII character
# case-insensitively is ASCII.
FOLD_CHARS = {"\u017f": "s", "\u212a": "k"}
_FOLD = str.maketrans(FOLD_CHARS)


def fold(text: str) -> str:
    """Lower case, so that an ASCII literal the regex requires is found with `in`."""
    if text.isascii() or not any(char in text for char in FOLD_CHARS):
        return text.lower()  # translate() is slow on non-ASCII text: only when needed
    return text.translate(_FOLD).lower()


_REGEX_SPECIAL = frozenset(".^$*+?{}[]|()\\")
# \x41, \x{41}, \101, \1 and \Q...\E (quoted text): not plain text; give up.
_ESCAPE_WITH_ARGUMENTS = frozenset("xQ0123456789")
_NAMED_CLASS = frozenset("pP")  # \pL, \p{Greek}: a class, whose name is not text


@functools.lru_cache(maxsize=256)
def required_literals(source: str) -> tuple[tuple[str, ...], ...]:
    """For each top-level alternative of the regex ``source``, lower-cased ASCII strings
    that each of its matches contains; empty when some alternative has none (or the
    pattern is odd).

    Conservative: only literal runs outside groups and classes count, a run ends before a
    quantifier that may skip or repeat its last character, and an escape with arguments
    gives up.
    """
    branches: list[tuple[str, ...]] = []
    runs: list[str] = []
    run: list[str] = []
    depth, i = 0, 0
    while i < len(source):
        char, i = source[i], i + 1
        if char == "\\":
            char, i = source[i : i + 1], i + 1
            if char in _ESCAPE_WITH_ARGUMENTS:
                return ()
            if char in _NAMED_CLASS:  # skip the name: one letter, or {...}
                i = (source.find("}", i) + 1 or len(source)) if source[i : i + 1] == "{" else i + 1
            if depth == 0 and char.isascii() and char.isprintable() and not char.isalnum():
                run.append(char)  # \. \- \( and friends stand for themselves
            else:
                runs.append("".join(run))  # \b \d \s ...
                run = []
            continue
        if char in "?*{" and run:
            run.pop()  # the character before may be absent
        elif depth == 0 and char not in _REGEX_SPECIAL and char.isascii() and char.isprintable():
            run.append(char.lower())
            continue
        # Anything else ends the run ("x+" keeps its x but may repeat it).
        runs.append("".join(run))
        run = []
        depth += (char == "(") - (char == ")")
        if char == "[":
            i = _class_end(source, i - 1)
        elif char == "{":
            i = source.find("}", i) + 1 or len(source)
        elif char == "|" and depth == 0:
            branches.append(_longest(runs))
            runs = []
    branches.append(_longest([*runs, "".join(run)]))
    return () if () in branches else tuple(branches)


def _longest(runs: list[str]) -> tuple[str, ...]:
    return tuple(sorted((r for r in runs if len(r) >= 2), key=len, reverse=True)[:3])


def _class_end(source: str, start: int) -> int:
    """The index just past the character class that opens at ``start``."""
    i = start + 1
    if source[i : i + 1] == "^":
        i += 1
    if source[i : i + 1] == "]":
        i += 1  # a leading "]" is a member
    while i < len(source) and source[i] != "]":
        if source.startswith("[:", i) and (close := source.find(":]", i + 2)) != -1:
            i = close + 2  # [:alpha:], as RE2 reads it: up to the next ":]"
        else:
            i += 2 if source[i] == "\\" else 1
    return i + 1
