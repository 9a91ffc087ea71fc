"""Finding the items that already exist for papers the store has no record of.

A lost store, or a second feedsync on the same library, must not create duplicates: before
anything is created for a paper the store does not know, Zotero is asked. Rules, in order:
1. One request lists every item tagged ``feedsync`` (``format=versions``: keys only,
   unpaged). Keys the store knows -- its items and their derived PDF-link keys -- are set
   aside; when nothing is left, nothing can be adopted and no further lookup is made
   (the usual case, and the cheap one: a first sync of 1,000 papers costs this one read).
2. Otherwise the unknown items are read in full, by key (50 a request) or by ``arxiv:<id>``
   tag OR-queries for the unknown papers (25 tags a request, URLs stay short), whichever
   takes fewer requests.
3. An item is matched to a paper by its ``arxiv:<id>`` tag, else its archiveID. Child
   items are skipped. Among duplicates made by hand or by older tools the oldest wins.
4. An adopted item is ``synced`` at the version and in the collections Zotero reports;
   its PDF link counts as present when its derived key was in the listing.

Items saved without feedsync's tags (by hand, with the Zotero connector) are not found:
``q`` searches cannot match arXiv ids (see shared/reference/zotero.md, section 3).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from feedsync.store import ZoteroItemState
from feedsync.zotero import mapping

if TYPE_CHECKING:
    from feedsync.zotero.client import ZoteroClient

KEYS_PER_READ = 50  # itemKey values per request
TAGS_PER_READ = 25  # arxiv: tags per OR-query


def existing_items(
    client: ZoteroClient, records: Mapping[str, ZoteroItemState], arxiv_ids: Sequence[str]
) -> list[ZoteroItemState]:
    """States for the papers among ``arxiv_ids`` that Zotero already holds an item for."""
    listing = client.item_versions(tag=mapping.FEEDSYNC_TAG)
    known = set()
    for record in records.values():
        known |= {record.key, mapping.attachment_key(record.key)}
    foreign = set(listing) - known
    parents = sorted(foreign - {mapping.attachment_key(k) for k in foreign})
    if not parents:
        return []
    if math.ceil(len(parents) / KEYS_PER_READ) <= math.ceil(len(arxiv_ids) / TAGS_PER_READ):
        found = read_items(client, parents)
    else:
        found = [
            data
            for start in range(0, len(arxiv_ids), TAGS_PER_READ)
            for data in client.items(
                tags=[mapping.arxiv_tag(i) for i in arxiv_ids[start : start + TAGS_PER_READ]]
            )
        ]
    best = _oldest_per_paper(found, set(arxiv_ids))
    states = []
    for arxiv_id, data in sorted(best.items()):
        pdf = mapping.attachment_key(data["key"])
        states.append(
            ZoteroItemState(
                arxiv_id=arxiv_id,
                key=data["key"],
                version=int(data["version"]),
                status="synced",
                collections=tuple(data.get("collections", [])),
                attachment=pdf if pdf in listing else None,
            )
        )
    return states


def read_items(client: ZoteroClient, keys: Sequence[str]) -> list[dict[str, Any]]:
    return [
        data
        for start in range(0, len(keys), KEYS_PER_READ)
        for data in client.items(keys=keys[start : start + KEYS_PER_READ])
    ]


def _oldest_per_paper(
    items: Iterable[dict[str, Any]], wanted: set[str]
) -> dict[str, dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for data in items:
        arxiv_id = mapping.arxiv_id_of(data)
        if data.get("parentItem") or arxiv_id is None or arxiv_id not in wanted:
            continue
        if arxiv_id not in best or _age(data) < _age(best[arxiv_id]):
            best[arxiv_id] = data
    return best


def _age(data: dict[str, Any]) -> tuple[str, int, str]:
    return (str(data.get("dateAdded", "")), int(data.get("version", 0)), str(data["key"]))
