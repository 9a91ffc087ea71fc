"""SQLite plumbing: a connection that words its errors, and write transactions."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from feedsync.errors import StorageError


class Connection(sqlite3.Connection):
    """A connection whose every statement turns sqlite3 errors into StorageError.

    So a damaged or foreign database file is a message and exit code 3 wherever it shows
    up, never a traceback. Transactions use the raw methods to word their own errors.
    """

    store_path: Path = Path("?")

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as e:
            raise StorageError(f"cannot use the store {self.store_path}: {e}") from e

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.Error as e:
            raise StorageError(f"cannot use the store {self.store_path}: {e}") from e


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception; sqlite errors wrapped once."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> None:
        try:
            sqlite3.Connection.execute(self._db, "BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise StorageError(f"cannot write to the store {self._path}: {e}") from e

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc_type is None:
            try:
                sqlite3.Connection.execute(self._db, "COMMIT")
            except sqlite3.Error as e:
                sqlite3.Connection.execute(self._db, "ROLLBACK")
                raise StorageError(f"cannot write to the store {self._path}: {e}") from e
            return
        if self._db.in_transaction:
            sqlite3.Connection.execute(self._db, "ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise StorageError(f"cannot write to the store {self._path}: {exc}") from exc
