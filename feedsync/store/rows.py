"""Papers as rows: the columns, the merge rules of an upsert, and back to models."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from typing import Any

from feedsync.models import Paper, StoredPaper
from feedsync.text import title_key

# Fields a feed shows; a change to one of them is a revision of the entry.
DISPLAYED = (
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
COLUMNS = (
    "key, arxiv_id, title_key, title, abstract, authors, author_count, organization, published,"
    " featured, upvotes, comments, ai_summary, ai_keywords, github_repo, project_page"
)
SELECT_PAPERS = f"SELECT id, {COLUMNS}, first_seen, last_seen, changed, rev FROM papers"
# A topic's newest papers: the first rows of its range in matches_newest, no sort.
NEWEST = (
    "SELECT {columns} FROM matches m INDEXED BY matches_newest"
    " JOIN papers p ON p.id = m.paper_id WHERE m.slug = ?"
    " ORDER BY m.featured DESC, m.published DESC, m.paper_id DESC LIMIT ?"
)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def to_row(paper: Paper) -> dict[str, Any]:
    return {
        "key": paper.key,
        "arxiv_id": paper.arxiv_id,
        "title_key": title_key(paper.title),
        "title": paper.title,
        "abstract": paper.abstract,
        "authors": json.dumps(list(paper.authors), ensure_ascii=False),
        "author_count": paper.author_count,
        "organization": paper.organization,
        "published": iso(paper.published) if paper.published else None,
        "featured": paper.featured.isoformat() if paper.featured else None,
        "upvotes": paper.upvotes,
        "comments": paper.comments,
        "ai_summary": paper.ai_summary,
        "ai_keywords": json.dumps(list(paper.ai_keywords), ensure_ascii=False),
        "github_repo": paper.github_repo,
        "project_page": paper.project_page,
    }


_EMPTY = (None, "", "[]")


def merge(old: dict[str, Any], new: dict[str, Any], *, authoritative: bool) -> dict[str, Any]:
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


def stored_paper(row: sqlite3.Row) -> StoredPaper:
    return StoredPaper(
        paper=paper_from_row(row),
        rowid=row["id"],
        first_seen=datetime.fromisoformat(row["first_seen"]),
        last_seen=datetime.fromisoformat(row["last_seen"]),
        changed=datetime.fromisoformat(row["changed"]),
        rev=row["rev"],
    )


def paper_from_row(row: sqlite3.Row) -> Paper:
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


def newest_first(stored: StoredPaper) -> tuple[Any, ...]:
    p = stored.paper
    return (
        p.featured or date.min,
        p.published or datetime.min.replace(tzinfo=UTC),
        stored.rowid,
    )
