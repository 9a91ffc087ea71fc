"""Typed, immutable values passed between the pipeline stages.

A stage receives and returns these, never loose dicts: ``Paper`` leaves the parsers, goes
into the store and comes back out of it for matching, rendering and the Zotero mapping.
Every datetime here is timezone-aware UTC; ids are strings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

ARXIV_ABS = "https://arxiv.org/abs/"
ARXIV_PDF = "https://arxiv.org/pdf/"
HF_PAPERS = "https://huggingface.co/papers/"


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper of the digest, as parsed or as stored.

    ``key`` is its stable identity: the arXiv id when known, else ``title:<hash>`` of the
    normalized title. ``featured`` is the Daily Papers day; ``published`` the arXiv date.
    """

    key: str
    title: str
    arxiv_id: str | None = None
    abstract: str = ""
    authors: tuple[str, ...] = ()
    author_count: int | None = None
    organization: str | None = None
    published: datetime | None = None
    featured: date | None = None
    upvotes: int | None = None
    comments: int | None = None
    ai_summary: str | None = None
    ai_keywords: tuple[str, ...] = ()
    github_repo: str | None = None
    project_page: str | None = None

    @property
    def url(self) -> str | None:
        """The arXiv abstract page, when the id is known."""
        return f"{ARXIV_ABS}{self.arxiv_id}" if self.arxiv_id else None

    @property
    def pdf_url(self) -> str | None:
        return f"{ARXIV_PDF}{self.arxiv_id}" if self.arxiv_id else None

    @property
    def hf_url(self) -> str | None:
        return f"{HF_PAPERS}{self.arxiv_id}" if self.arxiv_id else None

    @property
    def doi(self) -> str | None:
        return f"10.48550/arXiv.{self.arxiv_id}" if self.arxiv_id else None

    def to_json(self) -> dict[str, Any]:
        """The record `feedsync parse` prints: exactly the documented fields, in order."""
        return {
            "id": self.arxiv_id,
            "key": self.key,
            "title": self.title,
            "abstract": self.abstract,
            "authors": list(self.authors),
            "author_count": self.author_count,
            "organization": self.organization,
            "published": self.published.date().isoformat() if self.published else None,
            "featured": self.featured.isoformat() if self.featured else None,
            "upvotes": self.upvotes,
            "comments": self.comments,
            "ai_summary": self.ai_summary,
            "ai_keywords": list(self.ai_keywords),
            "github_repo": self.github_repo,
            "project_page": self.project_page,
            "url": self.url,
        }

    def replace(self, **changes: Any) -> Paper:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class ParseWarning:
    """One entry of a digest that was skipped; ``where`` is "line N" or "entry N"."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Digest:
    """What a parser returns: the papers it could read and the entries it skipped.

    ``day`` is the featured day the digest is for, when the input says so.
    """

    papers: tuple[Paper, ...]
    warnings: tuple[ParseWarning, ...] = ()
    format: str = ""
    day: date | None = None


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    """How an upsert changed the store."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            self.new + other.new,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
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
class StoredPaper:
    """A paper as the store holds it, with its bookkeeping.

    ``rev`` grows whenever a field that feeds show (title, abstract, authors, ...) changes;
    ``changed`` is when that last happened, which becomes the entry's ``updated`` date.
    """

    paper: Paper
    rowid: int
    first_seen: datetime
    last_seen: datetime
    changed: datetime
    rev: int = 1


@dataclass(frozen=True, slots=True)
class Fragment:
    """One paper's rendered feed entry in both formats, with the topic left as a marker.

    fragments.py makes and splices them; the store keeps them by (paper, ``rev``).
    """

    rev: int  # the paper revision it was rendered from
    updated: datetime  # the entry's updated date: a feed's date is its newest entry's
    rss: bytes
    atom: bytes
