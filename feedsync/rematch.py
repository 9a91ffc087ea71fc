"""Re-matching the whole store: every stored paper against some topics, through segments.

A new install, a changed query or ``feedsync preview`` must test every stored paper.
Reading and tokenizing 50,000 papers takes seconds; instead, the store keeps the postings
of the papers in word segments (feedsync/query/segment.py), each covering whole blocks of
``BLOCK`` paper ids, and this reads them back, building the missing ones as it goes. Two
kinds of paper are matched the ordinary way (``topics.match``) instead:

- papers changed since their segment was built (the store's seq says which): the segment
  still holds their old words, so its answers about them are dropped;
- the newest papers, in the last block, which is not complete yet.

A segment with too many changed papers is built again. Nothing else ever writes or
invalidates a segment, so the hourly run pays nothing for them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import TYPE_CHECKING

from feedsync.models import Paper
from feedsync.store import Store
from feedsync.topics import Topic, match

if TYPE_CHECKING:  # the query package loads only when a run matches
    from feedsync.query import MemoryIndex, Segment

# Segments cover whole blocks of this many paper ids. The last, incomplete block is
# tokenized on every re-match, so this bounds that work.
BLOCK = 1024
# A segment built now covers up to this many blocks (as many as are complete and have no
# segment): fewer, larger segments are faster to query; building one holds its papers'
# documents and index in memory.
MAX_BLOCKS = 8
# Stored segments are queried in groups of up to this many papers: bounds memory.
GROUP = 16 * BLOCK
# Segment ids are packed as 32-bit unsigned integers.
_MAX_ID = 2**32 - 1


def match_store(topics: Sequence[Topic], store: Store, *, save: bool = True) -> dict[str, set[int]]:
    """For each topic, the ids of every stored paper it selects.

    With ``save``, segments that had to be built are stored for the next time; without, the
    store is only read (a preview).
    """
    from feedsync.query import SegmentIndex

    found: dict[str, set[int]] = {topic.slug: set() for topic in topics}
    last_id = store.max_paper_id()
    if not topics or last_id > _MAX_ID:
        return match(topics, store.documents()) if topics else found
    complete = (last_id + 1) // BLOCK * BLOCK  # ids below this are in complete blocks
    stale: set[int] = set()
    group: list[Segment] = []

    def select() -> None:
        index = SegmentIndex(group, store.field_texts)
        for topic in topics:
            found[topic.slug] |= topic.query.select(index)
        group.clear()

    # As in topics.match: postings are millions of small objects without cycles.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for segment, built, changed in _segments(store, complete, save=save):
            if built is not None:  # just built: its documents answer faster than reading back
                for topic in topics:
                    found[topic.slug] |= topic.query.select(built)
                del segment, built  # before the next one is built
                continue
            group.append(segment)
            stale |= changed
            if sum(len(s.ids) for s in group) >= GROUP:
                select()
        if group:
            select()
    finally:
        if collecting:
            gc.enable()
    for ids in found.values():
        ids -= stale
    rest = _papers(store, stale, complete, last_id)
    for slug, ids in match(topics, rest).items():
        found[slug] |= ids
    return found


def _segments(
    store: Store, complete: int, *, save: bool
) -> Iterator[tuple[Segment, MemoryIndex | None, set[int]]]:
    """Segments covering ids 0 to ``complete`` - 1, each with the index it was built from
    (if it was built now) and the ids of the papers changed since it was built.

    A stored segment is used unless more than an eighth of its papers changed since it was
    built, or it is of another version; then it is built again over the same ids. Ids no
    segment covers get new segments of up to MAX_BLOCKS blocks.
    """
    from feedsync.query import Segment

    stored = store.word_segments()
    first = 0
    while first < complete:
        known = stored.get(first)
        if known is not None and known[0] < complete:
            last, seq = known
            changed = store.changed_between(first, last, seq)
            data = store.word_segment(first) if len(changed) <= (last - first + 1) // 8 else None
            try:
                segment = Segment.from_bytes(data) if data is not None else None
            except ValueError:
                segment = None  # another version, or damaged: built again
            if segment is not None:
                yield segment, None, changed
                first = last + 1
                continue
        else:
            last = first + BLOCK - 1
            while (
                last + BLOCK < complete
                and last + 1 not in stored
                and (last + 1 - first) < MAX_BLOCKS * BLOCK
            ):
                last += BLOCK
        yield *_build(store, first, last, save=save), set()
        first = last + 1


def _build(store: Store, first: int, last: int, *, save: bool) -> tuple[Segment, MemoryIndex]:
    from feedsync.query import MemoryIndex, Segment, document

    seq = store.seq  # read first: a paper changed while reading counts as changed
    # Tokenized first, then indexed: feeding the index as papers are read is 20% slower
    # (measured on 50,000 papers; the two interleave their allocations).
    docs = [(rowid, document(paper)) for rowid, paper in store.documents_between(first, last)]
    index = MemoryIndex(docs)
    segment = Segment.of(index)
    if save:
        store.save_word_segment(first, last, seq, segment.to_bytes())
    return segment, index


def _papers(store: Store, ids: set[int], first: int, last: int) -> Iterator[tuple[int, Paper]]:
    """The papers with ``ids``, then those from ``first`` to ``last``."""
    by_id = store.documents_by_id(ids) if ids else iter(())
    return chain(by_id, store.documents_between(first, last))
