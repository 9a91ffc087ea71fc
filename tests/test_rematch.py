"""Re-matching the whole store through word segments: always the answer of tokenizing every
paper afresh, whatever changed since the segments were built, and no write when previewing."""

from __future__ import annotations

import random
import sqlite3
import tempfile
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsync.match import rematch
from feedsync.match.rematch import match_store
from feedsync.match.topics import Topic, match
from feedsync.models import Paper
from feedsync.query import FIELDS, compile_query, document
from feedsync.store import Store

_WORDS = ["sparse", "lattice", "planner", "Kelvin", "ıdle", "graph", "robot", "fast", "tiny"]
_QUERIES = [
    "sparse",
    '"lattice planner"',
    "grap*",
    "/\\bkelvin/",
    "/ıdle|robot s/",
    "title:fast -tiny",
    "author:robot OR org:graph",
    "keyword:sparse AND upvotes:>=3",
    "NOT planner",
]


@pytest.fixture(autouse=True)
def _small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    # Blocks of 4 ids, segments of up to 2 blocks: a few dozen papers make many segments.
    monkeypatch.setattr(rematch, "BLOCK", 4)
    monkeypatch.setattr(rematch, "MAX_BLOCKS", 2)


def topics() -> list[Topic]:
    return [
        Topic(f"t{n}", "", "", 10, False, "", compile_query(text))
        for n, text in enumerate(_QUERIES)
    ]


def make_paper(n: int, rng: random.Random) -> Paper:
    def text(count: int) -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(count))

    return Paper(
        key=f"2603.{n:05d}",
        arxiv_id=f"2603.{n:05d}",
        title=f"{text(3)} {n}",
        abstract=text(rng.randint(0, 8)),
        authors=tuple(text(2) for _ in range(rng.randint(0, 2))),
        ai_keywords=tuple(text(1) for _ in range(rng.randint(0, 2))),
        organization=rng.choice([None, text(1)]),
        upvotes=rng.randint(0, 5),
    )


def afresh(store: Store) -> dict[str, set[int]]:
    """The reference: every paper read and tokenized again."""
    return match(topics(), store.documents())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "feedsync.sqlite3") as s:
        rng = random.Random(1)
        s.upsert(make_paper(n, rng) for n in range(30))
        yield s


def test_the_first_rematch_stores_segments_and_the_next_reads_them(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = afresh(store)
    assert all(expected.values()) and min(map(len, expected.values())) < 30  # worth asking
    assert match_store(topics(), store) == expected
    # Ids 1-30: blocks of 4 complete up to id 27; 28-30 are the incomplete last block.
    assert sorted(store.word_segments()) == [0, 8, 16, 24]
    assert store.word_segments()[24][0] == 27
    monkeypatch.setattr(rematch, "_build", None)  # reading back builds nothing
    assert match_store(topics(), store) == expected


def test_papers_changed_since_are_matched_afresh(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _built(store)
    monkeypatch.setattr(rematch, "_build", None)  # from here on, nothing may be built
    rng = random.Random(2)
    # One changed paper per segment stays within what a segment tolerates.
    store.upsert([make_paper(3, rng), make_paper(12, rng), make_paper(29, rng)])
    assert match_store(topics(), store) == afresh(store)
    assert store.word_segments() == built


def test_a_segment_with_many_changes_is_built_again(store: Store) -> None:
    before = _built(store)
    rng = random.Random(3)
    store.upsert([make_paper(n, rng) for n in (1, 2, 5)])
    assert match_store(topics(), store) == afresh(store)
    after = store.word_segments()
    assert after[0][1] > before[0][1]  # rebuilt: a newer seq
    assert {k: v for k, v in after.items() if k} == {k: v for k, v in before.items() if k}


def test_new_papers_get_new_segments_once_their_blocks_are_complete(store: Store) -> None:
    _built(store)
    rng = random.Random(4)
    store.upsert(make_paper(n, rng) for n in range(30, 41))  # ids 31-41
    assert match_store(topics(), store) == afresh(store)
    # 28-35 and 36-39 (segments are up to two blocks); 40-41 is the incomplete last block.
    assert sorted(store.word_segments()) == [0, 8, 16, 24, 28, 36]
    assert store.word_segments()[36][0] == 39


def test_a_damaged_segment_is_built_again(store: Store) -> None:
    _built(store)
    db = sqlite3.connect(store.path)
    with db:
        db.execute("UPDATE word_segments SET data = x'00ff' WHERE first = 8")
    db.close()
    assert match_store(topics(), store) == afresh(store)
    assert store.word_segment(8) != b"\x00\xff"


def test_a_preview_writes_nothing(store: Store) -> None:
    assert match_store(topics(), store, save=False) == afresh(store)
    assert store.word_segments() == {}


def test_an_empty_store_and_no_topics(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3") as empty:
        assert match_store(topics(), empty) == {t.slug: set() for t in topics()}
        assert match_store([], empty) == {}


def _built(store: Store) -> dict[int, tuple[int, int]]:
    match_store(topics(), store)
    return store.word_segments()


_STEPS = st.lists(
    st.tuples(st.sampled_from(["add", "change", "rematch"]), st.integers(1, 12), st.integers()),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(_STEPS)
def test_rematching_always_equals_matching_afresh(steps: list[tuple[str, int, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.sqlite3") as store:
        count = 0
        for action, n, seed in steps:
            rng = random.Random(seed)
            if action == "add":
                store.upsert(make_paper(count + i, rng) for i in range(n))
                count += n
            elif action == "change" and count:
                store.upsert(make_paper(rng.randrange(count), rng) for _ in range(n))
            assert match_store(topics(), store) == afresh(store)


def test_field_texts_are_what_documents_hold(store: Store) -> None:
    docs = {rowid: document(paper) for rowid, paper in store.documents()}
    for field in FIELDS:
        assert store.field_texts(field, docs) == {i: doc.raw(field) for i, doc in docs.items()}


def test_segments_built_in_worker_processes_answer_the_same(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rematch, "PARALLEL_MIN", 0)
    monkeypatch.setattr(rematch, "_cpus", lambda: 2)
    workers: list[int] = []
    spawn = rematch._build_in_workers

    def counted(*args: Any) -> Iterator[rematch.Built]:
        workers.append(args[-1])
        return spawn(*args)

    monkeypatch.setattr(rematch, "_build_in_workers", counted)
    assert match_store(topics(), store) == afresh(store)
    assert workers == [2]
    assert sorted(store.word_segments()) == [0, 8, 16, 24]
    monkeypatch.setattr(rematch, "_build", None)  # what the workers stored reads back
    assert match_store(topics(), store) == afresh(store)


def test_when_worker_processes_fail_segments_are_built_here(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(rematch, "PARALLEL_MIN", 0)
    monkeypatch.setattr(rematch, "_cpus", lambda: 2)

    build = rematch._build
    here: list[int] = []

    def broken(*args: object) -> Iterator[rematch.Built]:
        yield build(store, topics(), 0, 7)  # one arrives, then the pool breaks
        raise BrokenProcessPool("a worker was killed")

    def counted(store: Store, topics: list[Topic], first: int, last: int) -> rematch.Built:
        here.append(first)
        return build(store, topics, first, last)

    monkeypatch.setattr(rematch, "_build_in_workers", broken)
    monkeypatch.setattr(rematch, "_build", counted)
    assert match_store(topics(), store) == afresh(store)
    assert here == [8, 16, 24]  # the rest, each once
    assert sorted(store.word_segments()) == [0, 8, 16, 24]
    assert "in worker processes failed (a worker was killed)" in caplog.text


def test_workers_live_and_end_with_the_process_that_started_them(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    middle = (
        "import multiprocessing, os, sys, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from feedsync.match.rematch import exit_with_parent\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context('spawn'),\n"
        "        initializer=exit_with_parent, initargs=(os.getpid(),))\n"
        "    pids = [pool.submit(os.getpid).result() for _ in range(4)]\n"
        "    pool.submit(time.sleep, 60)\n"
        "    print(*sorted(set(pids)), flush=True)\n"
        "    time.sleep(60)\n"
    )
    script = tmp_path / "middle.py"
    script.write_text(middle)
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the killed pool's tracker reports its semaphores
        text=True,
    )
    assert proc.stdout is not None
    workers = [int(pid) for pid in proc.stdout.readline().split()]
    assert workers
    for pid in workers:  # the group's Ctrl-C or SIGTERM is for the run to handle, not them
        os.kill(pid, signal.SIGINT)
        os.kill(pid, signal.SIGTERM)
    time.sleep(0.5)
    assert all(map(_running, workers))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    deadline = time.monotonic() + 5
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in workers if _running(pid)]
    assert alive == []


def _running(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A worker that ended is reaped by init; until then it is a zombie, which has ended.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"
