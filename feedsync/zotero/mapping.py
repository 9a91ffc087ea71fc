"""A ``Paper`` as the Zotero item JSON the Web API accepts: pure functions, no I/O.

Rules, in order:
1. A paper becomes a ``preprint`` shaped like the one Zotero's own arXiv translator saves
   (repository "arXiv", archiveID "arXiv:<id>", DOI 10.48550/arXiv.<id>, the unversioned
   abstract URL, libraryCatalog "arXiv.org"), with only fields the ``preprint`` type has:
   the API fails an object per field it does not know, so nothing else is ever produced.
2. Creators are authors. "First Last" is split at the last space into firstName/lastName
   when that is safe: two or more words of letters whose middle words are initials, with no
   comma, digit, particle (van, de, al, ...) or suffix (Jr., III). Anything else is kept
   whole as ``name``: a one-field name is never wrong, a wrong split is.
3. Tags: the topic slugs, then the machine tags ``feedsync`` and ``arxiv:<id>`` (by which
   feedsync finds its items again), then the HF keywords when asked for; machine and
   keyword tags are automatic (type 1). A tag over 255 characters is dropped.
4. Text over the API's 65,535-byte field limit is cut at a character boundary.
5. Item keys are 8 characters from ``KEY_CHARS``. New items get random ones; a paper's
   PDF link gets a key derived from its parent's, so it can be re-created idempotently.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from feedsync.models import Paper

KEY_CHARS = "23456789ABCDEFGHIJKLMNPQRSTUVWXYZ"
KEY = re.compile(f"^[{KEY_CHARS}]{{8}}$")
FEEDSYNC_TAG = "feedsync"
MAX_FIELD_BYTES = 65535
MAX_TAG = 255

# Zotero schema v41: the 21 fields of the `preprint` item type.
# fmt: off
PREPRINT_FIELDS = frozenset({
    "title", "abstractNote", "genre", "repository", "archiveID", "place", "date", "series",
    "seriesNumber", "DOI", "citationKey", "url", "accessDate", "archive", "archiveLocation",
    "shortTitle", "language", "libraryCatalog", "callNumber", "rights", "extra",
})
# fmt: on
# Properties an item may carry besides its fields.
ITEM_PROPERTIES = frozenset(
    {"itemType", "creators", "tags", "collections", "relations", "key", "version", "deleted"}
)

# Lowercase name parts that make a split at the last space unsafe.
# fmt: off
_PARTICLES = frozenset({
    "van", "von", "der", "den", "de", "del", "della", "dei", "di", "da", "das", "do", "dos",
    "du", "la", "le", "les", "lo", "ter", "ten", "bin", "ibn", "al", "el", "abu", "ben",
    "bint", "st", "st.", "y", "zu",
})
# fmt: on
_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "v", "phd", "ph.d."})
_WORD = re.compile(r"^[^\W\d_](?:[^\W\d_]|['’.-])*$")
_INITIAL = re.compile(r"^[^\W\d_]\.?(?:-[^\W\d_]\.?)?$")


def arxiv_tag(arxiv_id: str) -> str:
    return f"arxiv:{arxiv_id}"


def new_key() -> str:
    """A random item or collection key, as the API would choose one."""
    return "".join(secrets.choice(KEY_CHARS) for _ in range(8))


def attachment_key(parent_key: str) -> str:
    """The key of a paper's PDF link: a function of its parent's, so a replay finds it."""
    digest = hashlib.sha256(f"feedsync-pdf:{parent_key}".encode()).digest()
    return "".join(KEY_CHARS[b % len(KEY_CHARS)] for b in digest[:8])


def preprint(
    paper: Paper,
    *,
    collections: Iterable[str],
    topics: Iterable[str],
    keyword_tags: bool = False,
) -> dict[str, Any]:
    """The editable JSON of a new ``preprint`` item for an arXiv paper."""
    arxiv_id = paper.arxiv_id
    if not arxiv_id:
        raise ValueError(f"paper {paper.key} has no arXiv id")
    fields = {
        "title": paper.title,
        "abstractNote": paper.abstract,
        "repository": "arXiv",
        "archiveID": f"arXiv:{arxiv_id}",
        "DOI": paper.doi,
        "url": paper.url,
        "date": paper.published.date().isoformat() if paper.published else "",
        "libraryCatalog": "arXiv.org",
        "extra": f"Hugging Face: {paper.hf_url}",
    }
    item: dict[str, Any] = {"itemType": "preprint"}
    item.update({name: _cut(value) for name, value in fields.items() if value})
    item["creators"] = [creator(name) for name in paper.authors if name.strip()]
    item["tags"] = tags(arxiv_id, topics, paper.ai_keywords if keyword_tags else ())
    item["collections"] = sorted(set(collections))
    return item


def pdf_attachment(paper: Paper, parent_key: str) -> dict[str, Any]:
    """A child item linking to the arXiv PDF (nothing is uploaded; no storage quota used)."""
    if not paper.pdf_url:
        raise ValueError(f"paper {paper.key} has no arXiv id")
    return {
        "itemType": "attachment",
        "parentItem": parent_key,
        "linkMode": "linked_url",
        "title": "arXiv PDF",
        "url": paper.pdf_url,
        "contentType": "application/pdf",
        "tags": [{"tag": FEEDSYNC_TAG, "type": 1}],
    }


def creator(name: str) -> dict[str, str]:
    """An author, split into first and last name only where the split is safe."""
    name = " ".join(name.split())
    words = name.split(" ")
    safe = (
        len(words) >= 2
        and all(_WORD.match(w) for w in words)
        and not any(w.lower() in _PARTICLES or w.lower() in _SUFFIXES for w in words)
        and all(_INITIAL.match(w) for w in words[1:-1])
        and not _INITIAL.match(words[-1])
    )
    if safe:
        first, last = name.rsplit(" ", 1)
        return {"creatorType": "author", "firstName": first, "lastName": last}
    return {"creatorType": "author", "name": _cut(name)}


def tags(
    arxiv_id: str, topics: Iterable[str], keywords: Iterable[str] = ()
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"tag": slug} for slug in sorted(set(topics))]
    out.append({"tag": FEEDSYNC_TAG, "type": 1})
    out.append({"tag": arxiv_tag(arxiv_id), "type": 1})
    seen = {t["tag"].lower() for t in out}
    for keyword in keywords:
        keyword = " ".join(keyword.split())
        if keyword and len(keyword) <= MAX_TAG and keyword.lower() not in seen:
            seen.add(keyword.lower())
            out.append({"tag": keyword, "type": 1})
    return out


def with_memberships(
    data: Mapping[str, Any],
    *,
    collections: Iterable[str],
    topics: Iterable[str],
    gone: Iterable[str] = (),
) -> dict[str, Any] | None:
    """``data`` (an item as Zotero holds it) filed in more collections and topic tags.

    Only adds: what the user or another topic put there stays. Keys of collections known to
    be deleted are dropped, since writing them back would fail the whole object. None when
    nothing is missing.
    """
    dead = set(gone)
    current = [c for c in data.get("collections", []) if c not in dead]
    merged = current + sorted(set(collections) - set(current))
    present = {t.get("tag") for t in data.get("tags", [])}
    added = [{"tag": slug} for slug in sorted(set(topics)) if slug not in present]
    if merged == list(data.get("collections", [])) and not added:
        return None
    out = dict(data)
    out["collections"] = merged
    out["tags"] = [*data.get("tags", []), *added]
    return out


def arxiv_id_of(data: Mapping[str, Any]) -> str | None:
    """The arXiv id an item is for: its ``arxiv:<id>`` tag, else its archiveID."""
    for tag in data.get("tags", []):
        name = str(tag.get("tag", ""))
        if name.lower().startswith("arxiv:") and len(name) > 6:
            return name[6:]
    archive_id = str(data.get("archiveID") or "")
    if archive_id.lower().startswith("arxiv:") and len(archive_id) > 6:
        return archive_id[6:]
    return None


def describe(paper: Paper, names: Sequence[str]) -> str:
    """One line for `zotero sync --dry-run`."""
    where = ", ".join(names) or "no collection"
    return f"{paper.arxiv_id}  {_short(paper.title, 70)}  [{where}]"


def _cut(text: str) -> str:
    data = text.encode("utf-8")
    if len(data) <= MAX_FIELD_BYTES:
        return text
    return data[:MAX_FIELD_BYTES].decode("utf-8", "ignore")


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
