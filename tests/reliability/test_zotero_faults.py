"""Reliability 3: every Zotero fault, one after another, with a figure for the README.

Each fault hits a sync of 70 new papers (two item writes); then the library must hold
each paper exactly once. Faults that need the owner to act (a deleted collection, a
revoked key) are followed by the owner's fix and one more sync.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.fakes.zotero_api import FakeZotero
from tests.reliability.figures import record
from tests.test_zotero import do_sync, make_config, many, store_papers

FAULTS: list[tuple[str, Callable[[FakeZotero], None]]] = [
    ("429 with Retry-After", lambda z: z.fault("429", method="POST", retry_after=0.01, times=2)),
    ("Backoff on a 200", lambda z: z.fault("backoff", method="POST", backoff=0.01, times=2)),
    ("500", lambda z: z.fault("500", method="POST", times=2)),
    ("503 with Retry-After", lambda z: z.fault("503", method="POST", retry_after=0.01, times=2)),
    ("reset before commit", lambda z: z.fault("reset", method="POST", times=2)),
    ("response lost after commit", lambda z: z.fault("lost", method="POST", times=2)),
    ("per-object failures", lambda z: z.refuse("2603.0000", times=5)),
]


def test_zotero_faults_leave_each_paper_once(tmp_path: Path) -> None:
    survived, requests, tried = 0, 0, 0
    lost: list[str] = []
    for n, (name, inject) in enumerate(FAULTS):
        with FakeZotero() as zot:
            config = make_config(tmp_path / f"f{n}", zot)
            topics = store_papers(config, many(70))
            inject(zot)
            tried += 1
            do_sync(config, topics, zot)
            do_sync(config, topics, zot)  # the next run retries what was refused
            ids = Counter(i["archiveID"] for i in zot.items("preprint"))
            requests += len(zot.requests)
            if len(ids) == 70 and max(ids.values()) == 1:
                survived += 1
            else:
                lost.append(name)
    # A collection deleted by the owner, and a key revoked then restored.
    for name in ("deleted collection", "revoked key"):
        with FakeZotero() as zot:
            config = make_config(tmp_path / name.replace(" ", "-"), zot)
            topics = store_papers(config, many(40))
            do_sync(config, topics, zot)
            tried += 1
            if name == "deleted collection":
                key = next(c["key"] for c in zot.collections() if c["name"] == "Reasoning")
                zot.delete_collection(key)
            else:
                zot.revoke()
            topics = store_papers(config, many(70))
            failed = do_sync(config, topics, zot)
            zot.restore()
            do_sync(config, topics, zot)
            ids = Counter(i["archiveID"] for i in zot.items("preprint"))
            requests += len(zot.requests)
            if (
                len(ids) == 70
                and max(ids.values()) == 1
                and (name != "revoked key" or "refused the API key" in (failed.error or ""))
            ):
                survived += 1
            else:
                lost.append(name)
    record(
        "zotero faults",
        {"survived": survived, "tried": tried, "requests": requests, "papers_per_case": 70},
    )
    assert lost == []
    assert survived == tried
