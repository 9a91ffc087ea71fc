"""The SQLite store: migrations, upsert rules, fetch state, consistency."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsync.errors import StorageError
from feedsync.models import FetchState, Paper
from feedsync.query import tokenize
from feedsync.store import MIGRATIONS, Store
from feedsync.text import title_key


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 6, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, hours: int = 1) -> None:
        self.now += timedelta(hours=hours)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Store:
    with Store(tmp_path / "data" / "feedsync.sqlite3", clock=clock) as s:
        yield s


def api_paper(arxiv_id: str = "2603.01234", **changes: object) -> Paper:
    base = Paper(
        key=arxiv_id,
        arxiv_id=arxiv_id,
        title="Lattice Sketches for Sparse Planning",
        abstract="We study a made-up planner.",
        authors=("Ana Ruiz", "Bo Chen"),
        author_count=2,
        organization="Example Lab",
        published=datetime(2026, 3, 4, 17, 59, 2, tzinfo=UTC),
        featured=date(2026, 3, 6),
        upvotes=5,
        comments=1,
    )
    return base.replace(**changes)


def text_paper(title: str = "Lattice Sketches for Sparse Planning", **changes: object) -> Paper:
    base = Paper(
        key=title_key(title),
        title=title,
        abstract="We study a made-up planner.",
        author_count=2,
        featured=date(2026, 3, 6),
        upvotes=3,
    )
    return base.replace(**changes)


def test_fresh_store_is_migrated_with_wal(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3") as s:
        assert s.schema_version == len(MIGRATIONS)
        assert s.integrity_check() == "ok"
    db = sqlite3.connect(tmp_path / "s.sqlite3")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_processes_opening_a_new_store_at_once_migrate_it_once(tmp_path: Path) -> None:
    """A daemon and a `feedsync run` started together both find schema 0: the second must
    not apply the migrations again (it failed with "duplicate column name")."""
    import threading

    errors: list[BaseException] = []

    def open_store(path: Path, start: threading.Barrier) -> None:
        start.wait()
        try:
            Store(path).close()
        except BaseException as e:
            errors.append(e)

    for round_ in range(30):
        path = tmp_path / f"s{round_}.sqlite3"
        start = threading.Barrier(4)
        threads = [threading.Thread(target=open_store, args=(path, start)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with Store(path) as s:
            assert s.schema_version == len(MIGRATIONS)
            assert s.integrity_check() == "ok"


def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    with Store(path) as s:
        s.upsert([api_paper()])
    with Store(path) as s:
        assert s.count() == 1


def newer_store(tmp_path: Path) -> Path:
    """A store whose schema is newer than this feedsync's."""
    path = tmp_path / "s.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.close()
    return path


def test_store_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = newer_store(tmp_path)
    with pytest.raises(StorageError, match="newer than this feedsync"):
        Store(path)


def test_a_refused_store_closes_its_connection(tmp_path: Path) -> None:
    """Python 3.13 warns about connections left to the garbage collector."""
    import gc

    from feedsync.store.sqlite import Connection

    path = newer_store(tmp_path)
    with pytest.raises(StorageError) as refused:
        Store(path)
    # The exception's frames still hold the connection; it must be closed already.
    left = [o for o in gc.get_objects() if isinstance(o, Connection) and o.store_path == path]
    assert left, refused
    for connection in left:
        with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
            connection.execute("SELECT 1")


def test_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="cannot open the store"):
        Store(path)


def test_new_then_unchanged_then_updated(store: Store, clock: Clock) -> None:
    counts = store.upsert([api_paper()])
    assert (counts.new, counts.updated, counts.unchanged) == (1, 0, 0)
    clock.tick()
    assert store.upsert([api_paper()]).unchanged == 1
    clock.tick()
    assert store.upsert([api_paper(upvotes=9, comments=4)]).updated == 1
    stored = store.get("2603.01234")
    assert stored is not None
    assert stored.paper.upvotes == 9
    assert stored.paper.comments == 4
    assert stored.first_seen == datetime(2026, 3, 6, 8, tzinfo=UTC)
    assert stored.last_seen == datetime(2026, 3, 6, 10, tzinfo=UTC)
    # Only counts changed: no revision of the feed entry.
    assert stored.rev == 1
    assert stored.changed == stored.first_seen


def test_counts_never_go_down(store: Store) -> None:
    store.upsert([api_paper(upvotes=20, comments=3)])
    store.upsert([api_paper(upvotes=4, comments=None)])
    stored = store.get("2603.01234")
    assert stored is not None
    assert (stored.paper.upvotes, stored.paper.comments) == (20, 3)


def test_displayed_change_is_a_revision(store: Store, clock: Clock) -> None:
    store.upsert([api_paper()])
    clock.tick()
    store.upsert([api_paper(title="Lattice Sketches for Sparse Planning (v2)")])
    stored = store.get("2603.01234")
    assert stored is not None
    assert stored.rev == 2
    assert stored.changed == clock.now
    assert stored.paper.title.endswith("(v2)")


def test_text_then_api_is_one_paper_with_the_first_key(store: Store) -> None:
    store.upsert([text_paper("Lattice  sketches for SPARSE planning")])
    counts = store.upsert([api_paper()])
    assert counts.updated == 1 and counts.new == 0
    assert store.count() == 1
    stored = store.get("2603.01234")
    assert stored is not None
    # The key is the feed entry's identity: it never changes once given out.
    assert stored.paper.key == title_key("Lattice sketches for sparse planning")
    assert stored.paper.arxiv_id == "2603.01234"
    assert stored.paper.authors == ("Ana Ruiz", "Bo Chen")


def test_api_then_text_only_fills_empty_fields(store: Store) -> None:
    store.upsert([api_paper(organization=None)])
    store.upsert([text_paper(abstract="A different abstract.", organization="Other Lab")])
    assert store.count() == 1
    stored = store.get("2603.01234")
    assert stored is not None
    assert stored.paper.abstract == "We study a made-up planner."
    assert stored.paper.organization == "Other Lab"
    assert stored.paper.key == "2603.01234"


def test_two_api_papers_with_one_title_stay_two(store: Store) -> None:
    store.upsert([api_paper("2603.00001"), api_paper("2603.00002")])
    assert store.count() == 2


def test_first_featured_day_is_kept(store: Store) -> None:
    store.upsert([api_paper(featured=date(2026, 3, 6))])
    store.upsert([api_paper(featured=date(2026, 3, 9))])
    stored = store.get("2603.01234")
    assert stored is not None and stored.paper.featured == date(2026, 3, 6)


def test_nothing_is_deleted_when_a_day_shrinks(store: Store) -> None:
    store.upsert([api_paper("2603.00001"), api_paper("2603.00002", title="Another One")])
    store.upsert([api_paper("2603.00001")])
    assert store.count() == 2


def test_seq_tracks_what_changed(store: Store) -> None:
    store.upsert([api_paper("2603.00001")])
    mark = store.seq
    store.upsert([api_paper("2603.00001"), api_paper("2603.00002", title="Another One")])
    changed = [s.paper.key for s in store.papers(since_seq=mark)]
    assert changed == ["2603.00002"]
    assert store.seq == mark + 1


def test_papers_are_newest_first(store: Store) -> None:
    store.upsert(
        [
            api_paper("2603.00001", featured=date(2026, 3, 5)),
            api_paper("2603.00002", title="B", featured=date(2026, 3, 6)),
            api_paper(
                "2603.00003",
                title="C",
                featured=date(2026, 3, 6),
                published=datetime(2026, 3, 5, tzinfo=UTC),
            ),
        ]
    )
    assert [s.paper.key for s in store.papers()] == ["2603.00003", "2603.00002", "2603.00001"]
    rows = store.papers_by_id([s.rowid for s in store.papers()][::-1])
    assert [s.paper.key for s in rows] == ["2603.00003", "2603.00002", "2603.00001"]


def test_round_trip_keeps_every_field(store: Store) -> None:
    paper = api_paper(
        ai_summary="One line.",
        ai_keywords=("routing", "sparsity"),
        github_repo="https://github.com/example/x",
        project_page="https://example.org/x",
        authors=("Zoë Ñandú", "李 雷"),
    )
    store.upsert([paper])
    stored = store.get(paper.key)
    assert stored is not None and stored.paper == paper


def test_failed_upsert_leaves_the_store_as_it_was(store: Store) -> None:
    store.upsert([api_paper("2603.00001")])
    seq = store.seq

    def broken() -> object:
        yield api_paper("2603.00002", title="Two")
        raise RuntimeError("the parser died half way")

    with pytest.raises(RuntimeError):
        store.upsert(broken())  # type: ignore[arg-type]
    assert store.count() == 1
    assert store.seq == seq
    assert store.integrity_check() == "ok"


def test_fetch_state_round_trip(store: Store) -> None:
    url = "http://127.0.0.1/api/daily_papers?date=2026-03-06&limit=100"
    assert store.fetch_state(url) is None
    state = FetchState(
        url,
        date(2026, 3, 6),
        '"abc"',
        "Fri, 06 Mar 2026 08:00:00 GMT",
        datetime(2026, 3, 6, 8, tzinfo=UTC),
        12,
    )
    store.save_fetch(state)
    assert store.fetch_state(url) == state
    assert store.fetched_days() == {date(2026, 3, 6)}


def test_locked_database_gives_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    with Store(path) as s:
        s._db.execute("PRAGMA busy_timeout = 50")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StorageError, match="cannot write"):
                s.upsert([api_paper()])
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert s.count() == 0


def test_an_older_store_is_upgraded_in_place(tmp_path: Path) -> None:
    from feedsync.store import schema as store_module

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(store_module.MIGRATIONS[:2], 1):
        for statement in store_module.statements(script):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {number}")
    db.execute("INSERT INTO topics (slug, signature, seq) VALUES ('t', 'sig', 0)")
    db.execute("INSERT INTO published (name, sha256) VALUES ('t.rss', 'abc')")
    db.close()
    with Store(path) as s:
        s.upsert([api_paper()])
        (stored,) = list(s.papers())
        s._db.execute("INSERT INTO matches (slug, paper_id) VALUES ('t', ?)", (stored.rowid,))
        assert s.schema_version == len(MIGRATIONS)
        assert s.published() == {"t.rss": ("abc", None)}
        assert s.topic_states()["t"].matched == 0
        assert s.integrity_check() == "ok"


def test_sqlite_errors_outside_transactions_are_storage_errors(store: Store) -> None:
    store._db.execute("DROP TABLE topics")
    with pytest.raises(StorageError, match=r"cannot use the store .*no such table: topics"):
        store.topic_states()


def test_an_older_store_keeps_its_matches_in_order_after_upgrade(tmp_path: Path) -> None:
    """Matches written before they carried sort keys get them in the migration."""
    from feedsync.store import MatchUpdate
    from feedsync.store import schema as store_module

    path = tmp_path / "old.sqlite3"
    with Store(path) as s:
        s.upsert(api_paper(f"2603.{n:05d}", featured=date(2026, 3, n)) for n in range(1, 6))
    db = sqlite3.connect(path, isolation_level=None)
    # Back to schema 4: matches without the sort key columns.
    db.execute("DROP INDEX matches_newest")
    db.execute("ALTER TABLE matches DROP COLUMN featured")
    db.execute("ALTER TABLE matches DROP COLUMN published")
    db.execute("INSERT INTO topics (slug, signature, seq) VALUES ('t', 'sig', 0)")
    db.executemany("INSERT INTO matches (slug, paper_id) VALUES ('t', ?)", [(1,), (3,), (5,)])
    db.execute("DROP TABLE papers_fts")  # nor 7's
    db.execute("DROP TABLE search_terms")
    db.execute("DROP TABLE search_odd")
    db.execute("PRAGMA user_version = 4")
    db.close()
    assert len(store_module.MIGRATIONS) >= 6
    with Store(path) as s:
        assert [i for i, _ in s.newest_ids("t", 10)] == [5, 3, 1]
        s.save_matches([MatchUpdate("t", "sig", {2}, scope={2})], seq=s.seq)
        assert [i for i, _ in s.newest_ids("t", 10)] == [5, 3, 2, 1]
        assert s.integrity_check() == "ok"


def test_newest_follows_every_change_of_a_papers_dates(store: Store) -> None:
    """Matches keep a copy of each paper's sort key; it must never go stale."""
    import random

    from feedsync.store import MatchUpdate

    rng = random.Random(3)
    days = [date(2026, 3, d) for d in range(1, 28)]

    def random_paper(n: int) -> Paper:
        return api_paper(
            f"2603.{n:05d}",
            title=f"Paper {n}",
            featured=rng.choice([None, *days]),
            published=rng.choice([None, datetime(2026, 2, rng.randint(1, 28), tzinfo=UTC)]),
        )

    store.upsert(random_paper(n) for n in range(60))
    ids = [p.rowid for p in store.papers()]
    chosen = set(rng.sample(ids, 40))
    store.save_matches([MatchUpdate("t", "sig", chosen)], seq=store.seq)
    for _ in range(5):
        # Revisions move published dates and fill featured days that were missing.
        store.upsert(random_paper(n) for n in rng.sample(range(60), 20))
        expected = [p.rowid for p in store.papers() if p.rowid in chosen][:15]
        assert [i for i, _ in store.newest_ids("t", 15)] == expected
        assert [p.rowid for p in store.newest("t", 15)] == expected


@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.frozensets(st.integers(1, 12)),  # what the topic selects among the scope
            st.none() | st.frozensets(st.integers(1, 12)),  # the papers re-matched; None: all
        ),
        min_size=1,
        max_size=8,
    )
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_each_topics_match_count_follows_every_update(
    tmp_path: Path,
    steps: list[tuple[str, frozenset[int], frozenset[int] | None]],
) -> None:
    """The count a topic keeps is updated by what changed; it must equal its matches."""
    from feedsync.store import MatchUpdate

    with Store(tmp_path / f"{uuid.uuid4().hex}.sqlite3") as store:
        store.upsert(api_paper(f"2603.{n:05d}", title=f"Paper {n}") for n in range(1, 13))
        ids = [p.rowid for p in store.papers()]
        model: dict[str, set[int]] = {}
        for slug, chosen, scope in steps:
            scope_ids = None if scope is None else {ids[i - 1] for i in scope}
            selected = {ids[i - 1] for i in chosen}
            if scope_ids is None:
                model[slug] = set(selected)
            else:
                selected &= scope_ids  # a scoped re-match only selects among its scope
                model[slug] = (model.get(slug, set()) - scope_ids) | selected
            store.save_matches([MatchUpdate(slug, "sig", selected, scope_ids)], seq=store.seq)
            states = store.topic_states()
            for name, members in model.items():
                assert states[name].matched == len(members)
                assert {i for i, _ in store.newest_ids(name, 100)} == members


def test_cached_entries_of_another_renderer_version_are_dropped(store: Store) -> None:
    from feedsync.models import Fragment

    store.upsert([api_paper()])
    (paper,) = store.papers()
    entry = Fragment(paper.rev, datetime(2026, 3, 6, tzinfo=UTC), b"<item/>", b"<entry/>")
    assert store.fragments({paper.rowid: paper.rev}, "1") == {}
    store.save_fragments({paper.rowid: entry}, keep=[paper.rowid])
    assert store.fragments({paper.rowid: paper.rev}, "1") == {paper.rowid: entry}
    assert store.fragments({paper.rowid: paper.rev + 1}, "1") == {}  # another revision
    assert store.fragments({paper.rowid: paper.rev}, "2") == {}  # another renderer
    assert store.fragments({paper.rowid: paper.rev}, "1") == {}  # and it is gone


# -- what is wrapped: the file's faults, not our own SQL ----------------------------------------


def test_a_programming_error_is_a_bug_with_its_traceback(tmp_path: Path) -> None:
    """A typo or a wrong binding in feedsync's SQL must not read as "cannot use the store"
    (exit 3, 'your database is unusable'): it surfaces as the bug it is."""
    with Store(tmp_path / "s.sqlite3") as store:
        db = store._db  # the connection every statement goes through
        with pytest.raises(sqlite3.OperationalError, match="syntax error"):
            db.execute("SELCT 1")
        with pytest.raises(sqlite3.OperationalError, match="no such column"):
            db.execute("SELECT no_such_column FROM papers")
        with pytest.raises(sqlite3.ProgrammingError):
            db.execute("SELECT ?", (1, 2))
        with pytest.raises(sqlite3.IntegrityError), store._transaction():
            db.execute("INSERT INTO papers (id, key) VALUES (1, 'a'), (1, 'b')")


def test_the_files_faults_are_still_storage_errors(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    with Store(path) as store:
        store.upsert([api_paper()])
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("PRAGMA busy_timeout = 0")
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with Store(path) as store:
            store._db.execute("PRAGMA busy_timeout = 0")
            with pytest.raises(StorageError, match="database is locked"):
                store.upsert([api_paper(title="Another Title For The Lock Test")])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match=r"cannot open the store .*not a database"):
        Store(path)


# -- the full-text table follows every upsert ---------------------------------------------------

_texts = st.text(alphabet="abc ÉéßﬁＧ-İ", max_size=12)
_upserts = st.lists(
    st.tuples(
        st.sampled_from(["2603.00001", "2603.00002", "2603.00003"]),
        _texts,
        _texts,
        st.lists(_texts, max_size=3),
        st.one_of(st.none(), _texts),
    ),
    min_size=1,
    max_size=12,
)


@given(_upserts)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_full_text_table_is_what_a_rebuild_gives(upserts: list[Any]) -> None:
    """New papers, changed titles, abstracts, authors and organizations, some before the
    table holds them: after any series of upserts, the table holds exactly the words a table
    built afresh from the papers would (a 'delete' with values other than those inserted
    would leave stale words), and the same rows marked as not plain ASCII."""
    from feedsync.store import search

    with Store(Path(":memory:")) as store:
        for n, (arxiv_id, title, abstract, authors, org) in enumerate(upserts):
            if n % 3 == 2:
                store.search_ready()  # some papers are in the table before they change
            store.upsert(
                [
                    api_paper(
                        arxiv_id,
                        title=title.strip() or "Untitled Lattices",
                        abstract=abstract,
                        authors=tuple(authors),
                        organization=org,
                    )
                ]
            )
        store.search_ready()
        db = store._db
        kept = search.instances(db)
        terms = {tuple(r) for r in db.execute("SELECT * FROM search_terms")}
        odd = [tuple(r) for r in db.execute("SELECT * FROM search_odd")]
        store.set_value(search.UNICODE_KEY, "rebuild")
        store.search_ready()
        assert kept == search.instances(db)
        # Words stay when text changes (the screen only needs every word there is).
        assert {tuple(r) for r in db.execute("SELECT * FROM search_terms")} <= terms
        assert odd == [tuple(r) for r in db.execute("SELECT * FROM search_odd")]


def test_a_store_without_its_full_text_table_gets_one(tmp_path: Path) -> None:
    """A store of schema 6 (word segments, no full-text table) loses the segments and gets
    the table, filled when first needed; and filled again when Python's Unicode version is
    not the one it was filled with."""
    from feedsync.store import search

    path = tmp_path / "s.sqlite3"
    with Store(path) as store:
        store.upsert([api_paper(title="Lattice Sketches"), api_paper("2603.09999", title="Robots")])
        assert store.search_ready() == 2 and store.search_ready() == 0
        before = search.instances(store._db)
    db = sqlite3.connect(path, isolation_level=None)
    # Back to schema 6, as the last release left a store: word segments, no full-text table.
    db.execute("DROP TABLE papers_fts")
    db.execute("DROP TABLE search_terms")
    db.execute("DROP TABLE search_odd")
    db.execute("DELETE FROM meta WHERE name LIKE 'fts-%'")
    db.execute(
        "CREATE TABLE word_segments (first INTEGER PRIMARY KEY, last INTEGER NOT NULL,"
        " seq INTEGER NOT NULL, data BLOB NOT NULL)"
    )
    db.execute("INSERT INTO word_segments VALUES (1, 2, 1, x'00')")
    db.execute("PRAGMA user_version = 6")
    db.close()
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        tables = {r[0] for r in store._db.execute("SELECT name FROM sqlite_master")}
        assert "word_segments" not in tables and "papers_fts" in tables
        assert store.search_ready() == 2
        assert search.instances(store._db) == before and before
        store.set_value(search.UNICODE_KEY, "1.0.0")  # as if filled by another Python
    with Store(path) as store:
        assert store.search_ready() == 2
        assert search.instances(store._db) == before


def test_a_big_batch_takes_its_words_from_the_tables_vocabulary(tmp_path: Path) -> None:
    """Over 2,000 papers at once (a backfill), the regex screen's words are read from the
    full-text table itself: every word of every plain-ASCII text must be there, as when they
    are cut one paper at a time."""
    from feedsync.store import search

    with Store(tmp_path / "s.sqlite3") as store:
        papers = [
            api_paper(f"2603.{n:05d}", title=f"Word{n} Lattice-{n % 7} Planner", abstract=f"x{n} y")
            for n in range(2500)
        ]
        store.upsert(papers)
        assert store.search_ready() == 2500 > search._MANY
        terms = {row[0] for row in store._db.execute("SELECT term FROM search_terms")}
    wanted = {w for p in papers for t in (p.title, p.abstract, *p.authors) for w in tokenize(t)}
    assert wanted <= terms


def test_a_sqlite_without_fts5_is_one_line_naming_it(tmp_path: Path) -> None:
    """Some builds of SQLite leave FTS5 out: opening the store says so, before migrating."""

    class NoFts5(sqlite3.Connection):
        def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
            if "USING fts5" in sql:
                raise sqlite3.OperationalError("no such module: fts5")
            return super().execute(sql, parameters)

    store = Store.__new__(Store)
    store._db = sqlite3.connect(":memory:", factory=NoFts5)
    try:
        with pytest.raises(StorageError, match=r"has no FTS5, the full-text search feedsync"):
            store._check_fts5()
    finally:
        store._db.close()
