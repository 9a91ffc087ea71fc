"""The word segments' table, and reading papers back by id range or field for matching."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator
from pathlib import Path

from feedsync.models import Paper
from feedsync.store.rows import SELECT_PAPERS, paper_from_row
from feedsync.store.sqlite import Transaction

# A query field's column, and whether it holds a JSON list (one value per item).
_FIELD_COLUMNS = {
    "title": ("title", False),
    "abstract": ("abstract", False),
    "keyword": ("ai_keywords", True),
    "author": ("authors", True),
    "org": ("organization", False),
}


class SegmentTables:
    """Store methods for word segments; mixed into ``Store``, whose connection they use."""

    path: Path
    _db: sqlite3.Connection

    def word_segments(self) -> dict[int, tuple[int, int]]:
        """(last paper id, seq when built) of each stored segment, by its first paper id."""
        rows = self._db.execute("SELECT first, last, seq FROM word_segments")
        return {first: (last, seq) for first, last, seq in rows}

    def word_segment(self, first: int) -> bytes | None:
        row = self._db.execute("SELECT data FROM word_segments WHERE first = ?", (first,))
        found = row.fetchone()
        return bytes(found[0]) if found else None

    def save_word_segment(self, first: int, last: int, seq: int, data: bytes) -> None:
        """Store a segment of ids ``first`` to ``last``, replacing any it covers."""
        with Transaction(self._db, self.path):
            self._db.execute("DELETE FROM word_segments WHERE first BETWEEN ? AND ?", (first, last))
            self._db.execute(
                "INSERT OR REPLACE INTO word_segments (first, last, seq, data) VALUES (?, ?, ?, ?)",
                (first, last, seq, data),
            )

    def max_paper_id(self) -> int:
        return int(self._db.execute("SELECT coalesce(max(id), 0) FROM papers").fetchone()[0])

    def changed_between(self, first: int, last: int, since_seq: int) -> set[int]:
        """Ids from ``first`` to ``last`` of papers changed after ``since_seq``."""
        rows = self._db.execute(
            "SELECT id FROM papers WHERE seq > ? AND id BETWEEN ? AND ?", (since_seq, first, last)
        )
        return {r[0] for r in rows}

    def documents_between(self, first: int, last: int) -> Iterator[tuple[int, Paper]]:
        """(row id, paper) for the papers with ids from ``first`` to ``last``."""
        for row in self._db.execute(SELECT_PAPERS + " WHERE id BETWEEN ? AND ?", (first, last)):
            yield row["id"], paper_from_row(row)

    def documents_by_id(self, ids: Collection[int]) -> Iterator[tuple[int, Paper]]:
        sql = SELECT_PAPERS + " WHERE id IN (SELECT value FROM json_each(?))"
        for row in self._db.execute(sql, (json.dumps(sorted(ids)),)):
            yield row["id"], paper_from_row(row)

    def field_texts(self, field: str, ids: Collection[int]) -> dict[int, tuple[str, ...]]:
        """The raw values of a query field (feedsync.query.FIELDS) of some papers, as
        ``Document.raw`` gives them: empty values left out."""
        column, is_list = _FIELD_COLUMNS[field]
        sql = f"SELECT id, {column} FROM papers WHERE id IN (SELECT value FROM json_each(?))"
        out: dict[int, tuple[str, ...]] = {}
        for rowid, value in self._db.execute(sql, (json.dumps(sorted(ids)),)):
            if is_list:
                out[rowid] = tuple(filter(None, json.loads(value)))
            else:
                out[rowid] = (value,) if value else ()
        return out
