"""`feedsync run` end to end: the fake HF API on 127.0.0.1, the real client, feeds read back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner

from feedsync.cli import cli
from feedsync.config import Config, load_config
from feedsync.errors import StorageError
from feedsync.fetch.http import HttpClient
from feedsync.pipeline import run
from feedsync.store import Store
from tests.fakes.hf_api import FakeHF
from tests.fakes.hf_data import entry

MON, TUE, WED = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)


@pytest.fixture
def hf() -> Iterator[FakeHF]:
    with FakeHF() as fake:
        fake.set_day(
            MON,
            [
                entry("2603.00001", "Chain of Thought for Lattice Planning", MON, upvotes=4),
                entry("2603.00002", "A Robot That Folds Maps", MON, upvotes=12),
            ],
        )
        fake.set_day(
            TUE,
            [
                entry(
                    "2603.00003",
                    "Reasoning Traces in Tiny Models",
                    TUE,
                    upvotes=1,
                    organization="Example Lab",
                ),
            ],
        )
        yield fake


def make_config(
    tmp_path: Path, hf: FakeHF, topics: str | None = None, kind: str = "hf-api"
) -> Config:
    topics = (
        topics
        if topics is not None
        else """
[topics.reasoning]
title = "Reasoning"
query = 'reasoning OR "chain of thought"'

[topics.robots]
title = "Robots"
query = "robot*"
min_upvotes = 10
"""
    )
    path = tmp_path / "feedsync.toml"
    path.write_text(
        f"""
data_dir = "data"
output_dir = "out"
base_url = "https://feeds.example.org/papers"
[source]
kind = "{kind}"
api_url = "{hf.url}"
days = 3
retries = 1
{topics}
""",
        encoding="utf-8",
    )
    return load_config(path, {})


def client() -> HttpClient:
    return HttpClient(timeout=5, retries=1, backoff=0.01)


def do_run(config: Config, days: list[date] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    with client() as http:
        return run(config, days=days or [WED, TUE, MON], client=http, **kw)  # type: ignore[arg-type]


def read(path: Path) -> feedparser.FeedParserDict:
    ctype = "application/atom+xml" if path.suffix == ".atom" else "application/rss+xml"
    parsed = feedparser.parse(path.read_bytes(), response_headers={"content-type": ctype})
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def test_first_run_publishes_every_file(tmp_path: Path, hf: FakeHF) -> None:
    config = make_config(tmp_path, hf)
    report = do_run(config)
    assert report.ok, report.failures
    assert report.source is not None and report.source.counts.new == 3
    out = config.output_dir
    assert sorted(p.name for p in out.iterdir()) == [
        "index.html",
        "index.opml",
        "reasoning.atom",
        "reasoning.rss",
        "robots.atom",
        "robots.rss",
    ]
    atom = read(out / "reasoning.atom")
    assert atom.version == "atom10"
    assert [e.title for e in atom.entries] == [
        "Reasoning Traces in Tiny Models",
        "Chain of Thought for Lattice Planning",
    ]
    assert atom.entries[0].link == "https://arxiv.org/abs/2603.00003"
    assert atom.entries[0].id == "tag:feeds.example.org,2026:reasoning/2603.00003"
    rss = read(out / "reasoning.rss")
    assert rss.version == "rss20"
    assert [e.id for e in rss.entries] == [e.id for e in atom.entries]
    assert rss.feed.links[0].href == "https://feeds.example.org/papers/reasoning.rss" or any(
        link.href == "https://feeds.example.org/papers/reasoning.rss" for link in rss.feed.links
    )
    robots = read(out / "robots.atom")
    assert [e.title for e in robots.entries] == ["A Robot That Folds Maps"]


def test_idle_run_costs_304s_and_writes_nothing(
    tmp_path: Path, hf: FakeHF, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feedsync.net import DaemonPool

    config = make_config(tmp_path, hf)
    do_run(config)
    closes: list[bool] = []
    close = DaemonPool.close

    def spy(pool: DaemonPool, *, wait: bool = False) -> None:
        closes.append(wait)
        close(pool, wait=wait)

    monkeypatch.setattr(DaemonPool, "close", spy)
    stamps = {p.name: p.stat().st_mtime_ns for p in config.output_dir.iterdir()}
    hf.reset_log()
    report = do_run(config)
    assert report.ok
    assert report.published is not None and report.published.written == ()
    assert {p.name: p.stat().st_mtime_ns for p in config.output_dir.iterdir()} == stamps
    # One conditional request per refetched day, all answered 304.
    assert [r.status for r in hf.requests] == [304, 304, 304]
    assert all("if-none-match" in r.headers for r in hf.requests)
    # A daemon runs passes forever: a pass that fetched every day joins its fetch threads.
    assert closes == [True]


def test_two_stores_built_at_different_times_publish_the_same_bytes(
    tmp_path: Path, hf: FakeHF
) -> None:
    """A second instance, a rebuilt state or a fresh store publishes byte-identical feeds
    for the same digests: no date in them comes from when a store saw a paper."""
    from datetime import UTC, datetime, timedelta

    def build(name: str, start: datetime) -> dict[str, bytes]:
        home = tmp_path / name
        home.mkdir()
        config = make_config(home, hf)
        ticks = iter(start + timedelta(minutes=n) for n in range(10_000))
        for days in ([MON], [TUE, MON], [WED, TUE, MON]):  # a store that grew day by day
            with client() as http:
                assert run(config, days=days, client=http, clock=lambda: next(ticks)).ok
        return {p.name: p.read_bytes() for p in sorted(config.output_dir.iterdir())}

    early = build("early", datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    # The other one reads everything at once, a year later (a backfill on a new machine).
    later = tmp_path / "later"
    later.mkdir()
    config = make_config(later, hf)
    with client() as http:
        moment = datetime(2027, 5, 1, 23, 59, 59, tzinfo=UTC)
        assert run(config, days=[WED, TUE, MON], client=http, clock=lambda: moment).ok
    assert {p.name: p.read_bytes() for p in sorted(config.output_dir.iterdir())} == early
    atom = read(config.output_dir / "reasoning.atom")
    assert [e.updated for e in atom.entries] == [e.published for e in atom.entries]
    assert atom.feed.updated == "2026-03-03T00:00:00+00:00"  # the newest featured day


def test_a_pass_keeps_no_rendered_entry_in_memory(tmp_path: Path, hf: FakeHF) -> None:
    """A daemon runs passes for months: what a pass rendered must not stay in memory after
    it (a process-wide cache kept the last 2,048 papers and their entry HTML)."""
    import gc

    from feedsync.render.feeds import Entry

    def entries() -> list[object]:
        gc.collect()
        return [o for o in gc.get_objects() if isinstance(o, Entry)]

    # Other tests' whole-feed renders may have left some (a cache meant for those): held
    # here, so that no new entry can take the id of one of them.
    before = entries()
    # A paper no other test renders: a cached entry of an equal paper cannot stand in.
    hf.set_day(WED, [entry("2603.09999", "Reasoning About Memory Retained Between Passes", WED)])
    config = make_config(tmp_path, hf)
    report = do_run(config)
    assert report.ok and report.published is not None and report.published.written
    known = {id(o) for o in before}
    assert [o for o in entries() if id(o) not in known] == []


def test_new_paper_and_upvotes_crossing_the_threshold_enter_later(
    tmp_path: Path, hf: FakeHF
) -> None:
    config = make_config(tmp_path, hf)
    do_run(config)
    hf.set_day(WED, [entry("2603.00004", "Robot Arms Reasoning About Cups", WED, upvotes=2)])
    hf.set_day(
        MON,
        [
            entry("2603.00001", "Chain of Thought for Lattice Planning", MON, upvotes=4),
            entry("2603.00002", "A Robot That Folds Maps", MON, upvotes=12),
        ],
    )
    report = do_run(config)
    assert report.topics["reasoning"].new == 1
    assert report.topics["robots"].new == 0
    assert report.published is not None
    assert "reasoning.atom" in report.published.written
    assert "robots.atom" not in report.published.written
    hf.set_day(WED, [entry("2603.00004", "Robot Arms Reasoning About Cups", WED, upvotes=15)])
    report = do_run(config)
    assert report.topics["robots"].new == 1
    titles = [e.title for e in read(config.output_dir / "robots.atom").entries]
    assert titles == ["Robot Arms Reasoning About Cups", "A Robot That Folds Maps"]


def test_a_failing_source_keeps_the_published_feeds(tmp_path: Path, hf: FakeHF) -> None:
    config = make_config(tmp_path, hf)
    do_run(config)
    before = {p.name: p.read_bytes() for p in config.output_dir.iterdir()}
    hf.fault("500", times=100)
    report = do_run(config)
    assert not report.ok and report.exit_code == 1
    assert any("HTTP 500" in f for f in report.failures)
    assert {p.name: p.read_bytes() for p in config.output_dir.iterdir()} == before
    with Store(config.store_path) as store:
        assert store.count() == 3
        last = store.last_runs(1)[0]
        assert last.result == "failed" and "HTTP 500" in (last.error or "")


def test_a_store_that_refuses_the_run_status_is_one_logged_line(
    tmp_path: Path, hf: FakeHF, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A full disk refuses the status record too, after refusing what ended the run: the
    # user gets that error's words, and one line for the record, not a traceback.
    config = make_config(tmp_path, hf)

    def refuse(*args: object) -> None:
        raise StorageError("cannot write to the store: disk I/O error")

    monkeypatch.setattr(Store, "finish_run", refuse)
    with caplog.at_level(logging.ERROR, logger="feedsync"):
        do_run(config)
    (record,) = [r for r in caplog.records if "cannot record the run status" in r.getMessage()]
    assert record.getMessage().endswith("cannot write to the store: disk I/O error")
    assert record.exc_info is None


def test_wrong_shape_and_html_answers_are_failures_not_crashes(tmp_path: Path, hf: FakeHF) -> None:
    config = make_config(tmp_path, hf)
    do_run(config)
    hf.fault("wrong-shape", path=f"date={TUE}")
    hf.fault("html", path=f"date={MON}")
    report = do_run(config)
    assert len(report.failures) == 2
    assert len(read(config.output_dir / "reasoning.atom").entries) == 2


def test_a_full_page_fetches_the_next_one(tmp_path: Path, hf: FakeHF) -> None:
    hf.set_day(WED, [entry(f"2603.1{n:04d}", f"Reasoning Paper {n}", WED) for n in range(130)])
    config = make_config(tmp_path, hf)
    report = do_run(config, days=[WED])
    assert report.source is not None and report.source.papers == 130
    pages = [r.query.get("p", ["0"])[0] for r in hf.requests]
    assert pages == ["0", "1"]
    assert len(read(config.output_dir / "reasoning.atom").entries) == 50  # max_items


def test_removed_topic_files_disappear(tmp_path: Path, hf: FakeHF) -> None:
    config = make_config(tmp_path, hf)
    do_run(config)
    (config.output_dir / "notes.txt").write_text("not ours")
    smaller = make_config(
        tmp_path, hf, topics='[topics.reasoning]\ntitle = "R"\nquery = "reasoning"\n'
    )
    do_run(smaller, offline=True)
    names = sorted(p.name for p in smaller.output_dir.iterdir())
    assert names == ["index.html", "index.opml", "notes.txt", "reasoning.atom", "reasoning.rss"]
    assert b"robots" not in (smaller.output_dir / "index.opml").read_bytes()


def test_changed_query_rematches_everything(tmp_path: Path, hf: FakeHF) -> None:
    config = make_config(tmp_path, hf)
    do_run(config)
    changed = make_config(
        tmp_path, hf, topics='[topics.reasoning]\ntitle = "R"\nquery = "lattice"\n'
    )
    report = do_run(changed, offline=True)
    assert report.topics["reasoning"].matches == 1


def test_a_changed_query_is_matched_against_every_stored_paper(tmp_path: Path, hf: FakeHF) -> None:
    from feedsync.query import compile_query
    from tests.query_reference import matches

    config = make_config(tmp_path, hf)
    do_run(config)
    changed = make_config(
        tmp_path, hf, topics='[topics.reasoning]\ntitle = "R"\nquery = "lattice OR robot*"\n'
    )
    report = do_run(changed, offline=True)
    node = compile_query("lattice OR robot*").node
    with Store(config.store_path) as store:
        expected = {s.rowid for s in store.papers() if matches(node, s.paper)}
    assert report.topics["reasoning"].matches == len(expected) > 1
    titles = {e.title for e in read(changed.output_dir / "reasoning.atom").entries}
    assert len(titles) == len(expected)


def test_html_pages_source(tmp_path: Path, hf: FakeHF) -> None:
    config = make_config(tmp_path, hf, kind="hf-html")
    report = do_run(config)
    assert report.ok, report.failures
    assert report.source is not None and report.source.counts.new == 3
    assert {r.path for r in hf.requests} == {f"/papers/date/{d}" for d in (MON, TUE, WED)}


def test_backfill_resumes_without_refetching(tmp_path: Path, hf: FakeHF) -> None:
    config = make_config(tmp_path, hf)
    with client() as http:
        run(config, days=[MON], skip_fetched=True, client=http)
        hf.reset_log()
        report = run(config, days=[MON, TUE], skip_fetched=True, client=http)
    assert report.source is not None and report.source.skipped == 1
    assert [r.query["date"] for r in hf.requests] == [[str(TUE)]]


def test_cli_run_reports_and_exit_codes(tmp_path: Path, hf: FakeHF) -> None:
    config = make_config(tmp_path, hf)
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config.config_path), "run"])
    # Real recent days are empty on the fake: nothing fetched, still a valid publication.
    assert result.exit_code == 0, result.output
    assert "files: 6 written" in result.output
    hf.fault("503", times=100)
    result = runner.invoke(cli, ["--config", str(config.config_path), "run"])
    assert result.exit_code == 1
    assert "HTTP 503" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[topics.x]\ntitle = 'X'\nquery = '(unclosed'\n")
    result = runner.invoke(cli, ["--config", str(bad), "run"])
    assert result.exit_code == 2
    assert "topics.x.query" in result.output


def test_cli_preview(tmp_path: Path, hf: FakeHF) -> None:
    config = make_config(tmp_path, hf)
    do_run(config)
    result = CliRunner().invoke(cli, ["--config", str(config.config_path), "preview", "reasoning"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "topic reasoning: 2 of 3 stored papers match"
    assert "2603.00003" in lines[1] and "matched: reasoning" in lines[2]
    result = CliRunner().invoke(
        cli, ["--config", str(config.config_path), "preview", "-q", "title:robot"]
    )
    assert "1 of 3" in result.output
    result = CliRunner().invoke(
        cli, ["--config", str(config.config_path), "preview", "-q", "a AND"]
    )
    assert result.exit_code == 2 and "column" in result.output
    result = CliRunner().invoke(cli, ["--config", str(config.config_path), "preview", "nope"])
    assert result.exit_code == 2 and "no topic 'nope'" in result.output


def test_a_feed_changed_behind_our_back_is_published_again(tmp_path: Path, hf: FakeHF) -> None:
    config = make_config(tmp_path, hf)
    do_run(config)
    feed = config.output_dir / "reasoning.atom"
    good = feed.read_bytes()
    feed.write_bytes(b"<feed>someone else's</feed>")
    (config.output_dir / "robots.rss").unlink()
    report = do_run(config, offline=True)
    assert report.published is not None
    assert sorted(report.published.written) == ["reasoning.atom", "robots.rss"]
    assert feed.read_bytes() == good


def whole_feeds(config: Config) -> dict[str, bytes]:
    """Every topic feed rendered whole by feedgen from the store, as the cache must match."""
    from feedsync.match.topics import build_topics
    from feedsync.publish.stage import feed_spec
    from feedsync.render.feeds import render_atom, render_rss

    files = {}
    with Store(config.store_path) as store:
        for t in build_topics(config):
            spec = feed_spec(config, t.slug, t.title, t.description)
            papers = store.newest(t.slug, t.max_items)
            files[f"{t.slug}.rss"] = render_rss(spec, papers)
            files[f"{t.slug}.atom"] = render_atom(spec, papers)
    return files


def test_entries_are_rendered_once_and_spliced_into_every_feed(
    tmp_path: Path, hf: FakeHF, monkeypatch: pytest.MonkeyPatch
) -> None:
    import feedsync.render.fragments as fragments

    rendered: list[str] = []
    real = fragments.render_fragments

    def counting(papers):  # type: ignore[no-untyped-def]
        rendered.extend(p.paper.key for p in papers)
        return real(papers)

    monkeypatch.setattr(fragments, "render_fragments", counting)
    config = make_config(tmp_path, hf, topics=TWO_OVERLAPPING)
    do_run(config)
    # 2603.00001 is in both topics, and rendered once for both and both formats.
    assert sorted(rendered) == ["2603.00001", "2603.00002", "2603.00003"]
    out = config.output_dir
    assert {n: (out / n).read_bytes() for n in whole_feeds(config)} == whole_feeds(config)

    rendered.clear()
    hf.set_day(WED, [entry("2603.00004", "Lattice Robots Reasoning", WED, upvotes=20)])
    do_run(config)
    assert rendered == ["2603.00004"]  # the others came from the store
    assert {n: (out / n).read_bytes() for n in whole_feeds(config)} == whole_feeds(config)

    # A revised title is a new revision: that entry alone is rendered again, everywhere.
    rendered.clear()
    hf.set_day(MON, [entry("2603.00001", "Chain of Thought for Lattice Maps", MON, upvotes=4)])
    do_run(config)
    assert rendered == ["2603.00001"]
    assert {n: (out / n).read_bytes() for n in whole_feeds(config)} == whole_feeds(config)
    for name in ("lattice.atom", "reasoning.rss"):
        titles = [e.title for e in read(out / name).entries]
        assert "Chain of Thought for Lattice Maps" in titles, name


def test_cached_entries_are_only_those_in_some_feed(tmp_path: Path, hf: FakeHF) -> None:
    one_each = TWO_OVERLAPPING.replace("max_items = 50", "max_items = 1") + "max_items = 1\n"
    config = make_config(tmp_path, hf, topics=one_each)
    do_run(config)
    with Store(config.store_path) as store:
        cached = {r[0] for r in store._db.execute("SELECT paper_id FROM fragments")}
        newest = {i for t in ("lattice", "reasoning") for i, _ in store.newest_ids(t, 1)}
    assert cached == newest and len(cached) == 2


def test_adopting_an_arxiv_id_is_a_revision(tmp_path: Path, hf: FakeHF) -> None:
    """A text-only paper that the API later identifies gets its arXiv link in the feeds."""
    from feedsync.models import Paper

    config = make_config(tmp_path, hf)
    with Store(config.store_path) as store:
        store.upsert([Paper(key="title:abc", arxiv_id=None, title="Reasoning With Maps")])
        before = store.get("title:abc")
        store.upsert([Paper(key="2603.00009", arxiv_id="2603.00009", title="Reasoning With Maps")])
        after = store.get("title:abc")
    assert before is not None and after is not None
    assert after.rev == before.rev + 1
    do_run(config, offline=True)
    links = [e.link for e in read(config.output_dir / "reasoning.atom").entries]
    assert "https://arxiv.org/abs/2603.00009" in links


TWO_OVERLAPPING = """
[topics.lattice]
title = "Lattice"
query = "lattice OR robot*"
max_items = 50

[topics.reasoning]
title = "Reasoning"
query = 'reasoning OR "chain of thought"'
"""


@pytest.mark.parametrize(
    ("paths", "failure"),
    [
        (["drop/*.json"], None),  # an empty drop folder: nothing to read yet
        (["drop/**/*.json"], None),
        (["nope/*.json"], "nope/*.json: no such folder"),  # a typo: empty feeds for good
        (["nope/**/*.json"], "nope/**/*.json: no such folder"),
        (["missing.json"], "missing.json: no such file"),
    ],
)
def test_a_files_source_names_the_paths_that_find_nothing(
    tmp_path: Path, paths: list[str], failure: str | None
) -> None:
    (tmp_path / "drop").mkdir()
    config_path = tmp_path / "feedsync.toml"
    config_path.write_text(
        f'data_dir = "data"\noutput_dir = "out"\n[source]\nkind = "files"\npaths = {paths!r}\n'
        '[topics.a]\ntitle = "A"\nquery = "planning"\n'.replace("'", '"'),
        encoding="utf-8",
    )
    report = run(load_config(config_path, {}))
    if failure is None:
        assert report.ok, report.failures
    else:
        (only,) = report.failures
        assert only.startswith(f"source: {tmp_path}/{failure}"), only
    assert (tmp_path / "out" / "a.atom").exists()  # published all the same
