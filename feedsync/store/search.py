"""The full-text table that topic queries run on: SQLite FTS5, kept in step with the papers.

Rules, in order:
1. ``papers_fts`` has one row per paper (same rowid) and one column per query field
   (feedsync.query.FIELDS): title, abstract, keyword, author, org. It is contentless (the
   text lives in ``papers`` already), tokenized by ``unicode61 remove_diacritics 0`` (words
   are runs of letters, digits and private-use characters, as the query language's; "é"
   stays apart from "e"), with prefix indexes for ``word*`` of two to four letters.
2. Text goes in NFKC-normalized, as query words are (SQLite folds case itself). The values
   of a multi-valued field (authors, keywords) are joined with the separator U+E000, a
   word of its own that no query can contain, so a phrase never runs from one author into
   the next.
3. Every upsert keeps it in step: a new paper is inserted; a paper whose searchable text
   changed is deleted with its old values (FTS5's 'delete', which needs exactly what was
   inserted), then inserted again. Nothing else writes it.
4. The values are computed by SQL functions registered on every connection, so the
   migration that fills the table for an existing store and the upsert use one definition.
   The Unicode version of that normalization is remembered: when Python's changes, the
   table is built again on open (deleting with values normalized differently from the
   insert would corrupt a contentless table).
"""

from __future__ import annotations

import functools
import json
import sqlite3
import unicodedata
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from feedsync.text import SEPARATOR

if TYPE_CHECKING:
    from feedsync.query.regexes import Pattern

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
# One paper's row of the FTS table, from its papers row.
INSERT = (
    f"INSERT INTO {FTS_TABLE} (rowid, title, abstract, keyword, author, org)"
    f" SELECT id, {_VALUES} FROM papers WHERE id = ?"
)
DELETE = (
    f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, title, abstract, keyword, author, org)"
    f" SELECT 'delete', id, {_VALUES} FROM papers WHERE id = ?"
)
FILL = (
    f"INSERT INTO {FTS_TABLE} (rowid, title, abstract, keyword, author, org)"
    f" SELECT id, {_VALUES} FROM papers"
)
EMPTY = f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('delete-all')"
UNICODE_KEY = "fts-unicode"  # meta: the Unicode version the table's text was normalized by


def fts_text(value: str | None) -> str:
    return unicodedata.normalize("NFKC", value) if value else ""


def fts_list(value: str | None) -> str:
    items = json.loads(value) if value else []
    return _JOIN.join(unicodedata.normalize("NFKC", item) for item in items if item)


def register(db: sqlite3.Connection) -> None:
    """The functions the FTS table's values are computed with (rule 4)."""
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
    """Store methods that run compiled queries; mixed into ``Store``, whose connection
    they use."""

    _db: sqlite3.Connection

    def select(
        self,
        where: str,
        params: Sequence[object],
        *,
        since_seq: int = 0,
        among: Collection[int] | None = None,
    ) -> set[int]:
        """The ids of the papers for which ``where``, a condition over ``papers p``
        (feedsync.query.sql), holds: of those changed after ``since_seq`` (all of them by
        default), or of the ids ``among``."""
        sql = f"SELECT p.id FROM papers p WHERE ({where})"
        if since_seq:
            sql += " AND p.seq > ?"
            params = (*params, since_seq)
        if among is not None:
            sql += " AND p.id IN (SELECT value FROM json_each(?))"
            params = (*params, json.dumps(sorted(among)))
        return {row[0] for row in self._db.execute(sql, tuple(params))}

    def changed_ids(self, since_seq: int) -> set[int]:
        """The ids of the papers changed after ``since_seq``."""
        return {r[0] for r in self._db.execute("SELECT id FROM papers WHERE seq > ?", (since_seq,))}
