"""The full-text table that topic queries run on: SQLite FTS5, kept in step with the papers.

Rules, in order:
1. ``papers_fts`` has one row per paper (same rowid) and one column per query field
   (feedsync.query.FIELDS): title, abstract, keyword, author, org. It is contentless (the
   text lives in ``papers`` already), tokenized by ``unicode61 remove_diacritics 0`` (words
   are runs of letters, digits and private-use characters, as the query language's; "é"
   stays apart from "e"), with prefix indexes for ``word*`` of two and three letters
   (longer prefixes are few terms each: the main index serves them).
2. Text goes in NFKC-normalized, as query words are (SQLite folds case itself). The values
   of a multi-valued field (authors, keywords) are joined with the separator U+E000, a
   word of its own that no query can contain, so a phrase never runs from one author into
   the next.
3. New papers are added in one batch when the table is next needed (``search_ready``):
   FTS5 writes a segment at every commit, and a backfill commits once per page, which
   made the table cost four times what one batch does. A paper already in the table whose
   searchable text changes is deleted with its old values (FTS5's 'delete' needs exactly
   what was inserted) and inserted again at once.
4. Beside it, for regexes: ``search_terms`` holds every word of the table's plain-ASCII
   values (a regex's required literal picks its candidates through the words that contain
   it), and ``search_odd`` marks each paper's columns whose text is not plain ASCII, where
   SQLite's words might differ from that screen's, so those rows are always candidates.
5. The values come from one definition (``values``), also registered as SQL functions for
   the deletes. The Unicode version of the normalization is remembered: when Python's
   changes, the table is built again (deleting with values normalized differently from
   the insert would corrupt a contentless table).
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import unicodedata
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedsync.store.sqlite import Transaction
from feedsync.text import SEPARATOR

if TYPE_CHECKING:
    from feedsync.query.regexes import Pattern
    from feedsync.query.sql import Sql

FTS_TABLE = "papers_fts"
# Searchable papers columns, in the order of the FTS table's columns, and whether each
# holds a JSON list.
SOURCES = (
    ("title", False),
    ("abstract", False),
    ("ai_keywords", True),
    ("authors", True),
    ("organization", False),
)
SEARCHABLE = frozenset(column for column, _ in SOURCES)
_JOIN = f" {SEPARATOR} "
_VALUES = ", ".join(
    f"fts_list({column})" if is_list else f"fts_text({column})" for column, is_list in SOURCES
)
_INSERT = (
    f"INSERT INTO {FTS_TABLE} (rowid, title, abstract, keyword, author, org)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
DELETE = (
    f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, title, abstract, keyword, author, org)"
    f" SELECT 'delete', id, {_VALUES} FROM papers WHERE id = ?"
)
_SOURCE_ROWS = "SELECT id, " + ", ".join(c for c, _ in SOURCES) + " FROM papers"
EMPTY = f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('delete-all')"
UNICODE_KEY = "fts-unicode"  # meta: the Unicode version the table's text was normalized by
CHANGED_TABLE = "changed_fts"  # temporary: the papers an hourly run changed
ROWID_KEY = "fts-rowid"
# Above this many papers in one batch, the words come from the table's vocabulary (which
# costs the same whatever the batch) rather than from cutting each text here.
_MANY = 2000  # meta: every paper up to this id is in the table
# ASCII letters and digits lowered, anything else a space: the words SQLite's unicode61
# makes of plain-ASCII text.
_WORD_BYTES = bytes(
    c + 32 if 65 <= c <= 90 else c if c < 128 and chr(c).isalnum() else 32 for c in range(256)
)


def fts_text(value: str | None) -> str:
    return unicodedata.normalize("NFKC", value) if value else ""


def fts_list(value: str | None) -> str:
    items = json.loads(value) if value else []
    return _JOIN.join(unicodedata.normalize("NFKC", item) for item in items if item)


def values(row: Sequence[Any]) -> tuple[str, ...]:
    """A paper's values in the table, from its searchable papers columns (in SOURCES order)."""
    return tuple(
        fts_list(value) if is_list else fts_text(value)
        for value, (_, is_list) in zip(row, SOURCES, strict=True)
    )


def register(db: sqlite3.Connection) -> None:
    """The functions the table's values are computed with in SQL, and the regex search."""
    db.create_function("fts_text", 1, fts_text, deterministic=True)
    db.create_function("fts_list", 1, fts_list, deterministic=True)
    db.create_function("feedsync_regex", 3, _regex, deterministic=True)


def instances(db: sqlite3.Connection) -> list[tuple[str, int, str, int]]:
    """Every (term, rowid, column, offset) the table holds: what a rebuilt table must equal
    (the tests compare the two; a contentless table cannot give its text back)."""
    db.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts_instances"
        f" USING fts5vocab(main, {FTS_TABLE}, 'instance')"
    )
    rows = db.execute("SELECT term, doc, col, offset FROM temp.fts_instances")
    return sorted(tuple(row) for row in rows)


def _words_and_oddness(texts: Sequence[str], *, words: bool) -> tuple[set[bytes], int]:
    found: set[bytes] = set()
    odd = 0
    for column, text in enumerate(texts):
        text = text.replace(SEPARATOR, " ")  # the one non-ASCII character that is ours
        if not text.isascii():
            odd |= 1 << column
        elif text and words:
            found.update(text.encode().translate(_WORD_BYTES).split())
    return found, odd


def _regex(source: str, value: str | None, is_list: int) -> int:
    """``feedsync_regex``: whether a topic regex matches a raw field value (for a list
    column, any of its values). Empty values are not searched: ``/x*/`` matches no paper
    by its missing organization."""
    if not value:
        return 0
    pattern = _compiled(source)
    if is_list:
        return int(any(item and pattern.found(item) for item in json.loads(value)))
    return int(pattern.found(value))


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> Pattern:
    # Imported here: a run that matches no regex never loads RE2 or the query package.
    from feedsync.query.regexes import compile_regex

    return compile_regex(source)


class SearchTables:
    """Store methods that keep the table up to date and run compiled queries on it; mixed
    into ``Store``, whose connection they use."""

    path: Path
    _db: sqlite3.Connection

    def _meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def search_ready(self) -> int:
        """Add the papers the table lacks, in one batch (rule 3); how many it added. Builds
        it afresh when Python's Unicode version is not the one it was built with."""
        fresh = self._meta(UNICODE_KEY) != unicodedata.unidata_version
        done = 0 if fresh else int(self._meta(ROWID_KEY) or 0)
        (newest,) = self._db.execute("SELECT coalesce(max(id), 0) FROM papers").fetchone()
        if newest <= done and not fresh:
            return 0
        db = self._db
        with Transaction(db, self.path):
            if fresh:
                db.execute(EMPTY)
                db.execute("DELETE FROM search_terms")
                db.execute("DELETE FROM search_odd")
            added = self._add(db.execute(_SOURCE_ROWS + " WHERE id > ? ORDER BY id", (done,)))
            for name, value in ((ROWID_KEY, newest), (UNICODE_KEY, unicodedata.unidata_version)):
                db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))
        return added

    def _add(self, rows: Iterable[Sequence[Any]]) -> int:
        batch = [(row[0], *values(row[1:])) for row in rows]
        many = len(batch) > _MANY
        words: set[bytes] = set()
        odd_rows = []
        for rowid, *texts in batch:
            found, odd = _words_and_oddness(texts, words=not many)
            words |= found
            if odd:
                odd_rows.append((rowid, odd))
        self._db.executemany(_INSERT, batch)
        self._db.executemany(
            "INSERT OR REPLACE INTO search_odd (paper_id, columns) VALUES (?, ?)", odd_rows
        )
        if many:
            # Many papers at once (a backfill): the table's own vocabulary, read in one pass,
            # costs a fraction of cutting every text into words here. It holds the words of
            # text that is not plain ASCII too: more words only make more candidates.
            self._db.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts_words"
                f" USING fts5vocab(main, {FTS_TABLE}, 'row')"
            )
            self._db.execute(
                "INSERT OR IGNORE INTO search_terms (term) SELECT term FROM temp.fts_words"
            )
        else:
            self._db.executemany(
                "INSERT OR IGNORE INTO search_terms (term) VALUES (?)",
                ((word.decode(),) for word in words),
            )
        return len(batch)

    def _forget_text(self, rowid: int) -> bool:
        """Before a paper's searchable text changes (in the upsert's transaction): take its
        old text out of the table, if it is there; whether it was."""
        if rowid > int(self._meta(ROWID_KEY) or 0):
            return False  # not added yet: it will be, with its new text
        self._db.execute(DELETE, (rowid,))
        self._db.execute("DELETE FROM search_odd WHERE paper_id = ?", (rowid,))
        return True

    def _learn_text(self, rowid: int) -> None:
        """After the change: the paper's new text in."""
        self._add(self._db.execute(_SOURCE_ROWS + " WHERE id = ?", (rowid,)))

    def select(
        self,
        query: Sql,
        *,
        since_seq: int = 0,
        among: Collection[int] | None = None,
    ) -> set[int]:
        """The ids of the papers a compiled query (feedsync.query.sql) holds for: of those
        changed after ``since_seq`` (all of them by default), or of the ids ``among``. The
        table must be ready (``search_ready``)."""
        sql = f"{query.common} SELECT p.id FROM papers p WHERE ({query.where})"
        params: tuple[object, ...] = query.params
        if since_seq:
            sql += " AND p.seq > ?"
            params = (*params, since_seq)
        if among is not None:
            sql += " AND p.id IN (SELECT value FROM json_each(?))"
            params = (*params, json.dumps(sorted(among)))
        return {row[0] for row in self._db.execute(sql, params)}

    def select_matching(self, expression: str) -> set[int]:
        """The ids of every paper an FTS5 MATCH expression holds for (no papers row read)."""
        rows = self._db.execute(
            f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ?", (expression,)
        )
        return {row[0] for row in rows}

    @contextlib.contextmanager
    def changed_table(self, since_seq: int) -> Iterator[tuple[str, set[int]]]:
        """A temporary full-text table of the papers changed after ``since_seq`` alone, and
        their ids: an hourly run's hundred queries each read a few rows there instead of
        long lists in the whole table (a 4-letter wildcard merges thousands of words)."""
        rows = self._db.execute(_SOURCE_ROWS + " WHERE seq > ?", (since_seq,)).fetchall()
        ids = {row[0] for row in rows}
        self._db.execute(
            f"CREATE VIRTUAL TABLE temp.{CHANGED_TABLE} USING fts5(title, abstract, keyword,"
            " author, org, content='', columnsize=0, tokenize='unicode61 remove_diacritics 0')"
        )
        try:
            insert = _INSERT.replace(FTS_TABLE, CHANGED_TABLE)
            self._db.executemany(insert, ((row[0], *values(row[1:])) for row in rows))
            yield CHANGED_TABLE, ids
        finally:
            self._db.execute(f"DROP TABLE temp.{CHANGED_TABLE}")
