"""The collections feedsync files items in: a parent, and one subcollection per topic.

Rules, in order:
1. Keys remembered in the store are used as they are while their names still match the
   config (the parent's name, the topics' titles) and no write has reported them gone
   (409): resolving then costs no request.
2. Otherwise the parent is looked up among the library's top-level collections by name,
   and each topic's collection among the parent's subcollections by title. Names are not
   unique in Zotero; the oldest match wins, so every run picks the same one.
3. Absent collections are created in one write, the parent first, with client-chosen keys
   and ``version: 0``: a replay after a lost answer fails with 412 ("it exists") instead
   of making a second one. Any other refusal is a ``SyncError``.
4. A dry run looks up but creates and stores nothing; would-be collections get
   provisional keys so the plan can name them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from feedsync.errors import SyncError
from feedsync.match.topics import Topic
from feedsync.store import Store, ZoteroCollectionState
from feedsync.zotero.mapping import KEY

if TYPE_CHECKING:
    from feedsync.zotero.client import ZoteroClient

PARENT = ""  # the parent collection's slug in the store
BATCH = 50


@dataclass(frozen=True, slots=True)
class Collections:
    """Where items go: topic slug -> collection key (``PARENT`` -> the parent's)."""

    keys: dict[str, str]
    names: dict[str, str]  # key -> name
    created: list[str] = field(default_factory=list)  # what was (or would be) created


def resolve(
    store: Store,
    client: ZoteroClient,
    *,
    library: str,
    parent_name: str,
    topics: Sequence[Topic],
    gone: Iterable[str] = (),
    dry_run: bool = False,
    new_key: Callable[[], str],
) -> Collections:
    dead = set(gone)
    stored = store.zotero_collections(library)
    parent = stored.get(PARENT)
    subs = [stored.get(t.slug) for t in topics]
    if (
        parent is not None
        and parent.name == parent_name
        and parent.key not in dead
        and all(
            s is not None and s.name == t.title and s.parent == parent.key and s.key not in dead
            for s, t in zip(subs, topics, strict=True)
        )
    ):
        keys = {s.slug: s.key for s in subs if s is not None}
        names = {parent.key: parent_name, **{s.key: s.name for s in subs if s is not None}}
        return Collections({**keys, PARENT: parent.key}, names)
    return _look_up(store, client, library, parent_name, topics, dry_run, new_key)


def _look_up(
    store: Store,
    client: ZoteroClient,
    library: str,
    parent_name: str,
    topics: Sequence[Topic],
    dry_run: bool,
    new_key: Callable[[], str],
) -> Collections:
    parent_key = _pick(client.top_collections(), parent_name, False)
    existing = client.subcollections(parent_key) if parent_key else []
    creates: list[dict[str, Any]] = []
    if parent_key is None:
        parent_key = new_key()
        creates.append(
            {"key": parent_key, "version": 0, "name": parent_name, "parentCollection": False}
        )
    keys = {PARENT: parent_key}
    for topic in topics:
        key = _pick(existing, topic.title, parent_key)
        if key is None:
            key = new_key()
            creates.append(
                {"key": key, "version": 0, "name": topic.title, "parentCollection": parent_key}
            )
        keys[topic.slug] = key
    names = {parent_key: parent_name, **{keys[t.slug]: t.title for t in topics}}
    created = [_path(c, parent_name) for c in creates]
    if dry_run:
        return Collections(keys, names, created)
    for start in range(0, len(creates), BATCH):
        chunk = creates[start : start + BATCH]
        result = client.write_collections(chunk)
        for index, failure in result.failed.items():
            if failure.code != 412:  # 412 on version 0: our own lost create, it exists
                raise SyncError(
                    f"cannot create the Zotero collection {chunk[index]['name']!r} in "
                    f"{library}: {failure.message}"
                )
    states = [ZoteroCollectionState(PARENT, parent_name, "", parent_key)] + [
        ZoteroCollectionState(t.slug, t.title, parent_key, keys[t.slug]) for t in topics
    ]
    store.save_zotero_collections(library, states)
    return Collections(keys, names, created)


def _pick(collections: list[dict[str, Any]], name: str, parent: str | bool) -> str | None:
    """The oldest live collection with this name under this parent."""
    matches = [
        c
        for c in collections
        if c.get("name") == name
        and (c.get("parentCollection") or False) == (parent or False)
        and not c.get("deleted")
    ]
    if not matches:
        return None
    return str(min(matches, key=lambda c: (int(c.get("version", 0)), str(c["key"])))["key"])


def _path(collection: dict[str, Any], parent_name: str) -> str:
    if collection["parentCollection"]:
        return f"{parent_name!r} / {collection['name']!r}"
    return repr(collection["name"])


def missing(message: str, ours: Iterable[str]) -> set[str]:
    """The collection keys a 409 names, or all of ours when its wording names no key.

    Keys that are not ours are kept too: they must be dropped from an item's list before
    it is written back, or the write fails again.
    """
    named = {w.strip(".,'\"") for w in message.split()}
    named = {w for w in named if KEY.match(w)}
    return named or set(ours)
