"""The embedded SQLite store: the only module that speaks SQL.

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
stages can ask "what changed since seq N" instead of rescanning everything.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from feedsync.errors import StorageError
from feedsync.models import Fragment, Paper, StoredPaper, UpsertCounts
from feedsync.text import normalize_title, title_key

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


# Numbered migrations: append, never edit one that has shipped.
MIGRATIONS: tuple[str, ...] = (
    # 1: papers, their full-text index, fetch state
    """
    CREATE TABLE papers (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        arxiv_id TEXT UNIQUE,
        title_key TEXT NOT NULL,
        title TEXT NOT NULL,
        abstract TEXT NOT NULL DEFAULT '',
        authors TEXT NOT NULL DEFAULT '[]',
        author_count INTEGER,
        organization TEXT,
        published TEXT,
        featured TEXT,
        upvotes INTEGER,
        comments INTEGER,
        ai_summary TEXT,
        ai_keywords TEXT NOT NULL DEFAULT '[]',
        github_repo TEXT,
        project_page TEXT,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        changed TEXT NOT NULL,
        rev INTEGER NOT NULL DEFAULT 1,
        seq INTEGER NOT NULL
    );
    CREATE INDEX papers_title_key ON papers (title_key);
    CREATE INDEX papers_newest ON papers (featured DESC, published DESC);
    CREATE INDEX papers_seq ON papers (seq);
    CREATE TABLE meta (name TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID;
    INSERT INTO meta (name, value) VALUES ('seq', 0);
    CREATE TABLE fetches (
        url TEXT PRIMARY KEY,
        day TEXT,
        etag TEXT,
        last_modified TEXT,
        fetched_at TEXT NOT NULL,
        paper_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX fetches_day ON fetches (day);
    CREATE TABLE topics (
        slug TEXT PRIMARY KEY,
        signature TEXT NOT NULL,
        seq INTEGER NOT NULL,
        rendered TEXT
    ) WITHOUT ROWID;
    CREATE TABLE matches (
        slug TEXT NOT NULL REFERENCES topics (slug) ON DELETE CASCADE,
        paper_id INTEGER NOT NULL REFERENCES papers (id),
        PRIMARY KEY (slug, paper_id)
    ) WITHOUT ROWID;
    CREATE TABLE published (name TEXT PRIMARY KEY, sha256 TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started TEXT NOT NULL,
        finished TEXT,
        result TEXT NOT NULL,
        report TEXT NOT NULL DEFAULT '{}',
        error TEXT
    );
    """,
    # 2: Zotero sync state, per library ("users/123"): one row per synced arXiv paper, one
    # per collection feedsync owns (slug '' is the parent collection).
    """
    CREATE TABLE zotero_items (
        library TEXT NOT NULL,
        arxiv_id TEXT NOT NULL,
        key TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL CHECK (status IN ('pending', 'synced', 'failed')),
        collections TEXT NOT NULL DEFAULT '[]',
        attachment TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        updated TEXT NOT NULL,
        PRIMARY KEY (library, arxiv_id)
    ) WITHOUT ROWID;
    CREATE TABLE zotero_collections (
        library TEXT NOT NULL,
        slug TEXT NOT NULL,
        name TEXT NOT NULL,
        parent TEXT NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (library, slug)
    ) WITHOUT ROWID;
    """,
    # 3: each topic keeps its match count (no count query per topic per run), and the
    # newest-first index ends with the id, so a big topic's newest papers are an index walk.
    """
    ALTER TABLE topics ADD COLUMN matched INTEGER NOT NULL DEFAULT 0;
    UPDATE topics SET matched = (SELECT count(*) FROM matches WHERE matches.slug = topics.slug);
    DROP INDEX papers_newest;
    CREATE INDEX papers_newest ON papers (featured DESC, published DESC, id DESC);
    ALTER TABLE published ADD COLUMN stamp TEXT;
    """,
    # 4: rendered feed entries, one per paper currently in some feed (fragments.py).
    """
    CREATE TABLE fragments (
        paper_id INTEGER PRIMARY KEY,
        rev INTEGER NOT NULL,
        updated TEXT NOT NULL,
        rss BLOB NOT NULL,
        atom BLOB NOT NULL
    );
    """,
    # 5: each match carries its paper's sort key, so a topic's newest papers are the first
    # rows of one index range whatever the topic's size (was: a sort or a walk per topic).
    """
    ALTER TABLE matches ADD COLUMN featured TEXT;
    ALTER TABLE matches ADD COLUMN published TEXT;
    UPDATE matches SET
        featured = (SELECT featured FROM papers WHERE papers.id = matches.paper_id),
        published = (SELECT published FROM papers WHERE papers.id = matches.paper_id);
    CREATE INDEX matches_newest ON matches (slug, featured DESC, published DESC, paper_id DESC);
    """,
)

# Fields a feed shows; a change to one of them is a revision of the entry.
_DISPLAYED = (
    "arxiv_id",  # the entry's links
    "featured",  # the entry's date
    "title",
    "abstract",
    "authors",
    "author_count",
    "organization",
    "published",
    "ai_summary",
    "ai_keywords",
    "github_repo",
    "project_page",
)
_COLUMNS = (
    "key, arxiv_id, title_key, title, abstract, authors, author_count, organization, published,"
    " featured, upvotes, comments, ai_summary, ai_keywords, github_repo, project_page"
)
_SELECT = f"SELECT id, {_COLUMNS}, first_seen, last_seen, changed, rev FROM papers"
# A topic's newest papers: the first rows of its range in matches_newest, no sort.
_NEWEST = (
    "SELECT {columns} FROM matches m INDEXED BY matches_newest"
    " JOIN papers p ON p.id = m.paper_id WHERE m.slug = ?"
    " ORDER BY m.featured DESC, m.published DESC, m.paper_id DESC LIMIT ?"
)


@dataclass(frozen=True, slots=True)
class FetchState:
    """What we remember of the last successful fetch of one URL (for conditional GET)."""

    url: str
    day: date | None
    etag: str | None
    last_modified: str | None
    fetched_at: datetime
    paper_count: int


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


class Store:
    """A connection to the store; use as a context manager, one per thread."""

    def __init__(self, path: Path | str, *, clock: Clock = utcnow) -> None:
        self.path = Path(path)
        self._clock = clock
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, factory=_Connection
            )
            self._db.store_path = self.path
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except StorageError as e:
            if e.message.startswith("the store"):  # a schema newer than this feedsync
                raise
            raise StorageError(f"cannot open the store {self.path}: {e.__cause__ or e}") from e
        except sqlite3.Error as e:
            raise StorageError(f"cannot open the store {self.path}: {e}") from e
        except OSError as e:
            raise StorageError(f"cannot create the store {self.path}: {e.strerror}") from e

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > len(MIGRATIONS):
            raise StorageError(
                f"the store {self.path} has schema version {version}, newer than this "
                f"feedsync knows ({len(MIGRATIONS)}); upgrade feedsync"
            )
        for number in range(version + 1, len(MIGRATIONS) + 1):
            with self._transaction():
                for statement in _statements(MIGRATIONS[number - 1]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self.path)

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def integrity_check(self) -> str:
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    # -- papers ------------------------------------------------------------------------------

    @property
    def seq(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE name = 'seq'").fetchone()[0])

    def upsert(self, papers: Iterable[Paper]) -> UpsertCounts:
        """Merge papers into the store in one transaction (see the module rules)."""
        now = _iso(self._clock())
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
                _SELECT + " WHERE arxiv_id = ?", (paper.arxiv_id,)
            ).fetchone()
            if row:
                return row
        if paper.key != paper.arxiv_id:  # (an API paper's key is its id: already looked up)
            by_key: sqlite3.Row | None = db.execute(
                _SELECT + " WHERE key = ?", (paper.key,)
            ).fetchone()
            if by_key:
                return by_key
        tkey = title_key(paper.title)
        if paper.arxiv_id:
            # Only adopt a row that has no id yet: two papers with one title stay two.
            sql = _SELECT + " WHERE title_key = ? AND arxiv_id IS NULL ORDER BY id DESC LIMIT 1"
        else:
            sql = _SELECT + " WHERE title_key = ? ORDER BY featured DESC, id DESC LIMIT 1"
        by_title: sqlite3.Row | None = db.execute(sql, (tkey,)).fetchone()
        if by_title and normalize_title(by_title["title"]) == normalize_title(paper.title):
            return by_title
        return None

    def _upsert_one(self, paper: Paper, now: str, seq: int) -> UpsertCounts:
        row = self._find(paper)
        incoming = _to_row(paper)
        if row is None:
            self._db.execute(
                f"INSERT INTO papers ({_COLUMNS}, first_seen, last_seen, changed, rev, seq)"
                " VALUES (" + ", ".join("?" * 16) + ", ?, ?, ?, 1, ?)",
                (*incoming.values(), now, now, now, seq),
            )
            return UpsertCounts(new=1)
        merged = _merge(dict(row), incoming, authoritative=paper.arxiv_id is not None)
        changed = {k: v for k, v in merged.items() if row[k] != v}
        if not changed:
            self._db.execute("UPDATE papers SET last_seen = ? WHERE id = ?", (now, row["id"]))
            return UpsertCounts(unchanged=1)
        sets = dict(changed, last_seen=now, seq=seq)
        revised = any(k in _DISPLAYED for k in changed)
        assignments = ", ".join(f"{k} = ?" for k in sets)
        if revised:
            assignments += ", rev = rev + 1, changed = ?"
        values = [*sets.values()] + ([now] if revised else [])
        self._db.execute(f"UPDATE papers SET {assignments} WHERE id = ?", (*values, row["id"]))
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
        row = self._db.execute(_SELECT + " WHERE key = ? OR arxiv_id = ?", (key, key)).fetchone()
        return _stored(row) if row else None

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM papers").fetchone()[0])

    def papers(self, *, since_seq: int = 0, limit: int | None = None) -> Iterator[StoredPaper]:
        """Stored papers changed after ``since_seq``, newest first (featured day, arXiv date)."""
        sql = _SELECT + " WHERE seq > ? ORDER BY featured DESC, published DESC, id DESC"
        params: tuple[Any, ...] = (since_seq,)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        for row in self._db.execute(sql, params):
            yield _stored(row)

    def papers_by_id(self, ids: Iterable[int]) -> list[StoredPaper]:
        """Papers for the given row ids, newest first."""
        return sorted(self.paper_map(ids).values(), key=_newest_first, reverse=True)

    def paper_map(self, ids: Iterable[int]) -> dict[int, StoredPaper]:
        """Papers for the given row ids, by row id, in one query."""
        sql = _SELECT + " WHERE id IN (SELECT value FROM json_each(?))"
        return {r["id"]: _stored(r) for r in self._db.execute(sql, (json.dumps(list(ids)),))}

    def documents(self, *, since_seq: int = 0) -> Iterator[tuple[int, Paper]]:
        """(row id, paper) for every paper changed after ``since_seq``, for matching."""
        for row in self._db.execute(_SELECT + " WHERE seq > ?", (since_seq,)):
            yield row["id"], _paper(row)

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
                if u.scope is None:
                    db.execute("DELETE FROM matches WHERE slug = ?", (u.slug,))
                else:
                    db.executemany(
                        "DELETE FROM matches WHERE slug = ? AND paper_id = ?",
                        ((u.slug, i) for i in u.scope if i not in u.matched),
                    )
                db.execute(
                    "INSERT OR IGNORE INTO matches (slug, paper_id, featured, published)"
                    " SELECT ?, id, featured, published FROM papers"
                    " WHERE id IN (SELECT value FROM json_each(?))",
                    (u.slug, json.dumps(sorted(u.matched))),
                )
                db.execute(
                    "UPDATE topics SET matched = (SELECT count(*) FROM matches WHERE slug = ?1)"
                    " WHERE slug = ?1",
                    (u.slug,),
                )

    def match_count(self, slug: str) -> int:
        """How many papers a topic selects (kept with the topic, so it costs one lookup)."""
        row = self._db.execute("SELECT matched FROM topics WHERE slug = ?", (slug,)).fetchone()
        return int(row[0]) if row else 0

    def newest_ids(self, slug: str, limit: int) -> list[tuple[int, int]]:
        """(row id, rev) of a topic's newest matches: cheap, and enough to tell a change."""
        sql = _NEWEST.format(columns="p.id, p.rev")
        return [(r[0], r[1]) for r in self._db.execute(sql, (slug, limit))]

    def newest(self, slug: str | None, limit: int) -> list[StoredPaper]:
        """A topic's newest matching papers (every paper when ``slug`` is None)."""
        if slug is None:
            order = " ORDER BY featured DESC, published DESC, id DESC LIMIT ?"
            return [_stored(r) for r in self._db.execute(_SELECT + order, (limit,))]
        sql = _NEWEST.format(columns="p.*")
        return [_stored(r) for r in self._db.execute(sql, (slug, limit))]

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
                ((i, f.rev, _iso(f.updated), f.rss, f.atom) for i, f in fragments.items()),
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
                "INSERT INTO runs (started, result) VALUES (?, 'running')", (_iso(started),)
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
                (_iso(finished), result, json.dumps(report, sort_keys=True), error, run_id),
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
                    _iso(state.fetched_at),
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

    # -- zotero ------------------------------------------------------------------------------
    # The Zotero sync's bookkeeping. Rows are per library, so pointing feedsync at another
    # library starts afresh instead of trusting keys that mean nothing there.

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
        now = _iso(self._clock())
        with self._transaction():
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
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO zotero_collections (library, slug, name, parent, key)"
                " VALUES (?, ?, ?, ?, ?)",
                ((library, s.slug, s.name, s.parent, s.key) for s in states),
            )

    def forget_zotero_collections(self, library: str, keys: Iterable[str]) -> None:
        """Drop collections Zotero says are gone, and the subcollections under them."""
        gone = list(keys)
        with self._transaction():
            self._db.executemany(
                "DELETE FROM zotero_collections WHERE library = ? AND (key = ? OR parent = ?)",
                ((library, k, k) for k in gone),
            )


class _Connection(sqlite3.Connection):
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


class _Transaction:
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


def _fetch_state(row: sqlite3.Row) -> FetchState:
    return FetchState(
        url=row["url"],
        day=date.fromisoformat(row["day"]) if row["day"] else None,
        etag=row["etag"],
        last_modified=row["last_modified"],
        fetched_at=datetime.fromisoformat(row["fetched_at"]),
        paper_count=row["paper_count"],
    )


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _to_row(paper: Paper) -> dict[str, Any]:
    return {
        "key": paper.key,
        "arxiv_id": paper.arxiv_id,
        "title_key": title_key(paper.title),
        "title": paper.title,
        "abstract": paper.abstract,
        "authors": json.dumps(list(paper.authors), ensure_ascii=False),
        "author_count": paper.author_count,
        "organization": paper.organization,
        "published": _iso(paper.published) if paper.published else None,
        "featured": paper.featured.isoformat() if paper.featured else None,
        "upvotes": paper.upvotes,
        "comments": paper.comments,
        "ai_summary": paper.ai_summary,
        "ai_keywords": json.dumps(list(paper.ai_keywords), ensure_ascii=False),
        "github_repo": paper.github_repo,
        "project_page": paper.project_page,
    }


_EMPTY = (None, "", "[]")


def _merge(old: dict[str, Any], new: dict[str, Any], *, authoritative: bool) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name, value in new.items():
        current = old[name]
        if name == "key":
            merged[name] = current  # identity never changes
        elif name in ("upvotes", "comments"):
            merged[name] = max((v for v in (current, value) if v is not None), default=None)
        elif name == "featured":
            merged[name] = min((v for v in (current, value) if v is not None), default=None)
        elif value in _EMPTY:
            merged[name] = current
        elif authoritative or current in _EMPTY:
            merged[name] = value
        else:
            merged[name] = current
    return merged


def _stored(row: sqlite3.Row) -> StoredPaper:
    return StoredPaper(
        paper=_paper(row),
        rowid=row["id"],
        first_seen=datetime.fromisoformat(row["first_seen"]),
        last_seen=datetime.fromisoformat(row["last_seen"]),
        changed=datetime.fromisoformat(row["changed"]),
        rev=row["rev"],
    )


def _paper(row: sqlite3.Row) -> Paper:
    return Paper(
        key=row["key"],
        arxiv_id=row["arxiv_id"],
        title=row["title"],
        abstract=row["abstract"],
        authors=tuple(json.loads(row["authors"])),
        author_count=row["author_count"],
        organization=row["organization"],
        published=datetime.fromisoformat(row["published"]) if row["published"] else None,
        featured=date.fromisoformat(row["featured"]) if row["featured"] else None,
        upvotes=row["upvotes"],
        comments=row["comments"],
        ai_summary=row["ai_summary"],
        ai_keywords=tuple(json.loads(row["ai_keywords"])),
        github_repo=row["github_repo"],
        project_page=row["project_page"],
    )


def _newest_first(stored: StoredPaper) -> tuple[Any, ...]:
    p = stored.paper
    return (
        p.featured or date.min,
        p.published or datetime.min.replace(tzinfo=UTC),
        stored.rowid,
    )
