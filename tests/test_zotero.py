"""The Zotero sync through the real pyzotero client against the fake Web API on 127.0.0.1.

Each test stores papers, matches topics, syncs, and then reads the fake's library: the
items must be right, and there must be exactly one per paper whatever the network did.
Waits go through an injected ``sleep`` that only records, so faults cost no time.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from click.testing import CliRunner

from feedsync.cli import cli
from feedsync.config import Config, load_config
from feedsync.fetch.http import HttpClient
from feedsync.match.select import select_all
from feedsync.match.topics import Topic, build_topics
from feedsync.models import Paper
from feedsync.pipeline import run
from feedsync.store import MatchUpdate, Store
from feedsync.zotero.client import ZoteroClient
from feedsync.zotero.mapping import KEY
from feedsync.zotero.sync import SyncReport, sync
from tests.fakes.hf_api import FakeHF
from tests.fakes.hf_data import entry
from tests.fakes.zotero_api import FakeZotero

TOPICS = """
[topics.reasoning]
title = "Reasoning"
query = "reasoning"
zotero = true

[topics.robots]
title = "Robots"
query = "robot*"
zotero = true

[topics.lattice]
title = "Lattices"
query = "lattice"
"""


@pytest.fixture
def zot() -> Iterator[FakeZotero]:
    with FakeZotero() as fake:
        yield fake


def make_config(
    tmp_path: Path,
    zot: FakeZotero,
    *,
    topics: str = TOPICS,
    extra: str = "",
    hf_url: str = "http://127.0.0.1:9",
) -> Config:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "feedsync.toml"
    path.write_text(
        f"""
data_dir = "data"
output_dir = "out"
[source]
api_url = "{hf_url}"
days = 1
retries = 0
[zotero]
enabled = true
library_id = "{zot.library_id}"
api_key = "{zot.api_key}"
api_url = "{zot.url}"
{extra}
{topics}
""",
        encoding="utf-8",
    )
    return load_config(path, {})


def paper(n: int, title: str, **kw: Any) -> Paper:
    arxiv_id = kw.pop("arxiv_id", f"2603.{n:05d}")
    return Paper(
        key=arxiv_id or f"title:{n}",
        arxiv_id=arxiv_id,
        title=title,
        abstract=kw.pop("abstract", f"Abstract of paper {n}."),
        authors=kw.pop("authors", ("Ana Ruiz", "Ludwig van Beethoven")),
        published=kw.pop("published", datetime(2026, 3, 2, 17, 59, tzinfo=UTC)),
        featured=date(2026, 3, 4),
        **kw,
    )


def store_papers(config: Config, papers: list[Paper]) -> list[Topic]:
    """Upsert the papers and match every topic over the whole store."""
    topics = build_topics(config)
    with Store(config.store_path) as store:
        store.upsert(papers)
        found = select_all(store, topics)
        updates = [MatchUpdate(t.slug, t.signature, found[t.slug]) for t in topics]
        store.save_matches(updates, seq=store.seq)
    return topics


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(zot: FakeZotero, sleeps: Sleeps | None = None, **kw: Any) -> ZoteroClient:
    return ZoteroClient(
        library_id=zot.library_id,
        library_type="user",
        api_key=zot.api_key,
        api_url=zot.url,
        backoff=0.001,
        jitter=lambda: 1.0,
        sleep=sleeps if sleeps is not None else Sleeps(),
        **kw,
    )


def do_sync(config: Config, topics: list[Topic], zot: FakeZotero, **kw: Any) -> SyncReport:
    sleeps = kw.pop("sleeps", None)
    with client(zot, sleeps) as c, Store(config.store_path) as store:
        return sync(config, store, topics, client=c, **kw)


def preprints(zot: FakeZotero) -> dict[str, dict[str, Any]]:
    """arXiv id -> item; fails on a duplicate."""
    items = zot.items("preprint")
    ids = Counter(i["archiveID"] for i in items)
    assert [k for k, n in ids.items() if n > 1] == [], "duplicate items"
    return {i["archiveID"].removeprefix("arXiv:"): i for i in items}


def collection_keys(zot: FakeZotero) -> dict[str, str]:
    return {c["name"]: c["key"] for c in zot.collections()}


def assert_all_synced(config: Config, ids: set[str]) -> None:
    with Store(config.store_path) as store:
        records = store.zotero_items(f"users/{config.zotero.library_id}")
    assert {i for i, r in records.items() if r.status == "synced"} >= ids
    assert {r.status for i, r in records.items() if i in ids} == {"synced"}


PAPERS = [
    paper(1, "Reasoning Traces in Tiny Models"),
    paper(2, "A Robot That Reasoning About Maps", authors=("Wei",)),
    paper(3, "Chain of Reasoning From a Text Copy", arxiv_id=None),
    paper(4, "Lattice Planning Without Reasoning Robots"),
    paper(5, "Lattice Planning Only"),
]


# -- fields and collections --------------------------------------------------------------------


def test_first_sync_files_proper_preprints_in_topic_collections(
    tmp_path: Path, zot: FakeZotero
) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, PAPERS)
    report = do_sync(config, topics, zot)
    assert report.error is None and report.failures == []
    assert report.counts() == {
        "created": 3,
        "adopted": 0,
        "updated": 0,
        "skipped_no_id": 1,
        "failed": 0,
        "pending": 0,
        "requests": report.requests,
    }
    keys = collection_keys(zot)
    assert set(keys) == {"feedsync", "Reasoning", "Robots"}
    by_key = {c["key"]: c for c in zot.collections()}
    assert by_key[keys["feedsync"]]["parentCollection"] is False
    assert by_key[keys["Reasoning"]]["parentCollection"] == keys["feedsync"]
    assert by_key[keys["Robots"]]["parentCollection"] == keys["feedsync"]

    items = preprints(zot)
    assert set(items) == {"2603.00001", "2603.00002", "2603.00004"}  # 5 matches no topic
    item = items["2603.00001"]
    assert item.pop("dateAdded") and item.pop("dateModified")
    assert KEY.match(item.pop("key")) and item.pop("version") >= 1
    assert item == {
        "itemType": "preprint",
        "title": "Reasoning Traces in Tiny Models",
        "abstractNote": "Abstract of paper 1.",
        "creators": [
            {"creatorType": "author", "firstName": "Ana", "lastName": "Ruiz"},
            {"creatorType": "author", "name": "Ludwig van Beethoven"},
        ],
        "genre": "",
        "repository": "arXiv",
        "archiveID": "arXiv:2603.00001",
        "place": "",
        "date": "2026-03-02",
        "series": "",
        "seriesNumber": "",
        "DOI": "10.48550/arXiv.2603.00001",
        "citationKey": "",
        "url": "https://arxiv.org/abs/2603.00001",
        "accessDate": "",
        "archive": "",
        "archiveLocation": "",
        "shortTitle": "",
        "language": "",
        "libraryCatalog": "arXiv.org",
        "callNumber": "",
        "rights": "",
        "extra": "Hugging Face: https://huggingface.co/papers/2603.00001",
        "tags": [
            {"tag": "reasoning"},
            {"tag": "feedsync", "type": 1},
            {"tag": "arxiv:2603.00001", "type": 1},
        ],
        "collections": [keys["Reasoning"]],
        "relations": {},
    }
    # A paper in two topics is one item in two collections, tagged with both.
    both = items["2603.00004"]
    assert sorted(both["collections"]) == sorted([keys["Reasoning"], keys["Robots"]])
    assert [t["tag"] for t in both["tags"]][:2] == ["reasoning", "robots"]
    assert items["2603.00002"]["creators"] == [{"creatorType": "author", "name": "Wei"}]
    assert_all_synced(config, set(items))


def test_a_rerun_with_nothing_new_sends_nothing(tmp_path: Path, zot: FakeZotero) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, PAPERS)
    do_sync(config, topics, zot)
    zot.reset_log()
    report = do_sync(config, topics, zot)
    assert report.counts()["created"] == 0 and report.requests == 0
    assert zot.requests == []


def test_a_paper_that_joins_another_topic_is_filed_there_too(
    tmp_path: Path, zot: FakeZotero
) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, PAPERS)
    do_sync(config, topics, zot)
    key = preprints(zot)["2603.00001"]["key"]
    zot.edit_item(key, tags=[*zot.item(key)["tags"], {"tag": "read later"}], title="Mine")
    wider = make_config(
        tmp_path, zot, topics=TOPICS.replace('query = "robot*"', 'query = "robot* OR tiny"')
    )
    topics = store_papers(wider, PAPERS)
    zot.reset_log()
    report = do_sync(wider, topics, zot)
    assert report.updated == 1 and report.created == 0 and report.failures == []
    assert len(zot.item_writes()) == 1
    item = preprints(zot)["2603.00001"]
    keys = collection_keys(zot)
    assert sorted(item["collections"]) == sorted([keys["Reasoning"], keys["Robots"]])
    # The owner's edits survive: memberships are only added.
    assert item["title"] == "Mine"
    assert [t["tag"] for t in item["tags"]][-2:] == ["read later", "robots"]
    zot.reset_log()
    assert do_sync(wider, topics, zot).requests == 0


def test_pdf_links_and_keyword_tags(tmp_path: Path, zot: FakeZotero) -> None:
    config = make_config(tmp_path, zot, extra="attach_pdf = true\nkeyword_tags = true")
    topics = store_papers(config, [paper(1, "Reasoning", ai_keywords=("chain of thought",))])
    report = do_sync(config, topics, zot)
    assert report.created == 1 and len(zot.item_writes()) == 1
    item = preprints(zot)["2603.00001"]
    assert {"tag": "chain of thought", "type": 1} in item["tags"]
    (pdf,) = zot.items("attachment")
    assert {k: pdf[k] for k in ("parentItem", "linkMode", "url", "contentType")} == {
        "parentItem": item["key"],
        "linkMode": "linked_url",
        "url": "https://arxiv.org/pdf/2603.00001",
        "contentType": "application/pdf",
    }
    # A lost store adopts the item and recognises its PDF link: nothing is written.
    os.remove(config.store_path)
    topics = store_papers(config, [paper(1, "Reasoning", ai_keywords=("chain of thought",))])
    zot.reset_log()
    report = do_sync(config, topics, zot)
    assert report.adopted == 1 and zot.writes == []
    assert len(zot.items("attachment")) == 1


# -- exactly once --------------------------------------------------------------------------------


def many(count: int, start: int = 1) -> list[Paper]:
    return [paper(n, f"Reasoning Paper Number {n}") for n in range(start, start + count)]


def test_a_lost_store_adopts_every_item_and_creates_none(tmp_path: Path, zot: FakeZotero) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, many(120))
    do_sync(config, topics, zot)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{config.store_path}{suffix}").unlink(missing_ok=True)
    topics = store_papers(config, many(120))
    zot.reset_log()
    report = do_sync(config, topics, zot)
    assert (report.created, report.adopted, report.failures) == (0, 120, [])
    assert zot.writes == []
    # listing + 3 reads by key + the collections (top and sub): no tag query per paper
    assert len(zot.requests) <= 6, [(r.method, r.path) for r in zot.requests]
    assert len(preprints(zot)) == 120
    assert_all_synced(config, {p.arxiv_id or "" for p in many(120)})
    zot.reset_log()
    assert do_sync(config, topics, zot).requests == 0


def test_a_few_new_papers_in_a_big_shared_library_are_looked_up_by_tag(
    tmp_path: Path, zot: FakeZotero
) -> None:
    # Another feedsync (another store) already filed 200 papers in the same library.
    other = make_config(tmp_path / "other", zot)
    do_sync(other, store_papers(other, many(200)), zot)
    config = make_config(tmp_path, zot)
    topics = store_papers(config, many(3, start=199))  # two of them exist already
    zot.reset_log()
    report = do_sync(config, topics, zot)
    assert (report.adopted, report.created) == (2, 1)
    tag_reads = [r for r in zot.requests if "tag" in r.query and "arxiv:" in r.query["tag"][0]]
    assert len(tag_reads) == 1
    assert len(preprints(zot)) == 201


def test_a_lost_response_after_commit_creates_nothing_twice(
    tmp_path: Path, zot: FakeZotero
) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, many(60))
    zot.fault("lost", method="POST", path="/items")
    sleeps = Sleeps()
    report = do_sync(config, topics, zot, sleeps=sleeps)
    assert report.error is None and report.failures == []
    assert report.created + report.adopted == 60
    assert report.adopted == 50  # the first batch, committed then lost, was read back
    assert len(preprints(zot)) == 60
    assert_all_synced(config, {p.arxiv_id or "" for p in many(60)})


def test_a_crash_after_recording_pending_is_resumed_with_the_same_keys(
    tmp_path: Path, zot: FakeZotero
) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, many(5))
    # Every attempt's answer is lost: the run gives up, the items exist, the store says pending.
    zot.fault("lost", method="POST", path="/items", times=5)
    report = do_sync(config, topics, zot)
    assert report.error and "gave up after 5 attempts" in report.error
    assert report.pending == 5 and len(preprints(zot)) == 5
    report = do_sync(config, topics, zot)
    assert (report.created, report.adopted, report.error) == (0, 5, None)
    assert len(preprints(zot)) == 5
    assert_all_synced(config, {p.arxiv_id or "" for p in many(5)})


def test_a_lost_update_answer_is_resolved_by_reading_the_item_again(
    tmp_path: Path, zot: FakeZotero
) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, PAPERS)
    do_sync(config, topics, zot)
    wider = make_config(
        tmp_path, zot, topics=TOPICS.replace('query = "robot*"', 'query = "robot* OR tiny"')
    )
    topics = store_papers(wider, PAPERS)
    zot.fault("lost", method="POST", path="/items")
    report = do_sync(wider, topics, zot)
    assert report.error is None and report.failures == []
    keys = collection_keys(zot)
    assert sorted(preprints(zot)["2603.00001"]["collections"]) == sorted(
        [keys["Reasoning"], keys["Robots"]]
    )
    assert len(preprints(zot)) == 3


@pytest.mark.parametrize(
    ("kind", "method", "options"),
    [
        ("429", "POST", {"retry_after": "0.05"}),
        ("429", "GET", {"retry_after": "0.05"}),
        ("429", "POST", {}),
        ("backoff", "POST", {"backoff": "0.25"}),
        ("backoff", "GET", {"backoff": "0.25"}),
        ("500", "POST", {}),
        ("500", "GET", {}),
        ("503", "POST", {"retry_after": "0.5"}),
        ("503", "GET", {"retry_after": "0.5"}),
        ("reset", "POST", {}),
        ("reset", "GET", {}),
        ("lost", "POST", {}),
    ],
)
def test_every_injected_fault_ends_with_each_paper_once(
    tmp_path: Path, zot: FakeZotero, kind: str, method: str, options: dict[str, Any]
) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, many(70))
    zot.fault(kind, method=method, times=2, **options)
    sleeps = Sleeps()
    report = do_sync(config, topics, zot, sleeps=sleeps)
    assert report.error is None and report.failures == [], report.error
    assert len(preprints(zot)) == 70
    assert_all_synced(config, {p.arxiv_id or "" for p in many(70)})
    asked = options.get("retry_after") or options.get("backoff")
    if asked:
        assert float(asked) in sleeps  # the server's wait, floats honoured
    assert len(zot.item_writes()) <= 4


@pytest.mark.timeout(30)  # without the limit, the answer is waited for until this ends it
@pytest.mark.parametrize("in_headers", [False, True], ids=["body", "headers"])
def test_a_zotero_answer_that_never_ends_fails_after_the_timeout(in_headers: bool) -> None:
    from feedsync.errors import SyncError
    from tests.fakes.stalled import TricklingServer

    with TricklingServer(interval=0.1, headers=in_headers) as server:
        zotero = ZoteroClient(
            library_id="475425",
            library_type="user",
            api_key="fake-zotero-key-0123456789",
            api_url=server.url,
            timeout=0.6,
            attempts=2,
            backoff=0.001,
            sleep=Sleeps(),
        )
        with zotero, pytest.raises(SyncError, match="timed out, gave up after 2 attempts"):
            zotero.item_versions(tag="feedsync")
    assert server.requests == 2


def test_a_refused_object_is_recorded_and_retried_next_run(tmp_path: Path, zot: FakeZotero) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, PAPERS)
    zot.refuse("2603.00002", message="Invalid property 'injected'")
    report = do_sync(config, topics, zot)
    assert report.created == 2 and report.failed == 1
    assert report.failures == ["2603.00002: Invalid property 'injected' (HTTP 400)"]
    assert report.problems()[0].startswith("1 paper(s) refused by Zotero, retried next run")
    with Store(config.store_path) as store:
        record = store.zotero_items("users/475425")["2603.00002"]
    assert (record.status, record.attempts) == ("failed", 1)
    assert record.error == "Invalid property 'injected' (HTTP 400)"
    report = do_sync(config, topics, zot)
    assert (report.created, report.failed, report.failures) == (1, 0, [])
    assert len(preprints(zot)) == 3
    assert_all_synced(config, {"2603.00001", "2603.00002", "2603.00004"})


def test_a_deleted_collection_is_made_again_and_refilled(tmp_path: Path, zot: FakeZotero) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, PAPERS)
    do_sync(config, topics, zot)
    zot.delete_collection(collection_keys(zot)["Robots"])
    topics = store_papers(config, [*PAPERS, paper(6, "Robot Hands")])
    report = do_sync(config, topics, zot)
    assert report.error is None and report.failures == []
    assert report.created == 1
    keys = collection_keys(zot)
    assert set(keys) == {"feedsync", "Reasoning", "Robots"}
    items = preprints(zot)
    assert len(items) == 4
    assert items["2603.00006"]["collections"] == [keys["Robots"]]
    # The papers that were in the deleted collection are filed in the new one.
    assert keys["Robots"] in items["2603.00002"]["collections"]
    assert keys["Robots"] in items["2603.00004"]["collections"]
    assert_all_synced(config, set(items))


def test_a_deleted_parent_collection_is_made_again(tmp_path: Path, zot: FakeZotero) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, PAPERS)
    do_sync(config, topics, zot)
    zot.delete_collection(collection_keys(zot)["feedsync"])
    topics = store_papers(config, [*PAPERS, paper(6, "Robot Hands")])
    report = do_sync(config, topics, zot)
    assert report.error is None and report.failures == []
    assert set(collection_keys(zot)) == {"feedsync", "Reasoning", "Robots"}
    assert len(preprints(zot)) == 4


def test_a_revoked_key_stops_with_a_clear_message_and_nothing_is_lost(
    tmp_path: Path, zot: FakeZotero
) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, PAPERS)
    do_sync(config, topics, zot)
    zot.revoke()
    topics = store_papers(config, [*PAPERS, paper(6, "Robot Hands"), paper(7, "Robot Feet")])
    report = do_sync(config, topics, zot)
    assert report.error is not None
    assert "Zotero refused the API key for users/475425 (HTTP 403 Invalid key)" in report.error
    assert "https://www.zotero.org/settings/keys" in report.error
    assert zot.api_key not in report.error
    zot.restore()
    report = do_sync(config, topics, zot)
    assert (report.created, report.error) == (2, None)
    assert len(preprints(zot)) == 5
    assert_all_synced(config, set(preprints(zot)))


def test_a_read_only_key_is_named_as_such(tmp_path: Path) -> None:
    with FakeZotero(write_access=False) as zot:
        config = make_config(tmp_path, zot)
        report = do_sync(config, store_papers(config, PAPERS), zot)
    assert report.error and "has no write access" in report.error


# -- cost ----------------------------------------------------------------------------------------


def test_120_new_papers_cost_three_item_writes_and_a_few_reads(
    tmp_path: Path, zot: FakeZotero
) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, many(120))
    report = do_sync(config, topics, zot)
    assert report.created == 120
    assert len(zot.item_writes()) == 3
    # collections (top listing + one create), the feedsync listing, 3 writes
    assert report.requests == len(zot.requests) == 6
    assert all(r.body_size > 0 for r in zot.writes)
    zot.reset_log()
    report = do_sync(config, topics, zot)
    assert zot.writes == [] and report.requests == 0


# -- dry run, status, pipeline, CLI, secrets ---------------------------------------------------


def test_dry_run_reads_but_changes_nothing(tmp_path: Path, zot: FakeZotero) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, PAPERS)
    report = do_sync(config, topics, zot, dry_run=True)
    assert zot.writes == [] and zot.items() == [] and zot.collections() == []
    with Store(config.store_path) as store:
        assert store.zotero_items("users/475425") == {}
        assert store.zotero_collections("users/475425") == {}
    assert report.created == 3
    assert report.plan[:3] == [
        "would create collection 'feedsync'",
        "would create collection 'feedsync' / 'Reasoning'",
        "would create collection 'feedsync' / 'Robots'",
    ]
    assert report.plan[3] == "would create 3 item(s):"
    assert any("2603.00004" in line and "[Reasoning, Robots]" in line for line in report.plan)


def test_pipeline_publishes_feeds_and_a_zotero_failure_only_adds_a_line(
    tmp_path: Path, zot: FakeZotero
) -> None:
    day = date(2026, 3, 4)
    with FakeHF() as hf:
        hf.set_day(day, [entry("2603.00001", "Reasoning Traces", day)])
        config = make_config(tmp_path, zot, hf_url=hf.url)
        with HttpClient(timeout=5, retries=0) as http:
            report = run(config, days=[day], client=http)
        assert report.ok, report.failures
        assert report.zotero is not None and report.zotero.created == 1
        assert (config.output_dir / "reasoning.atom").is_file()
        zot.revoke()
        hf.set_day(
            day,
            [
                entry("2603.00001", "Reasoning Traces", day),
                entry("2603.00002", "More Reasoning", day),
            ],
        )
        with HttpClient(timeout=5, retries=0) as http:
            report = run(config, days=[day], client=http)
    assert report.exit_code == 1
    assert report.failures and report.failures[0].startswith("zotero: Zotero refused the API key")
    assert report.zotero is not None and report.zotero.created == 0
    assert b"More Reasoning" in (config.output_dir / "reasoning.atom").read_bytes()
    with Store(config.store_path) as store:
        last = store.last_runs(1)[0]
    assert last.result == "failed" and (last.error or "").startswith("zotero:")


def test_cli_sync_status_and_exit_codes(tmp_path: Path, zot: FakeZotero) -> None:
    config = make_config(tmp_path, zot)
    store_papers(config, PAPERS)
    runner = CliRunner()
    args = ["--config", str(config.config_path), "zotero"]
    result = runner.invoke(cli, [*args, "status"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"library: users/475425 at {zot.url}",
        "collection 'feedsync': (not created yet)",
        "  reasoning: 'Reasoning' (not created yet)",
        "  robots: 'Robots' (not created yet)",
        "papers: 0 synced, 0 pending, 0 failed, 3 waiting, 1 skipped (no arXiv id)",
    ]
    result = runner.invoke(cli, [*args, "sync", "--dry-run"])
    assert result.exit_code == 0 and "would create 3 item(s):" in result.output
    assert "zotero (dry run, nothing written): created 3" in result.output
    assert zot.writes == []
    zot.refuse("2603.00002")
    result = runner.invoke(cli, [*args, "sync"])
    assert result.exit_code == 1
    assert result.output.startswith("zotero: created 2, adopted 0, updated 0, skipped_no_id 1")
    assert "refused by Zotero, retried next run: 2603.00002" in result.output
    keys = collection_keys(zot)
    result = runner.invoke(cli, [*args, "status"])
    assert result.output.splitlines() == [
        f"library: users/475425 at {zot.url}",
        f"collection 'feedsync': {keys['feedsync']}",
        f"  reasoning: 'Reasoning' {keys['Reasoning']}",
        f"  robots: 'Robots' {keys['Robots']}",
        "papers: 2 synced, 0 pending, 1 failed, 0 waiting, 1 skipped (no arXiv id)",
        "failed: 2603.00002: Invalid property 'injected' (HTTP 400) (1 attempt(s))",
    ]
    result = runner.invoke(cli, [*args, "sync"])
    assert result.exit_code == 0 and "created 1" in result.output
    zot.revoke()
    store_papers(config, [*PAPERS, paper(8, "Robot Eyes")])
    result = runner.invoke(cli, [*args, "sync"])
    assert result.exit_code == 1
    assert "Zotero refused the API key for users/475425 (HTTP 403 Invalid key)" in result.output
    assert zot.api_key not in result.output


def test_cli_refuses_when_zotero_is_off_or_no_topic_opts_in(
    tmp_path: Path, zot: FakeZotero
) -> None:
    runner = CliRunner()
    off = make_config(tmp_path, zot).config_path
    assert off is not None
    off.write_text(off.read_text().replace("enabled = true", "enabled = false"))
    for command in ("sync", "status"):
        result = runner.invoke(cli, ["--config", str(off), "zotero", command])
        assert result.exit_code == 2
        assert "Zotero sync is disabled: set [zotero] enabled = true" in result.output
    none = make_config(tmp_path, zot, topics=TOPICS.replace("zotero = true", "zotero = false"))
    result = runner.invoke(cli, ["--config", str(none.config_path), "zotero", "sync"])
    assert result.exit_code == 2 and "no topic has `zotero = true`" in result.output


def test_the_api_key_never_leaks(
    tmp_path: Path, zot: FakeZotero, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = make_config(tmp_path, zot)
    topics = store_papers(config, PAPERS)
    zot.fault("500", method="POST")
    zot.fault("reset", method="GET")
    zot.refuse("2603.00001")
    messages = [str(do_sync(config, topics, zot).failures)]
    zot.revoke()
    topics = store_papers(config, [*PAPERS, paper(9, "Robot Ears")])
    report = do_sync(config, topics, zot)
    messages += [report.error or "", *report.problems()]
    status = CliRunner().invoke(cli, ["--config", str(config.config_path), "zotero", "status"])
    secret = zot.api_key
    assert all(secret not in m for m in messages)
    assert secret not in caplog.text and secret not in status.output
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in str(record.args)
    for path in config.data_dir.iterdir():
        assert secret.encode() not in path.read_bytes(), path
    # And the key did go out, in the Authorization header only.
    assert all(r.headers.get("authorization") == f"Bearer {secret}" for r in zot.requests)
    assert all(secret not in str(r.query) for r in zot.requests)


def test_pdf_links_travel_with_their_items_and_a_refused_item_reports_once(
    tmp_path: Path, zot: FakeZotero
) -> None:
    config = make_config(tmp_path, zot, extra="attach_pdf = true")
    topics = store_papers(config, many(30))
    zot.refuse('"archiveID": "arXiv:2603.00007"')
    report = do_sync(config, topics, zot)
    # 30 items + 30 links = 60 objects: 25 pairs, then 5 pairs; no pair split across writes.
    assert len(zot.item_writes()) == 2
    assert report.created == 29
    assert report.failures == ["2603.00007: Invalid property 'injected' (HTTP 400)"]
    links = {i["parentItem"] for i in zot.items("attachment")}
    assert links == {i["key"] for i in preprints(zot).values()}
    report = do_sync(config, topics, zot)
    assert (report.created, report.failures) == (1, [])
    assert len(zot.items("attachment")) == 30 and len(preprints(zot)) == 30


def test_the_owners_deletions_stand(tmp_path: Path, zot: FakeZotero) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, PAPERS)
    do_sync(config, topics, zot)
    items = preprints(zot)
    zot.edit_item(items["2603.00001"]["key"], deleted=True)  # in the trash
    with zot.state.lock:
        del zot.state.items[items["2603.00002"]["key"]]  # emptied from the trash
    # Both papers now match another topic too: nothing is re-created or restored.
    wider = make_config(
        tmp_path, zot, topics=TOPICS.replace('query = "robot*"', 'query = "robot* OR tiny OR maps"')
    )
    topics = store_papers(wider, PAPERS)
    report = do_sync(wider, topics, zot)
    assert report.error is None and report.created == 0
    assert set(preprints(zot)) == {"2603.00001", "2603.00004"}
    assert zot.item(items["2603.00001"]["key"])["deleted"] is True
    zot.reset_log()
    assert do_sync(wider, topics, zot).requests == 0
    # A lost store adopts the trashed item rather than making it again.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{wider.store_path}{suffix}").unlink(missing_ok=True)
    report = do_sync(wider, store_papers(wider, PAPERS), zot)
    assert report.adopted == 2 and report.created == 1  # 2603.00002 was deleted for good
    assert len(preprints(zot)) == 3


def test_status_and_the_run_without_zotero_do_not_load_pyzotero(
    tmp_path: Path, zot: FakeZotero
) -> None:
    import subprocess
    import sys

    config = make_config(tmp_path, zot)
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('loaded' if 'pyzotero' in sys.modules else 'not loaded'))\n"
        "from feedsync.cli import main\n"
        f"main(['--config', {str(config.config_path)!r}, 'zotero', 'status'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("not loaded")


def test_1000_new_papers_take_at_most_25_requests_and_a_rerun_none(
    tmp_path: Path, zot: FakeZotero
) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, many(1000))
    report = do_sync(config, topics, zot)
    assert report.created == 1000 and len(preprints(zot)) == 1000
    assert len(zot.item_writes()) == 20
    assert report.requests == len(zot.requests) <= 25
    zot.reset_log()
    assert do_sync(config, topics, zot).requests == 0 and zot.requests == []


def test_a_server_asking_for_a_long_wait_ends_the_sync_until_the_next_run(
    tmp_path: Path, zot: FakeZotero
) -> None:
    config = make_config(tmp_path, zot)
    topics = store_papers(config, PAPERS)
    zot.fault("503", retry_after="3600")
    report = do_sync(config, topics, zot)
    assert report.error is not None and "Zotero asks to wait 3600 s" in report.error
    assert len(zot.requests) == 1
    report = do_sync(config, topics, zot)
    assert (report.created, report.error) == (3, None)


# -- the fake is as strict as the reference says the service is ---------------------------------


@pytest.fixture
def api(zot: FakeZotero) -> Iterator[httpx2.Client]:
    headers = {"Zotero-API-Version": "3", "Zotero-API-Key": zot.api_key}
    with httpx2.Client(base_url=f"{zot.url}{zot.prefix}", headers=headers) as http:
        yield http


def test_fake_checks_library_ids_versions_and_keys(zot: FakeZotero, api: httpx2.Client) -> None:
    bad = api.get(f"{zot.url}/users/me/items")
    assert (bad.status_code, bad.text) == (400, "Invalid user ID")
    assert api.get(f"{zot.url}/groups/x1/items").text == "Invalid group ID"
    assert api.get("/items", headers={"Zotero-API-Version": "2"}).status_code == 400
    assert api.get("/items", headers={"Zotero-API-Key": "wrong"}).text == "Invalid key"
    assert api.get("/items", headers={"Authorization": "Token x"}).status_code == 400
    assert api.get(f"{zot.url}/users/1/items").status_code == 403
    anonymous = httpx2.post(
        f"{zot.url}{zot.prefix}/items", json=[], headers={"Zotero-API-Version": "3"}
    )
    assert anonymous.text == "An API key is required for write requests."
    zot.revoke()
    assert (api.get("/items").status_code, api.get("/items").text) == (403, "Invalid key")


def test_fake_validates_each_object_like_the_service(zot: FakeZotero, api: httpx2.Client) -> None:
    parent = api.post("/collections", json=[{"name": "P", "color": "red"}, {"name": "P"}]).json()
    assert parent["failed"]["0"]["message"] == "Invalid property 'color'"
    key = parent["success"]["1"]
    good = {"itemType": "preprint", "title": "T", "collections": [key]}
    objects = [
        good,
        {**good, "year": "2026"},
        {**good, "publicationTitle": "Nature"},
        {**good, "publicationTitle": ""},
        {**good, "itemType": "paper"},
        {**good, "creators": [{"creatorType": "inventor", "name": "A"}]},
        {**good, "creators": [{"creatorType": "author"}]},
        {**good, "collections": ["xyz"]},
        {**good, "collections": ["ABCD2345"]},
        {**good, "abstractNote": "x" * 70000},
        {**good, "tags": [{"tag": "t" * 256}]},
        {**good, "key": "ABCD2345"},
        {**good, "arXivID": "2603.00001"},
    ]
    result = api.post("/items", json=objects)
    assert result.status_code == 200 and result.headers["Last-Modified-Version"] == "2"
    body = result.json()
    assert set(body) == {"successful", "success", "unchanged", "failed"}
    assert sorted(body["success"], key=int) == ["0", "3"]
    failed = {int(i): (f["code"], f["message"]) for i, f in body["failed"].items()}
    assert failed == {
        1: (400, "Invalid property 'year'"),
        2: (400, "'publicationTitle' is not a valid field for type 'preprint'"),
        4: (400, "'paper' is not a valid itemType"),
        5: (400, "'inventor' is not a valid creator type for item type 'preprint'"),
        6: (400, "creator object must contain 'firstName'/'lastName' or 'name'"),
        7: (400, "'xyz' is not a valid collection key"),
        8: (409, "Collection ABCD2345 not found"),
        9: (413, "Value for 'abstractNote' too long"),
        10: (413, f"Tag '{'t' * 50}…' too long"),
        11: (
            428,
            "Either If-Unmodified-Since-Version or 'version' property must be provided "
            "for 'key'-based writes",
        ),
        12: (400, "Invalid property 'arXivID'"),
    }


def test_fake_versions_keys_tokens_and_batch_limits(zot: FakeZotero, api: httpx2.Client) -> None:
    item = {"key": "ABCD2345", "version": 0, "itemType": "preprint", "title": "T"}
    token = {"Zotero-Write-Token": "a" * 32}
    assert api.post("/items", json=[item], headers=token).json()["success"] == {"0": "ABCD2345"}
    assert api.post("/items", json=[item], headers=token).text == "Write token already used"
    replay = api.post("/items", json=[item]).json()["failed"]["0"]
    assert replay == {
        "key": "ABCD2345",
        "code": 412,
        "message": "Item has been modified since specified version (expected 0, found 1)",
    }
    patched = api.patch(
        "/items/ABCD2345", json={"title": "U"}, headers={"If-Unmodified-Since-Version": "1"}
    )
    assert patched.status_code == 204 and zot.item("ABCD2345")["title"] == "U"
    assert api.patch("/items/ABCD2345", json={"title": "V"}).status_code == 428
    assert api.post("/items", json=[{"itemType": "note"}] * 51).status_code == 413
    assert (
        api.post("/items", json={"itemType": "note"}).text == "Uploaded data must be a JSON array"
    )


def test_fake_searches_and_pages_like_the_service(zot: FakeZotero, api: httpx2.Client) -> None:
    items = [
        {"itemType": "preprint", "title": f"T{n}", "tags": [{"tag": f"ArXiv:{n}"}]}
        for n in range(130)
    ]
    for start in range(0, 130, 50):
        api.post("/items", json=items[start : start + 50])
    page = api.get("/items", params={"limit": 500, "tag": "feedsync || arxiv:0"})
    assert page.headers["Total-Results"] == "1" and len(page.json()) == 1
    page = api.get("/items", params={"limit": 500})
    assert page.headers["Total-Results"] == "130" and len(page.json()) == 100
    assert 'rel="next"' in page.headers["Link"] and "start=100" in page.headers["Link"]
    assert len(api.get("/items").json()) == 25
    keys = api.get("/items", params={"format": "keys"}).text.split()
    assert len(keys) == 130
    versions = api.get("/items", params={"format": "versions", "itemType": "preprint"}).json()
    assert set(versions) == set(keys)
    assert api.get("/items", params={"nope": 1}).status_code == 400
