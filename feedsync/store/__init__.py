"""The embedded SQLite store, the only package that speaks SQL.

``core`` holds ``Store`` and its rules; ``schema`` the numbered migrations; ``rows`` how a
paper maps to a row; ``sqlite`` the connection and transactions; ``search`` the full-text
table topic queries run on; ``zotero`` the sync's bookkeeping tables; ``locks`` the data
directory's locks.
"""

from feedsync.store.core import (
    Clock,
    MatchUpdate,
    RunRecord,
    Store,
    TopicState,
    utcnow,
)
from feedsync.store.schema import MIGRATIONS
from feedsync.store.zotero import ZoteroCollectionState, ZoteroItemState

__all__ = [
    "MIGRATIONS",
    "Clock",
    "MatchUpdate",
    "RunRecord",
    "Store",
    "TopicState",
    "ZoteroCollectionState",
    "ZoteroItemState",
    "utcnow",
]
