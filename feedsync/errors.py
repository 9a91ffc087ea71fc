"""The one exception root of feedsync, and the exit codes the command line maps it to.

Foreign exceptions (httpx, sqlite3, lxml, pyzotero, pydantic) are wrapped once, at the
module that talks to them, with ``raise ... from e``; anything else that escapes is a bug
and is allowed to surface as one.
"""

from __future__ import annotations

# Documented exit codes (README, "Exit codes").
EXIT_OK = 0
EXIT_FAILED = 1  # a stage failed (feeds still published from the store), or publishing did
EXIT_USAGE = 2  # bad config, bad input file, bad query, bad command line
EXIT_UNAVAILABLE = 3  # the store (or its object in a bucket), or the daemon lock, is unusable


class FeedsyncError(Exception):
    """Base of every error feedsync raises on purpose."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(FeedsyncError):
    """The configuration is invalid; ``problems`` lists (key, value, why) for each fault."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, problems: list[tuple[str, str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class InputError(FeedsyncError):
    """A command-line argument or an input file cannot be used."""

    exit_code = EXIT_USAGE


class ParseError(InputError):
    """A digest in which nothing could be parsed."""

    def __init__(self, message: str, source: str | None = None) -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.source = source


class QueryError(InputError):
    """A topic query with a syntax error; ``column`` is 1-based."""

    def __init__(self, message: str, query: str, column: int) -> None:
        super().__init__(f"{message} at column {column}")
        self.reason = message
        self.query = query
        self.column = column


class StorageError(FeedsyncError):
    """The SQLite store cannot be opened, migrated, or written."""

    exit_code = EXIT_UNAVAILABLE


class StateError(FeedsyncError):
    """The store's object in a bucket (``[state] url``) could not be fetched or saved."""

    exit_code = EXIT_UNAVAILABLE


class StateConflict(StateError):
    """Another job saved the state object since this run fetched it: this run's is not."""


class LockError(FeedsyncError):
    """Another feedsync process holds the lock on this data directory."""

    exit_code = EXIT_UNAVAILABLE


class FetchError(FeedsyncError):
    """The digest source could not be fetched (after retries)."""

    def __init__(self, message: str, url: str | None = None) -> None:
        super().__init__(f"{message} ({url})" if url else message)
        self.url = url


class SourceStopped(FetchError):
    """A fetch error that every later request of the run would meet too (the quota is spent
    for longer than the run may wait, the token is refused): the source stops fetching."""


class PublishError(FeedsyncError):
    """Feeds could not be written into the output directory."""


class SyncError(FeedsyncError):
    """The Zotero sync failed; feeds are unaffected."""
