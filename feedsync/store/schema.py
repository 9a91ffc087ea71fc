"""The store's schema: numbered migrations, applied in order (``PRAGMA user_version``)."""

from __future__ import annotations

# Numbered migrations: append, never edit one that has shipped.
MIGRATIONS: tuple[str, ...] = (
    # 1: papers, fetch state, topics and their matches, published files, runs
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
    # 6: word segments, the postings of each block of paper ids (feedsync/query/segment.py),
    # so re-matching every paper reads them back instead of tokenizing the archive again.
    # ``seq`` is the store's seq when the segment was built: papers changed since are stale.
    """
    CREATE TABLE word_segments (
        first INTEGER PRIMARY KEY,
        last INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    """,
    # 7: the full-text table topic queries run on, and what regexes pick candidates with
    # (store/search.py). They are filled when first needed.
    """
    CREATE VIRTUAL TABLE papers_fts USING fts5(title, abstract, keyword, author, org,
        content='', columnsize=0, tokenize='unicode61 remove_diacritics 0', prefix='2 3');
    CREATE TABLE search_terms (term TEXT PRIMARY KEY) WITHOUT ROWID;
    CREATE TABLE search_odd (paper_id INTEGER PRIMARY KEY, columns INTEGER NOT NULL);
    """,
    # 8: topics match on the full-text table now: the word segments go.
    """
    DROP TABLE word_segments;
    """,
)


def statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
