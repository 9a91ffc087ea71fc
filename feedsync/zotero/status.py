"""Whether the Zotero sync can run, and what it has done so far (no network).

Rules: the sync needs ``[zotero] enabled``, a library id, a key and at least one topic with
``zotero = true``; anything missing is a ``ConfigError`` (exit code 2) saying what to set.
The status counts every item state the store keeps for the configured library, plus the
matched papers not sent yet ("waiting") and those without an arXiv id ("skipped").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from feedsync.config import Config, ZoteroConfig
from feedsync.errors import ConfigError
from feedsync.match.topics import Topic
from feedsync.store import Store
from feedsync.zotero.collections import PARENT


def library_of(zotero: ZoteroConfig) -> str:
    """The API's library prefix, e.g. ``users/475425``; state in the store is kept per one."""
    return f"{zotero.library_type}s/{zotero.library_id}"


def opted_in(config: Config, topics: Sequence[Topic]) -> list[Topic]:
    """The topics to sync; ConfigError when Zotero is off, incomplete, or chosen by none."""
    zotero = config.zotero
    if not zotero.enabled:
        raise ConfigError(
            "Zotero sync is disabled: set [zotero] enabled = true, library_id and api_key "
            "(see the README's Zotero section)"
        )
    if not zotero.library_id or not zotero.key():
        raise ConfigError("[zotero] needs library_id and an api_key (or api_key_file)")
    chosen = [t for t in topics if t.zotero]
    if not chosen:
        raise ConfigError("no topic has `zotero = true`: nothing to sync")
    return chosen


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """`feedsync zotero status`."""

    library: str
    api_url: str
    collections: list[tuple[str, str, str | None]]  # (slug, name, key); slug '' = parent
    synced: int
    pending: int
    failed: int
    waiting: int  # matched, with an arXiv id, never sent
    skipped_no_id: int
    failures: list[tuple[str, str, int]]  # (arXiv id, last error, attempts)

    def lines(self) -> list[str]:
        out = [f"library: {self.library} at {self.api_url}"]
        for slug, name, key in self.collections:
            where = key or "(not created yet)"
            out.append(f"  {slug}: {name!r} {where}" if slug else f"collection {name!r}: {where}")
        out.append(
            f"papers: {self.synced} synced, {self.pending} pending, {self.failed} failed, "
            f"{self.waiting} waiting, {self.skipped_no_id} skipped (no arXiv id)"
        )
        out += [f"failed: {i}: {error} ({n} attempt(s))" for i, error, n in self.failures]
        return out


def status(config: Config, store: Store, topics: Sequence[Topic]) -> SyncStatus:
    chosen = opted_in(config, topics)
    library = library_of(config.zotero)
    stored = store.zotero_collections(library)
    parent = stored.get(PARENT)
    collections: list[tuple[str, str, str | None]] = [
        (PARENT, config.zotero.collection, parent.key if parent else None)
    ]
    for topic in chosen:
        state = stored.get(topic.slug)
        collections.append((topic.slug, topic.title, state.key if state else None))
    records = store.zotero_items(library)
    matched = store.zotero_candidates([t.slug for t in chosen])
    ids = [p.arxiv_id for p, _ in matched if p.arxiv_id]
    count = {
        s: sum(1 for r in records.values() if r.status == s)
        for s in ("synced", "pending", "failed")
    }
    return SyncStatus(
        library=library,
        api_url=config.zotero.api_url,
        collections=collections,
        synced=count["synced"],
        pending=count["pending"],
        failed=count["failed"],
        waiting=sum(1 for i in ids if i not in records),
        skipped_no_id=len(matched) - len(ids),
        failures=sorted(
            (r.arxiv_id, r.error or "", r.attempts)
            for r in records.values()
            if r.status == "failed"
        ),
    )
