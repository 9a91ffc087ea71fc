"""SQLite plumbing: a connection that words its errors, and write transactions.

Only errors that come from the file or the disk (locked, read-only, damaged, not a
database, full, I/O, a table missing that its schema version promises) are wrapped as
``StorageError``, a message and exit code 3. An error in feedsync's own SQL (a typo, a
wrong column, a broken constraint, a wrong number of bindings, a closed connection) is a
bug, and is let through as one, with its traceback.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from feedsync.errors import StorageError

# SQLite words a write the disk refuses as "disk I/O error", which does not say that the
# usual cause is a full disk (or a file-size limit); "database or disk is full" does.
_WRITE_FAILURES = frozenset(
    {"SQLITE_IOERR_WRITE", "SQLITE_IOERR_FSYNC", "SQLITE_IOERR_TRUNCATE", "SQLITE_IOERR_SHMSIZE"}
)


# Primary result codes (the low byte of an extended one) that say the file or the disk is
# at fault, not the statement: PERM, BUSY, LOCKED, NOMEM, READONLY, INTERRUPT, IOERR,
# CORRUPT, FULL, CANTOPEN, PROTOCOL, SCHEMA, NOTADB.
_FROM_THE_FILE = frozenset({3, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 17, 26})


def from_the_file(error: sqlite3.Error) -> bool:
    """Whether ``error`` comes from the database file or the disk rather than our SQL."""
    if isinstance(error, sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return False
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:  # raised by the sqlite3 module itself, not by SQLite
        return isinstance(error, sqlite3.OperationalError)
    # A table its schema version promises is missing: the file was tampered with.
    return code & 0xFF in _FROM_THE_FILE or str(error).startswith("no such table")


def describe(error: sqlite3.Error) -> str:
    """SQLite's own words for an error, with a hint where they leave the cause out."""
    if getattr(error, "sqlite_errorname", None) in _WRITE_FAILURES:
        return f"{error}: a write was refused; is the disk full?"
    return str(error)


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
            if not from_the_file(e):
                raise
            raise StorageError(f"cannot use the store {self.store_path}: {describe(e)}") from e

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.Error as e:
            if not from_the_file(e):
                raise
            raise StorageError(f"cannot use the store {self.store_path}: {describe(e)}") from e


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception; sqlite errors wrapped once."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> None:
        try:
            sqlite3.Connection.execute(self._db, "BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise StorageError(f"cannot write to the store {self._path}: {describe(e)}") from e

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc_type is None:
            try:
                sqlite3.Connection.execute(self._db, "COMMIT")
            except sqlite3.Error as e:
                self._rollback()
                raise StorageError(f"cannot write to the store {self._path}: {describe(e)}") from e
            return
        self._rollback()
        if isinstance(exc, sqlite3.Error) and from_the_file(exc):
            raise StorageError(f"cannot write to the store {self._path}: {describe(exc)}") from exc

    def _rollback(self) -> None:
        # SQLite may have rolled back already: a COMMIT that finds the disk full does. And a
        # rollback that fails must not replace the error that made it necessary, which is
        # the one that tells the user what is wrong.
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                sqlite3.Connection.execute(self._db, "ROLLBACK")
