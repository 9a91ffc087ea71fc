"""The Zotero sync's bookkeeping tables, per library (see feedsync/zotero/sync.py)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from feedsync.store.rows import iso
from feedsync.store.sqlite import Transaction


@dataclass(frozen=True, slots=True)
class ZoteroItemState:
    """What the Zotero sync knows of one paper's item (see feedsync/zotero/sync.py).

    ``status``: ``pending`` (key chosen, create sent or about to be, outcome unknown),
    ``synced`` (Zotero holds it at ``version``, filed in ``collections``) or ``failed`` (the
    last write was refused: ``error``). ``version`` 0 means Zotero has not confirmed it.
    """

    arxiv_id: str
    key: str
    version: int
    status: str
    collections: tuple[str, ...] = ()
    attachment: str | None = None
    attempts: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ZoteroCollectionState:
    """A collection feedsync owns: ``slug`` '' is the parent, else the topic's."""

    slug: str
    name: str
    parent: str
    key: str


class ZoteroTables:
    """Store methods for the Zotero tables; mixed into ``Store``, whose connection they use.

    Rows are per library, so pointing feedsync at another library starts afresh instead
    of trusting keys that mean nothing there.
    """

    path: Path
    _db: sqlite3.Connection
    _clock: Callable[[], datetime]

    def zotero_items(self, library: str) -> dict[str, ZoteroItemState]:
        """The library's item states by arXiv id."""
        rows = self._db.execute("SELECT * FROM zotero_items WHERE library = ?", (library,))
        return {
            r["arxiv_id"]: ZoteroItemState(
                arxiv_id=r["arxiv_id"],
                key=r["key"],
                version=r["version"],
                status=r["status"],
                collections=tuple(json.loads(r["collections"])),
                attachment=r["attachment"],
                attempts=r["attempts"],
                error=r["error"],
            )
            for r in rows
        }

    def save_zotero_items(self, library: str, states: Iterable[ZoteroItemState]) -> None:
        now = iso(self._clock())
        with Transaction(self._db, self.path):
            self._db.executemany(
                "INSERT OR REPLACE INTO zotero_items (library, arxiv_id, key, version, status,"
                " collections, attachment, attempts, error, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        library,
                        s.arxiv_id,
                        s.key,
                        s.version,
                        s.status,
                        json.dumps(list(s.collections)),
                        s.attachment,
                        s.attempts,
                        s.error,
                        now,
                    )
                    for s in states
                ),
            )

    def zotero_collections(self, library: str) -> dict[str, ZoteroCollectionState]:
        """The library's collections feedsync owns, by topic slug ('' for the parent)."""
        sql = "SELECT slug, name, parent, key FROM zotero_collections WHERE library = ?"
        return {
            r["slug"]: ZoteroCollectionState(r["slug"], r["name"], r["parent"], r["key"])
            for r in self._db.execute(sql, (library,))
        }

    def save_zotero_collections(
        self, library: str, states: Iterable[ZoteroCollectionState]
    ) -> None:
        with Transaction(self._db, self.path):
            self._db.executemany(
                "INSERT OR REPLACE INTO zotero_collections (library, slug, name, parent, key)"
                " VALUES (?, ?, ?, ?, ?)",
                ((library, s.slug, s.name, s.parent, s.key) for s in states),
            )

    def forget_zotero_collections(self, library: str, keys: Iterable[str]) -> None:
        """Drop collections Zotero says are gone, and the subcollections under them."""
        gone = list(keys)
        with Transaction(self._db, self.path):
            self._db.executemany(
                "DELETE FROM zotero_collections WHERE library = ? AND (key = ? OR parent = ?)",
                ((library, k, k) for k in gone),
            )
