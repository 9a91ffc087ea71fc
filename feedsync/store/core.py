"""The store itself: papers, topics and matches, rendered entries, runs, fetch state.

It keeps every paper ever seen (so feeds carry history), the conditional-GET state of each
fetched URL, and the bookkeeping later stages need. The schema is versioned with numbered
migrations (``PRAGMA user_version``), each applied in its own transaction.

Upsert rules, in order:
1. A paper is found by its arXiv id, else by its key, else by its normalized title; so a
   paper first seen in a text digest (no id) and later from the API ends as one row, which
   keeps its first key (feed entry ids are built from it and must never change).
2. A record that carries an arXiv id (API or HTML) is authoritative: its non-empty fields
   replace stored ones. A record without one (a text digest) only fills fields still empty.
3. Counts that grow (upvotes, comments) keep their maximum, so re-importing an old file never
   lowers them; the first featured day is kept.
4. Nothing is ever deleted by an upsert: a day that shrank since the last fetch loses nothing.

Every write bumps a store-wide sequence number and stamps the rows it touched, so later
stages can ask "what changed since seq N" instead of rescanning everything. The full-text
table queries run on follows the papers (store/search.py).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from feedsync.errors import StorageError
from feedsync.models import FetchState, Fragment, Paper, StoredPaper, UpsertCounts
from feedsync.store import search
from feedsync.store.rows import (
    COLUMNS,
    DISPLAYED,
    NEWEST,
    SELECT_PAPERS,
    iso,
    merge,
    newest_first,
    stored_paper,
    to_row,
)
from feedsync.store.schema import MIGRATIONS, statements
from feedsync.store.search import SearchTables
from feedsync.store.sqlite import Connection, Transaction, describe
from feedsync.store.zotero import ZoteroTables
from feedsync.text import normalize_title, title_key

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class TopicState:
    """A topic as last matched: its selection signature and the store seq it has seen."""

    slug: str
    signature: str
    seq: int
    rendered: str | None
    matched: int = 0  # how many papers it selects


@dataclass(frozen=True, slots=True)
class RunRecord:
    """The status record of one run (``result``: running, ok, failed, error)."""

    id: int
    started: datetime
    finished: datetime | None
    result: str
    report: dict[str, Any]
    error: str | None


@dataclass(frozen=True, slots=True)
class MatchUpdate:
    slug: str
    signature: str
    matched: frozenset[int] | set[int]
    scope: frozenset[int] | set[int] | None = None


class Store(SearchTables, ZoteroTables):
    """A connection to the store; use as a context manager, one per thread."""

    def __init__(self, path: Path | str, *, clock: Clock = utcnow) -> None:
        self.path = Path(path)
        self._clock = clock
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, factory=Connection
            )
            self._db.store_path = self.path
            search.register(self._db)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open the store {self.path}: {describe(e)}") from e
        except OSError as e:
            raise StorageError(f"cannot create the store {self.path}: {e.strerror}") from e
        try:
            self._setup()
        except BaseException:
            # A refused store must not leave its connection to the garbage collector (which
            # warns about it from Python 3.13 on, at some unrelated later moment).
            self._db.close()
            raise

    def _setup(self) -> None:
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._use_wal()
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._check_fts5()
            self._migrate()
        except StorageError as e:
            if e.message.startswith("the store"):  # a schema newer than this feedsync
                raise
            cause = e.__cause__
            reason = describe(cause) if isinstance(cause, sqlite3.Error) else str(cause or e)
            raise StorageError(f"cannot open the store {self.path}: {reason}") from e
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # our own SQL: a bug
        except sqlite3.Error as e:
            # Anything else while opening and migrating is about the file: one made by
            # another program (its tables clash with ours), damaged, or locked.
            raise StorageError(f"cannot open the store {self.path}: {describe(e)}") from e

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _use_wal(self) -> None:
        # WAL is kept in the file once set. Setting it takes a lock without going through
        # the busy timeout, so two processes creating the store at once (a daemon and a
        # `run`) would see "database is locked": the later one waits here instead.
        deadline = time.monotonic() + 10
        while True:
            try:
                sqlite3.Connection.execute(self._db, "PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _check_fts5(self) -> None:
        try:
            self._db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts5_probe USING fts5(a)")
        except (sqlite3.OperationalError, StorageError):
            raise StorageError(
                f"this Python's SQLite ({sqlite3.sqlite_version}) has no FTS5, the full-text "
                "search feedsync matches topics with: use a Python built with it (python.org "
                "and distribution builds are)"
            ) from None

    def _migrate(self) -> None:
        self.migrated = False  # whether opening it applied a migration
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > len(MIGRATIONS):
            raise StorageError(
                f"the store {self.path} has schema version {version}, newer than this "
                f"feedsync knows ({len(MIGRATIONS)}); upgrade feedsync"
            )
        for number in range(version + 1, len(MIGRATIONS) + 1):
            self.migrated = True
            with self._transaction():
                # Two processes may open a new store at once (a daemon and a `run`): look
                # again under the write lock, the other may have applied this one already.
                (current,) = self._db.execute("PRAGMA user_version").fetchone()
                if current >= number:
                    continue
                for statement in statements(MIGRATIONS[number - 1]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")

    def _transaction(self) -> Transaction:
        return Transaction(self._db, self.path)

    @property
    def changes(self) -> int:
        """Rows this connection has inserted, updated or deleted since it was opened."""
        return self._db.total_changes

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def snapshot(self, into: Path) -> None:
        """A consistent copy of the whole store as one compact file (no WAL beside it),
        taken while it may be in use; ``into`` must not exist yet."""
        self._db.execute("VACUUM INTO ?", (str(into),))

    def integrity_check(self) -> str:
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    # -- papers ------------------------------------------------------------------------------

    @property
    def seq(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE name = 'seq'").fetchone()[0])

    def upsert(self, papers: Iterable[Paper]) -> UpsertCounts:
        """Merge papers into the store in one transaction (see the module rules)."""
        now = iso(self._clock())
        counts = UpsertCounts()
        with self._transaction():
            seq = self.seq + 1
            for paper in papers:
                counts += self._upsert_one(paper, now, seq)
            # The sequence moves only when a paper did: "nothing changed" stays cheap to tell.
            if counts.new or counts.updated:
                self._db.execute("UPDATE meta SET value = ? WHERE name = 'seq'", (seq,))
        return counts

    def _find(self, paper: Paper) -> sqlite3.Row | None:
        db = self._db
        if paper.arxiv_id:
            row: sqlite3.Row | None = db.execute(
                SELECT_PAPERS + " WHERE arxiv_id = ?", (paper.arxiv_id,)
            ).fetchone()
            if row:
                return row
        if paper.key != paper.arxiv_id:  # (an API paper's key is its id: already looked up)
            by_key: sqlite3.Row | None = db.execute(
                SELECT_PAPERS + " WHERE key = ?", (paper.key,)
            ).fetchone()
            if by_key:
                return by_key
        tkey = title_key(paper.title)
        if paper.arxiv_id:
            # Only adopt a row that has no id yet: two papers with one title stay two.
            sql = (
                SELECT_PAPERS + " WHERE title_key = ? AND arxiv_id IS NULL ORDER BY id DESC LIMIT 1"
            )
        else:
            sql = SELECT_PAPERS + " WHERE title_key = ? ORDER BY featured DESC, id DESC LIMIT 1"
        by_title: sqlite3.Row | None = db.execute(sql, (tkey,)).fetchone()
        if by_title and normalize_title(by_title["title"]) == normalize_title(paper.title):
            return by_title
        return None

    def _upsert_one(self, paper: Paper, now: str, seq: int) -> UpsertCounts:
        row = self._find(paper)
        incoming = to_row(paper)
        if row is None:
            self._db.execute(
                f"INSERT INTO papers ({COLUMNS}, first_seen, last_seen, changed, rev, seq)"
                " VALUES (" + ", ".join("?" * 16) + ", ?, ?, ?, 1, ?)",
                (*incoming.values(), now, now, now, seq),
            )
            return UpsertCounts(new=1)  # to the full-text table at search_ready()
        merged = merge(dict(row), incoming, authoritative=paper.arxiv_id is not None)
        changed = {k: v for k, v in merged.items() if row[k] != v}
        if not changed:
            self._db.execute("UPDATE papers SET last_seen = ? WHERE id = ?", (now, row["id"]))
            return UpsertCounts(unchanged=1)
        sets = dict(changed, last_seen=now, seq=seq)
        revised = any(k in DISPLAYED for k in changed)
        assignments = ", ".join(f"{k} = ?" for k in sets)
        if revised:
            assignments += ", rev = rev + 1, changed = ?"
        values = [*sets.values()] + ([now] if revised else [])
        # Out with the old text as it was inserted, in with the new (search.py rule 3).
        searchable = not search.SEARCHABLE.isdisjoint(changed) and self._forget_text(row["id"])
        self._db.execute(f"UPDATE papers SET {assignments} WHERE id = ?", (*values, row["id"]))
        if searchable:
            self._learn_text(row["id"])
        if "featured" in changed or "published" in changed:  # the matches' copy of the sort key
            # One primary-key probe per topic: cheaper, for these rare changes, than an
            # index on paper_id that every one of the (many) match inserts would update.
            self._db.execute(
                "UPDATE matches SET featured = ?, published = ?"
                " WHERE slug IN (SELECT slug FROM topics) AND paper_id = ?",
                (merged["featured"], merged["published"], row["id"]),
            )
        return UpsertCounts(updated=1)

    def get(self, key: str) -> StoredPaper | None:
        """A paper by its key or its arXiv id."""
        row = self._db.execute(
            SELECT_PAPERS + " WHERE key = ? OR arxiv_id = ?", (key, key)
        ).fetchone()
        return stored_paper(row) if row else None

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM papers").fetchone()[0])

    def papers(self, *, since_seq: int = 0, limit: int | None = None) -> Iterator[StoredPaper]:
        """Stored papers changed after ``since_seq``, newest first (featured day, arXiv date)."""
        sql = SELECT_PAPERS + " WHERE seq > ? ORDER BY featured DESC, published DESC, id DESC"
        params: tuple[Any, ...] = (since_seq,)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        for row in self._db.execute(sql, params):
            yield stored_paper(row)

    def papers_by_id(self, ids: Iterable[int]) -> list[StoredPaper]:
        """Papers for the given row ids, newest first."""
        return sorted(self.paper_map(ids).values(), key=newest_first, reverse=True)

    def paper_map(self, ids: Iterable[int]) -> dict[int, StoredPaper]:
        """Papers for the given row ids, by row id, in one query."""
        sql = SELECT_PAPERS + " WHERE id IN (SELECT value FROM json_each(?))"
        return {r["id"]: stored_paper(r) for r in self._db.execute(sql, (json.dumps(list(ids)),))}

    # -- topics and their matches ------------------------------------------------------------

    def topic_states(self) -> dict[str, TopicState]:
        rows = self._db.execute("SELECT slug, signature, seq, rendered, matched FROM topics")
        return {
            r["slug"]: TopicState(r["slug"], r["signature"], r["seq"], r["rendered"], r["matched"])
            for r in rows
        }

    def save_matches(
        self,
        updates: Sequence[MatchUpdate],
        *,
        seq: int,
        drop: Iterable[str] = (),
    ) -> None:
        """Record new match results for topics, and forget topics no longer configured.

        An update with ``scope`` None replaces the topic's whole membership; otherwise only
        the papers in ``scope`` were re-matched and only their membership changes.
        """
        db = self._db
        with self._transaction():
            for slug in drop:
                db.execute("DELETE FROM topics WHERE slug = ?", (slug,))
            for u in updates:
                db.execute(
                    "INSERT INTO topics (slug, signature, seq) VALUES (?, ?, ?)"
                    " ON CONFLICT (slug) DO UPDATE SET signature = excluded.signature,"
                    " seq = excluded.seq",
                    (u.slug, u.signature, seq),
                )
                # The count is kept by what changed: counting a topic's matches again costs
                # a scan of all of them (tens of milliseconds for a hundred topics).
                removed: int | None = None  # None: the membership starts from nothing
                if u.scope is None:
                    db.execute("DELETE FROM matches WHERE slug = ?", (u.slug,))
                else:
                    removed = db.executemany(
                        "DELETE FROM matches WHERE slug = ? AND paper_id = ?",
                        [(u.slug, i) for i in u.scope if i not in u.matched],
                    ).rowcount
                added = db.execute(
                    "INSERT OR IGNORE INTO matches (slug, paper_id, featured, published)"
                    " SELECT ?, id, featured, published FROM papers"
                    " WHERE id IN (SELECT value FROM json_each(?))",
                    (u.slug, json.dumps(sorted(u.matched))),
                ).rowcount
                if removed is None:
                    db.execute("UPDATE topics SET matched = ? WHERE slug = ?", (added, u.slug))
                else:
                    db.execute(
                        "UPDATE topics SET matched = matched - ? + ? WHERE slug = ?",
                        (removed, added, u.slug),
                    )

    def zotero_candidates(self, slugs: Sequence[str]) -> list[tuple[Paper, frozenset[str]]]:
        """Every paper any of these topics matches (all, not the newest), with those topics."""
        if not slugs:
            return []
        marks = ", ".join("?" * len(slugs))
        sql = f"SELECT paper_id, slug FROM matches WHERE slug IN ({marks})"
        topics: dict[int, set[str]] = {}
        for paper_id, slug in self._db.execute(sql, tuple(slugs)):
            topics.setdefault(paper_id, set()).add(slug)
        return [(s.paper, frozenset(topics[s.rowid])) for s in self.papers_by_id(list(topics))]

    def newest_ids(self, slug: str, limit: int) -> list[tuple[int, int]]:
        """(row id, rev) of a topic's newest matches: cheap, and enough to tell a change."""
        sql = NEWEST.format(columns="p.id, p.rev")
        return [(r[0], r[1]) for r in self._db.execute(sql, (slug, limit))]

    def newest(self, slug: str | None, limit: int) -> list[StoredPaper]:
        """A topic's newest matching papers (every paper when ``slug`` is None)."""
        if slug is None:
            order = " ORDER BY featured DESC, published DESC, id DESC LIMIT ?"
            return [stored_paper(r) for r in self._db.execute(SELECT_PAPERS + order, (limit,))]
        sql = NEWEST.format(columns="p.*")
        return [stored_paper(r) for r in self._db.execute(sql, (slug, limit))]

    def newest_all_ids(self, limit: int) -> list[tuple[int, int]]:
        sql = "SELECT id, rev FROM papers ORDER BY featured DESC, published DESC, id DESC LIMIT ?"
        return [(r[0], r[1]) for r in self._db.execute(sql, (limit,))]

    # -- rendered entries --------------------------------------------------------------------

    def fragments(self, wanted: dict[int, int], version: str) -> dict[int, Fragment]:
        """Cached entries of the papers in ``wanted`` (row id -> rev) at that revision.

        A cache written by another ``version`` of the renderer is dropped first.
        """
        if self.get_value("fragments:version") != version:
            with self._transaction():
                self._db.execute("DELETE FROM fragments")
                self._db.execute(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES ('fragments:version', ?)",
                    (version,),
                )
        sql = (
            "SELECT paper_id, rev, updated, rss, atom FROM fragments"
            " WHERE paper_id IN (SELECT value FROM json_each(?))"
        )
        rows = self._db.execute(sql, (json.dumps(list(wanted)),))
        return {
            r[0]: Fragment(r[1], datetime.fromisoformat(r[2]), r[3], r[4])
            for r in rows
            if wanted[r[0]] == r[1]
        }

    def save_fragments(self, fragments: dict[int, Fragment], keep: Iterable[int]) -> None:
        """Store new entries, and drop those of papers no longer in ``keep`` (any feed)."""
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO fragments (paper_id, rev, updated, rss, atom)"
                " VALUES (?, ?, ?, ?, ?)",
                ((i, f.rev, iso(f.updated), f.rss, f.atom) for i, f in fragments.items()),
            )
            self._db.execute(
                "DELETE FROM fragments WHERE paper_id NOT IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(set(keep))),),
            )

    def save_rendered(self, signatures: dict[str, str]) -> None:
        with self._transaction():
            self._db.executemany(
                "UPDATE topics SET rendered = ? WHERE slug = ?",
                ((sig, slug) for slug, sig in signatures.items()),
            )

    # -- published files ---------------------------------------------------------------------

    def published(self) -> dict[str, tuple[str, str | None]]:
        """Files feedsync wrote into output_dir last time: name -> (sha256, stat stamp).

        The stamp ("mtime_ns-size" after the write) tells, for the price of a stat, whether
        the file is still the one we wrote.
        """
        rows = self._db.execute("SELECT name, sha256, stamp FROM published")
        return {r[0]: (r[1], r[2]) for r in rows}

    def save_published(self, files: dict[str, tuple[str, str | None]]) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM published")
            self._db.executemany(
                "INSERT INTO published (name, sha256, stamp) VALUES (?, ?, ?)",
                ((name, sha, stamp) for name, (sha, stamp) in files.items()),
            )

    # -- run status --------------------------------------------------------------------------

    def start_run(self, started: datetime) -> int:
        with self._transaction():
            cur = self._db.execute(
                "INSERT INTO runs (started, result) VALUES (?, 'running')", (iso(started),)
            )
            # Keep the last thousand runs: the status record must not grow forever.
            self._db.execute("DELETE FROM runs WHERE id <= ?", ((cur.lastrowid or 0) - 1000,))
        return int(cur.lastrowid or 0)

    def finish_run(
        self,
        run_id: int,
        finished: datetime,
        result: str,
        report: dict[str, Any],
        error: str | None,
    ) -> None:
        with self._transaction():
            self._db.execute(
                "UPDATE runs SET finished = ?, result = ?, report = ?, error = ? WHERE id = ?",
                (iso(finished), result, json.dumps(report, sort_keys=True), error, run_id),
            )

    def last_runs(self, limit: int = 1, *, finished_only: bool = True) -> list[RunRecord]:
        where = " WHERE finished IS NOT NULL" if finished_only else ""
        sql = f"SELECT * FROM runs{where} ORDER BY id DESC LIMIT ?"
        return [
            RunRecord(
                id=r["id"],
                started=datetime.fromisoformat(r["started"]),
                finished=datetime.fromisoformat(r["finished"]) if r["finished"] else None,
                result=r["result"],
                report=json.loads(r["report"]),
                error=r["error"],
            )
            for r in self._db.execute(sql, (limit,))
        ]

    # -- state values ------------------------------------------------------------------------

    def get_value(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_value(self, name: str, value: str) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value)
            )

    # -- fetch state -------------------------------------------------------------------------

    def fetch_state(self, url: str) -> FetchState | None:
        row = self._db.execute("SELECT * FROM fetches WHERE url = ?", (url,)).fetchone()
        return None if row is None else _fetch_state(row)

    def save_fetch(self, state: FetchState) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO fetches"
                " (url, day, etag, last_modified, fetched_at, paper_count)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    state.url,
                    state.day.isoformat() if state.day else None,
                    state.etag,
                    state.last_modified,
                    iso(state.fetched_at),
                    state.paper_count,
                ),
            )

    def fetch_states(self, days: Iterable[date]) -> dict[str, FetchState]:
        """The remembered state of every URL fetched for these days, by URL."""
        wanted = {d.isoformat() for d in days}
        states = {}
        for row in self._db.execute("SELECT * FROM fetches WHERE day IS NOT NULL"):
            if row["day"] in wanted:
                states[row["url"]] = _fetch_state(row)
        return states

    def fetched_days(self) -> set[date]:
        rows = self._db.execute("SELECT DISTINCT day FROM fetches WHERE day IS NOT NULL")
        return {date.fromisoformat(r[0]) for r in rows}


def _fetch_state(row: sqlite3.Row) -> FetchState:
    return FetchState(
        url=row["url"],
        day=date.fromisoformat(row["day"]) if row["day"] else None,
        etag=row["etag"],
        last_modified=row["last_modified"],
        fetched_at=datetime.fromisoformat(row["fetched_at"]),
        paper_count=row["paper_count"],
    )
