"""What the index learns from a regex without running it: the literal text every match
must contain (to pick candidates by their words), and a faster twin to screen them with.

A topic's regex is compiled with IGNORECASE, which `re` runs without any of its fast paths:
about 20 microseconds per abstract. Most candidates a literal picks do not match, so a
cheaper necessary test first (the twin) saves most of that.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable


def literal_words(literals: tuple[str, ...]) -> list[str]:
    """The longest run of letters and digits of each literal, where it is long enough (3+)
    to pick candidates by the indexed words that contain it."""
    longest = (max(_ASCII_WORD.findall(literal), key=len, default="") for literal in literals)
    return [word for word in longest if len(word) >= 3]


_ASCII_WORD = re.compile(r"[a-z0-9]+")


# Under IGNORECASE, `re` matches these four non-ASCII characters to ASCII letters; lower()
# does not (a test finds them by brute force). Everything else that matches an ASCII
# character case-insensitively is ASCII.
RE_FOLD_CHARS = {"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"}
_RE_FOLD = str.maketrans(RE_FOLD_CHARS)


def fold(text: str) -> str:
    """Lower case, so that an ASCII literal the regex requires is found with `in`."""
    if text.isascii() or not any(char in text for char in RE_FOLD_CHARS):
        return text.lower()  # translate() is slow on non-ASCII text: only when needed
    return text.translate(_RE_FOLD).lower()


_REGEX_SPECIAL = frozenset(".^$*+?{}[]|()\\")
_ESCAPE_WITH_ARGUMENTS = frozenset("xuUN0123456789")  # \x41, \N{...}, \1: not plain text
_VERBOSE_FLAG = re.compile(r"\(\?[a-zA-Z-]*x")


@functools.lru_cache(maxsize=256)
def required_literals(pattern: re.Pattern[str]) -> tuple[tuple[str, ...], ...]:
    """For each top-level alternative of ``pattern``, lower-cased ASCII strings that each of
    its matches contains; empty when some alternative has none (or the pattern is odd).

    Conservative: only literal runs outside groups and classes count, a run ends before a
    quantifier that may skip or repeat its last character, and verbose mode or an escape
    with arguments gives up.
    """
    source = pattern.pattern
    if pattern.flags & re.VERBOSE or _VERBOSE_FLAG.search(source):
        return ()
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
        i += 2 if source[i] == "\\" else 1
    return i + 1


Tester = Callable[[tuple[str, ...]], bool]


def regex_tester(pattern: re.Pattern[str]) -> Tester:
    """A test of whether ``pattern`` is found in any of some field values: the same answer
    as ``any(map(pattern.search, values))``, sooner."""
    search = pattern.search
    twin = lowercase_twin(pattern)
    if twin is None:
        return lambda values: any(map(search, values))
    screen = twin.search

    def test(values: tuple[str, ...]) -> bool:
        for value in values:
            if value.isascii():
                if screen(value.lower()) and search(value):
                    return True
            elif search(value):
                return True
        return False

    return test


@functools.lru_cache(maxsize=256)
def lowercase_twin(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    r"""A case-sensitive pattern that finds a match in the lower-cased form of any ASCII text
    in which ``pattern`` (compiled with IGNORECASE) finds one; None when that is not sure.

    It may also match where ``pattern`` does not, so it only screens. The twin is the
    pattern lower-cased outside escapes, without word-boundary assertions (removing an
    assertion only widens a pattern, and a leading ``\b`` stops `re` from jumping to its
    literal). Escapes that may stand for a capital letter (``\x41``, ``\101``,
    ``\N{...}``), backreferences by number, verbose mode and class ranges that hold
    letters but do not run from a letter to a letter of the same case give up.
    """
    source = pattern.pattern
    if not source.isascii() or pattern.flags & re.VERBOSE or _VERBOSE_FLAG.search(source):
        return None
    out: list[str] = []
    i, class_start = 0, -1  # class_start: where the open character class began, or -1
    previous: str | None = None  # the class's last item, if a plain character
    while i < len(source):
        char = source[i]
        if char == "\\":
            escaped = source[i + 1 : i + 2]
            if not escaped or escaped in _ESCAPE_WITH_ARGUMENTS:
                return None
            if not (class_start < 0 and escaped in "bB"):
                out.append(char + escaped)
            i, previous = i + 2, None
            continue
        if class_start >= 0:
            opening = source[class_start + 1 : i] in ("", "^")
            if char == "]" and not opening:
                class_start = -1
            elif char == "-" and not opening and source[i + 1 : i + 2] not in ("]", ""):
                # A range: both ends must be plain characters, and lower-casing it safe.
                high = source[i + 1]
                if previous is None or high == "\\" or not _safe_range(previous, high):
                    return None
            previous = char
        elif char == "[":
            class_start, previous = i, None
        out.append(char.lower())
        i += 1
    try:
        return re.compile("".join(out), pattern.flags & ~re.IGNORECASE)
    except re.error:
        return None


def _safe_range(low: str, high: str) -> bool:
    """Whether lower-casing the class range ``low-high`` keeps every character it matches
    ignoring case: it holds no letter, or runs from a letter to one of the same case."""
    if low.isalpha() and high.isalpha():
        return low.islower() == high.islower()
    return not any(c.isalpha() for c in map(chr, range(ord(low), ord(high) + 1)))
