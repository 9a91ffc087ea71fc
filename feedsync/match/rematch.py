"""Re-matching the whole store: every stored paper against some topics, through segments.

A new install, a changed query or ``feedsync preview`` must test every stored paper.
Reading and tokenizing 50,000 papers takes seconds; instead, the store keeps the postings
of the papers in word segments (feedsync/query/segment.py), each covering whole blocks of
``BLOCK`` paper ids, and this reads them back. Two kinds of paper are matched the ordinary
way (``topics.match``) instead:

- papers changed since their segment was built (the store's seq says which): the segment
  still holds their old words, so its answers about them are dropped;
- the newest papers, in the last block, which is not complete yet.

Missing segments (all of them, the first time) are built as the papers are matched, which
costs little more than matching alone; with several to build and several CPUs, worker
processes build them side by side. A segment with too many changed papers is built again.
Nothing else ever writes or invalidates a segment, so the hourly run pays nothing for them.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path
from typing import TYPE_CHECKING

from feedsync.match.topics import Topic, match
from feedsync.models import Paper
from feedsync.store import Store

if TYPE_CHECKING:  # the query package loads only when a run matches
    from feedsync.query import Segment

log = logging.getLogger(__name__)

# Segments cover whole blocks of this many paper ids. The last, incomplete block is
# tokenized on every re-match, so this bounds that work.
BLOCK = 1024
# A segment built now covers up to this many blocks (as many as are complete and have no
# segment): fewer, larger segments are faster to read back; more let workers share out
# the building.
MAX_BLOCKS = 8
# Papers tokenized and indexed at once while building: bounds a builder's memory.
CHUNK = 2 * BLOCK
# Stored segments are queried in groups of up to this many papers: bounds memory.
GROUP = 16 * BLOCK
# Worker processes are worth starting (~0.3 s each) only for this many papers to build.
PARALLEL_MIN = 2 * MAX_BLOCKS * BLOCK
# Segment ids are packed as 32-bit unsigned integers.
_MAX_ID = 2**32 - 1


@dataclass(frozen=True, slots=True)
class Built:
    """A segment built now: its ids, the store seq it reflects, and what each topic selects
    among its papers."""

    first: int
    last: int
    seq: int
    data: bytes
    selected: dict[str, set[int]]


def match_store(topics: Sequence[Topic], store: Store, *, save: bool = True) -> dict[str, set[int]]:
    """For each topic, the ids of every stored paper it selects.

    With ``save``, segments that had to be built are stored for the next time; without, the
    store is only read (a preview).
    """
    found: dict[str, set[int]] = {topic.slug: set() for topic in topics}
    last_id = store.max_paper_id()
    if not topics or last_id > _MAX_ID:
        return match(topics, store.documents()) if topics else found
    complete = (last_id + 1) // BLOCK * BLOCK  # ids below this are in complete blocks
    usable, to_build, stale = _plan(store, complete)
    selected, damaged = _select_stored(store, topics, usable)
    for slug, ids in selected.items():
        found[slug] |= ids
    for built in _build_all(store, topics, to_build + damaged):
        if save:
            store.save_word_segment(built.first, built.last, built.seq, built.data)
        for slug, ids in built.selected.items():
            found[slug] |= ids
    stale -= {i for first, last in damaged for i in range(first, last + 1)}  # built afresh
    for ids in found.values():
        ids -= stale
    rest = _papers(store, stale, complete, last_id)
    for slug, ids in match(topics, rest).items():
        found[slug] |= ids
    return found


def _plan(
    store: Store, complete: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]], set[int]]:
    """Which stored segments to read and which to build (id ranges), and the papers changed
    since the segments to read were built.

    A stored segment is read unless more than an eighth of its papers changed since it was
    built, or it cannot be read; then it is built again over the same ids. Ids no segment
    covers get new segments of up to MAX_BLOCKS blocks.
    """
    stored = store.word_segments()
    usable: list[tuple[int, int]] = []
    to_build: list[tuple[int, int]] = []
    stale: set[int] = set()
    first = 0
    while first < complete:
        known = stored.get(first)
        if known is not None and known[0] < complete:
            last, seq = known
            changed = store.changed_between(first, last, seq)
            if len(changed) <= (last - first + 1) // 8:
                usable.append((first, last))
                stale |= changed
            else:
                to_build.append((first, last))
        else:
            last = first + BLOCK - 1
            while (
                last + BLOCK < complete
                and last + 1 not in stored
                and (last + 1 - first) < MAX_BLOCKS * BLOCK
            ):
                last += BLOCK
            to_build.append((first, last))
        first = last + 1
    return usable, to_build, stale


def _select_stored(
    store: Store, topics: Sequence[Topic], ranges: list[tuple[int, int]]
) -> tuple[dict[str, set[int]], list[tuple[int, int]]]:
    """What each topic selects among the papers of the stored segments of ``ranges``, and
    the ranges of those that could not be read (damaged, or of another version)."""
    from feedsync.query import Segment, SegmentIndex

    found: dict[str, set[int]] = {topic.slug: set() for topic in topics}
    damaged: list[tuple[int, int]] = []
    group: list[Segment] = []

    def select() -> None:
        index = SegmentIndex(group, store.field_texts)
        for topic in topics:
            found[topic.slug] |= topic.query.select(index)
        group.clear()

    with _gc_paused():
        for first, last in ranges:
            try:
                group.append(Segment.from_bytes(store.word_segment(first) or b""))
            except ValueError as exc:
                log.warning("word segment of papers %d-%d is rebuilt: %s", first, last, exc)
                damaged.append((first, last))
                continue
            if sum(len(s.ids) for s in group) >= GROUP:
                select()
        if group:
            select()
    return found, damaged


def _build_all(
    store: Store, topics: Sequence[Topic], ranges: list[tuple[int, int]]
) -> Iterator[Built]:
    """The segments of ``ranges``, built in worker processes when that pays off; if the
    workers fail, those not built yet are built in this process."""
    done: set[int] = set()
    workers = min(_cpus(), len(ranges))
    papers = sum(last - first + 1 for first, last in ranges)
    if workers > 1 and papers >= PARALLEL_MIN:
        # Imported here: a run that builds nothing in workers should not pay for them.
        from concurrent.futures.process import BrokenProcessPool

        try:
            for built in _build_in_workers(store.path, topics, ranges, workers):
                done.add(built.first)
                yield built
        except (OSError, NotImplementedError, BrokenProcessPool) as exc:
            # No /dev/shm, no working sem_open on this platform, a worker killed, ...
            log.warning("building word segments in worker processes failed (%s); in this one", exc)
    for first, last in ranges:
        if first not in done:
            yield _build(store, topics, first, last)


def _build_in_workers(
    path: Path, topics: Sequence[Topic], ranges: list[tuple[int, int]], workers: int
) -> Iterator[Built]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # "spawn": a fresh interpreter, never a fork of a process that may have threads running
    # (the daemon's scheduler). Results come in order, each used as it arrives.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=exit_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        firsts, lasts = zip(*ranges, strict=True)
        yield from pool.map(_build_at, repeat(str(path)), repeat(list(topics)), firsts, lasts)


def exit_with_parent(parent: int) -> None:
    """Set up in each worker: its life is its parent's.

    Ctrl-C and a service manager's SIGTERM reach the whole process group; the run decides
    what to do (stop between stages, or finish the pass), so workers ignore both rather
    than die mid-segment and make the run build it again. And a worker ends as soon as the
    process that started it is gone: a killed run (the OOM killer, SIGKILL) would otherwise
    leave its workers waiting forever for work, each holding its memory, since they share
    the queue's pipe and none of them ever reads end-of-file.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _build_at(path: str, topics: list[Topic], first: int, last: int) -> Built:
    """A worker's job: one segment, read from the store at ``path``."""
    with Store(path) as store:
        return _build(store, topics, first, last)


def _build(store: Store, topics: Sequence[Topic], first: int, last: int) -> Built:
    """Build the segment of ids ``first`` to ``last`` and match its papers, CHUNK papers at
    a time: each chunk is read, tokenized, indexed and queried, and its postings kept."""
    from feedsync.query import MemoryIndex, SegmentBuilder, document

    selected: dict[str, set[int]] = {topic.slug: set() for topic in topics}
    builder = SegmentBuilder()
    with _gc_paused():
        seq = store.seq  # read first: a paper changed while reading counts as changed
        for start in range(first, last + 1, CHUNK):
            end = min(start + CHUNK - 1, last)
            # Tokenized first, then indexed: feeding the index as papers are read is 20%
            # slower (measured on 50,000 papers; the two interleave their allocations).
            docs = [(rowid, document(p)) for rowid, p in store.documents_between(start, end)]
            index = MemoryIndex(docs)
            for topic in topics:
                selected[topic.slug] |= topic.query.select(index)
            builder.add(index)  # keeps the postings; the documents can go
            del docs, index
        data = builder.segment().to_bytes()
    return Built(first, last, seq, data, selected)


def _papers(store: Store, ids: set[int], first: int, last: int) -> Iterator[tuple[int, Paper]]:
    """The papers with ``ids``, then those from ``first`` to ``last``."""
    by_id = store.documents_by_id(ids) if ids else iter(())
    return chain(by_id, store.documents_between(first, last))


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def _gc_paused() -> Iterator[None]:
    """As in topics.match: postings are millions of small objects without cycles, which
    the cyclic collector would walk again and again as they are made."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
