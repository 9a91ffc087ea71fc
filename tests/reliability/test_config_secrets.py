"""Reliability 6: every invalid config field is named, and the Zotero key never leaks.

Invalid fields: for every key of every section, a value of the wrong type and one out of
range (where a range exists), unknown keys at every level, and bad ``FEEDSYNC_*``
overrides. ``feedsync check-config`` must exit 2 with a message naming the key (or the
variable), never a traceback, and never the API key, which every one of these configs
also holds. The whole table goes through the command in process (click's runner) and a
sample of it through a real subprocess; the slow variant runs all of it as subprocesses.

Secrets: with the key given in the file, in ``FEEDSYNC_ZOTERO__API_KEY`` and in
``api_key_file``, ``feedsync --log-level debug run``, ``check-config`` and ``healthcheck``
run against a Zotero that echoes every request back in its error bodies (and, in the
slow variant, one that is unreachable, plus JSON logs and the daemon). The key must not
appear in any output, log, traceback, status record (the SQLite files read as bytes, and
every table), the config cache, or any published file. The same holds for the Hub token,
given in ``[source] token``, ``FEEDSYNC_SOURCE__TOKEN`` and ``token_file``, against a Hub
that takes it and one that refuses it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sqlite3
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from feedsync.cli import cli
from feedsync.config.toml import dumps
from tests.fakes.hf_data import entry
from tests.reliability.figures import record

SECRET = "zk-SECRET-1234567890abcdef"
FEEDSYNC = [sys.executable, "-m", "feedsync"]
UNREACHABLE = "http://127.0.0.1:9"

BASE: dict[str, Any] = {
    "data_dir": "data",
    "output_dir": "feeds",
    "topics": {"t": {"title": "T", "query": "lattice"}},
    "zotero": {"api_key": SECRET},
}


@dataclass(frozen=True)
class Case:
    name: str
    changes: tuple[tuple[tuple[str, ...], Any], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    names: tuple[str, ...] = ()  # the output must contain one of these (default: the key)

    def config(self) -> dict[str, Any]:
        data = copy.deepcopy(BASE)
        for path, value in self.changes:
            table = data
            for part in path[:-1]:
                table = table.setdefault(part, {})
            table[path[-1]] = value
        return data

    def expected(self) -> tuple[str, ...]:
        return self.names or (".".join(self.changes[0][0]),)


def bad(key: str, *values: Any) -> list[Case]:
    path = tuple(key.split("."))
    return [Case(f"{key} = {v!r}"[:60], ((path, v),)) for v in values]


def unknown(*table: str) -> Case:
    return Case(f"unknown key in [{'.'.join(table) or 'top'}]", (((*table, "colour"), 1),))


def env(name: str, value: str, *names: str) -> Case:
    return Case(f"{name}={value}", env=((name, value),), names=names or (name,))


TABLE = [
    # top level
    *bad("data_dir", 5, ["x"], "a\x00b"),
    *bad("output_dir", 5, {"a": 1}, "a\x00b"),
    *bad("base_url", 5, "ftp://example.org", "not a url", "http://"),
    # [source]
    *bad("source.kind", 5, "ftp"),
    *bad("source.api_url", 5, "file:///etc/passwd"),
    *bad("source.days", "three", 0, 32, 1.5),
    *bad("source.paths", "digests/*.json", [1]),
    *bad("source.paths", ["a\x00b"]),
    *bad("source.timeout", "fast", 0, -1, 601),
    *bad("source.retries", "x", -1, 11),
    *bad("source.max_wait", "long", -1, 86401),
    *bad("source.token", 5, ["t"], ""),
    *bad("source.token_file", 5),
    Case("files source without paths", ((("source", "kind"), "files"),), names=("source",)),
    # [schedule]
    *bad("schedule.cron", 5, "61 * * * *", "* * *"),
    *bad("schedule.timezone", 5, "Mars/Olympus_Mons"),
    # [server]
    *bad("server.host", 5),
    *bad("server.port", "http", 0, 65536),
    # [feeds]
    *bad("feeds.max_items", "many", 0, 1001),
    *bad("feeds.all_papers", "maybe", [True]),
    *bad("feeds.title_prefix", 5),
    # [topics]
    *bad("topics", 5, "x"),
    *bad("topics.t.title", 5, "", "x" * 201),
    *bad("topics.t.query", 5, "(unclosed", "a AND"),
    *bad("topics.t.min_upvotes", "x", -1),
    *bad("topics.t.authors", "Ana Ruiz", [1]),
    *bad("topics.t.organizations", "Example Lab", [1]),
    *bad("topics.t.max_items", "x", 0, 1001),
    *bad("topics.t.zotero", "maybe"),
    Case("a topic that selects nothing", ((("topics", "t"), {"title": "T"}),), names=("topics.t",)),
    *(
        Case(f"topic name {slug!r}", ((("topics", slug), {"title": "T", "query": "x"}),))
        for slug in ("Bad Slug", "all", "x" * 65, "-x")
    ),
    # [zotero]
    *bad("zotero.enabled", "maybe"),
    *bad("zotero.library_id", "abc", 5),
    *bad("zotero.library_type", "org", 5),
    *bad("zotero.api_key", 5, ["k"]),
    *bad("zotero.api_key_file", 5),
    *bad("zotero.api_url", "ftp://x", 5),
    *bad("zotero.collection", "", "x" * 256, 5),
    *bad("zotero.attach_pdf", "maybe"),
    *bad("zotero.keyword_tags", "maybe"),
    Case("zotero enabled without library_id", ((("zotero", "enabled"), True),), names=("zotero",)),
    Case(
        "zotero key file missing",
        (
            (("zotero", "enabled"), True),
            (("zotero", "library_id"), "1"),
            (("zotero", "api_key"), None),
            (("zotero", "api_key_file"), "no-such-file"),
        ),
        names=("zotero.api_key_file",),
    ),
    # A mistyped key name: unknown, and its value (the key itself) must not be echoed.
    *(Case(f"zotero.{k} (typo)", ((("zotero", k), SECRET),)) for k in ("apikey", "API_KEY")),
    # unknown keys at every level
    unknown(),
    unknown("source"),
    unknown("schedule"),
    unknown("server"),
    unknown("feeds"),
    unknown("topics", "t"),
    unknown("zotero"),
    Case("unknown section", ((("nope",), {"x": 1}),)),
    # environment overrides
    env("FEEDSYNC_SOURCE__DAYS", "garbage"),
    env("FEEDSYNC_SOURCE__DAYS", "0"),
    env("FEEDSYNC_SERVER__PORT", "99999"),
    env("FEEDSYNC_BASE_URL", "garbage"),
    env("FEEDSYNC_FEEDS__MAX_ITEMS", "x"),
    env("FEEDSYNC_FEEDS__ALL_PAPERS", "maybe"),
    env("FEEDSYNC_SCHEDULE__CRON", "bad"),
    env("FEEDSYNC_SCHEDULE__TIMEZONE", "Nowhere/Else"),
    env("FEEDSYNC_ZOTERO__ENABLED", "maybe"),
    env("FEEDSYNC_ZOTERO__LIBRARY_ID", "abc"),
    env("FEEDSYNC_SOURCE__NOPE", "1", "source.nope"),
    env("FEEDSYNC_ZOTERO__APIKEY", SECRET, "zotero.apikey"),
    env("FEEDSYNC_SOURCE__PATHS", "not json"),
    env("FEEDSYNC_TOPICS", "garbage"),
    env("FEEDSYNC_SOURCE", '{"days": 0}', "source.days"),
]


def clean_env(tmp: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSYNC_")}
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    return {**env, **(extra or {})}


@dataclass
class Outcome:
    case: Case
    code: int
    output: str
    problems: list[str] = field(default_factory=list)

    def judge(self) -> Outcome:
        if self.code != 2:
            self.problems.append(f"exit {self.code}")
        if not any(name in self.output for name in self.case.expected()):
            self.problems.append(f"does not name {' or '.join(self.case.expected())}")
        if "Traceback" in self.output:
            self.problems.append("traceback")
        if SECRET in self.output:
            self.problems.append("shows the API key")
        return self


def write_case(tmp: Path, n: int, case: Case) -> Path:
    home = tmp / f"case-{n}"
    home.mkdir()
    config = home / "feedsync.toml"
    config.write_text(dumps(case.config()), encoding="utf-8")
    return config


def in_process(tmp: Path, n: int, case: Case) -> Outcome:
    """The same command through click's runner: the whole table in well under a second."""
    config = write_case(tmp, n, case)
    result = CliRunner().invoke(cli, ["check-config", "--config", str(config)], env=dict(case.env))
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += "Traceback: " + "".join(traceback.format_exception(result.exception))
    return Outcome(case, result.exit_code, output).judge()


def in_subprocess(tmp: Path, n: int, case: Case) -> Outcome:
    config = write_case(tmp, n, case)
    result = subprocess.run(
        [*FEEDSYNC, "check-config", "--config", str(config)],
        env=clean_env(tmp, dict(case.env)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Outcome(case, result.returncode, result.stdout + result.stderr).judge()


def check_table(outcomes: list[Outcome], how: str) -> None:
    failed = [o for o in outcomes if o.problems]
    record(
        f"config: invalid fields ({how})",
        f"{len(outcomes) - len(failed)}/{len(outcomes)} exit 2 naming the key, "
        f"{sum('traceback' in o.problems for o in outcomes)} tracebacks, "
        f"{sum('shows the API key' in o.problems for o in outcomes)} showing the key",
    )
    report = [
        f"{o.case.name}: {', '.join(o.problems)}\n    {o.output.strip()[:300]}" for o in failed
    ]
    assert not failed, "\n".join(report)


# Through the real command for a sample (a process costs ~0.3 s): one of each kind.
SAMPLE = [TABLE[i] for i in range(0, len(TABLE), 9)]


def test_every_invalid_field_is_named(tmp_path: Path) -> None:
    check_table([in_process(tmp_path, n, c) for n, c in enumerate(TABLE)], "in process")


def test_invalid_fields_through_the_command(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda nc: in_subprocess(tmp_path, *nc), enumerate(SAMPLE)))
    check_table(outcomes, "feedsync check-config, a sample")


@pytest.mark.slow
def test_every_invalid_field_through_the_command(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda nc: in_subprocess(tmp_path, *nc), enumerate(TABLE)))
    check_table(outcomes, "feedsync check-config")


# -- the key never leaks -----------------------------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    """A hostile Zotero: every answer is an error whose body repeats the whole request."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        echoed = f"{self.command} {self.path}\n{self.headers}\n".encode() + body
        status = 403 if self.server.seen % 2 == 0 else 500  # type: ignore[attr-defined]
        self.server.seen += 1  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(echoed)))
        self.send_header("X-Echo-Key", self.headers.get("Zotero-API-Key", ""))
        self.end_headers()
        self.wfile.write(echoed)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _echo


@pytest.fixture(scope="module")
def echo_zotero() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    server.seen = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def secret_home(tmp: Path, how: str, api_url: str) -> tuple[Path, dict[str, str]]:
    """A files-source install with Zotero enabled; the key given ``how``."""
    from datetime import date

    home = tmp / f"{how}-{api_url.rsplit(':', 1)[1]}"
    home.mkdir()
    day = date(2026, 3, 2)
    digest = [entry(f"2603.0000{n}", f"Lattice Planning {n}", day) for n in (1, 2)]
    (home / "digest.json").write_text(json.dumps(digest), encoding="utf-8")
    zotero: dict[str, Any] = {"enabled": True, "library_id": "12345", "api_url": api_url}
    extra = {}
    if how == "file":
        zotero["api_key"] = SECRET
    elif how == "env":
        extra["FEEDSYNC_ZOTERO__API_KEY"] = SECRET
    else:
        (home / "zotero.key").write_text(SECRET + "\n", encoding="utf-8")
        zotero["api_key_file"] = "zotero.key"
    config = {
        "data_dir": "data",
        "output_dir": "feeds",
        "source": {"kind": "files", "paths": ["digest.json"]},
        "feeds": {"all_papers": True},
        "topics": {"t": {"title": "T", "query": "lattice", "zotero": True}},
        "zotero": zotero,
    }
    (home / "feedsync.toml").write_text(dumps(config), encoding="utf-8")
    return home, clean_env(tmp, extra)


# What a deployment runs; the slow variant adds the JSON log format and the daemon.
COMMANDS = [["--log-level", "debug", "run"], ["check-config"], ["healthcheck"]]
MORE_COMMANDS = [
    ["--log-level", "debug", "--log-format", "json", "run", "--refresh"],
    ["--log-level", "debug", "daemon", "--interval", "0.2", "--max-runs", "2"],
]


def scan(
    tmp: Path,
    home: Path,
    env: dict[str, str],
    secret: str,
    given_in: str | None,
    commands: list[list[str]],
    run_exit: int,
) -> list[str]:
    """Run ``commands`` in ``home``; every place ``secret`` then shows up: output, files
    (the one it was given in aside), the config cache, every table of the store (virtual
    tables through their shadow tables, which hold their data), and any traceback."""
    found = []
    for args in commands:
        command = " ".join(args)
        result = subprocess.run(
            [*FEEDSYNC, "--config", str(home / "feedsync.toml"), *args],
            env=env,
            capture_output=True,
            timeout=180,
        )
        if command.endswith("run") and result.returncode != run_exit:
            found.append(f"{command}: exit {result.returncode}")
        for stream, data in (("stdout", result.stdout), ("stderr", result.stderr)):
            if secret.encode() in data:
                found.append(f"{command}: {stream}")
            if b"Traceback" in data:
                found.append(f"{command}: traceback in {stream}: {data[-600:]!r}")
    for path in sorted([*home.rglob("*"), *(tmp / "cache").rglob("*")]):
        if path.is_file() and path.name != given_in and secret.encode() in path.read_bytes():
            found.append(str(path.relative_to(tmp)))
    with contextlib.closing(sqlite3.connect(home / "data" / "feedsync.sqlite3")) as db:
        tables = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'"
        )
        for (table,) in tables.fetchall():
            for row in db.execute(f'SELECT * FROM "{table}"'):
                if any(secret in str(value) for value in row):
                    found.append(f"store table {table}")
                    break
    return found


def leaks(tmp: Path, how: str, api_url: str, commands: list[list[str]]) -> list[str]:
    """Every place the key showed up (the file it was given in aside)."""
    home, env = secret_home(tmp, how, api_url)
    given_in = {"file": "feedsync.toml", "key-file": "zotero.key"}.get(how)
    # Zotero failing is a failed run (exit 1), never a crash.
    found = scan(tmp, home, env, SECRET, given_in, commands, run_exit=1)
    with contextlib.closing(sqlite3.connect(home / "data" / "feedsync.sqlite3")) as db:
        runs = db.execute("SELECT count(*) FROM runs").fetchone()[0]
    assert runs >= 1, "no run was recorded"
    assert any((home / "feeds").glob("*.atom")), "nothing was published"
    return [f"key in {how}, Zotero at {api_url}: {where}" for where in found]


def check_leaks(tmp: Path, urls: list[str], commands: list[list[str]]) -> None:
    combos = [(how, url) for how in ("file", "env", "key-file") for url in urls]
    # Parallel: the runs mostly wait on the Zotero client's backoff.
    with ThreadPoolExecutor(max_workers=len(combos)) as pool:
        found = [f for fs in pool.map(lambda c: leaks(tmp, *c, commands), combos) for f in fs]
    servers = " and ".join("unreachable" if url == UNREACHABLE else "echoing" for url in urls)
    record(
        "secrets: Zotero key",
        f"{len(found)} leaks (key in file, env and api_key_file; Zotero {servers}; "
        f"{len(commands)} commands each)",
    )
    assert not found, "\n".join(found)


def test_the_key_never_leaks(tmp_path: Path, echo_zotero: str) -> None:
    # The echoing Zotero refuses the key at once (403); an unreachable one costs a run
    # its whole retry schedule (5-15 s), so it waits for the slow variant.
    check_leaks(tmp_path, [echo_zotero], COMMANDS)


@pytest.mark.slow
def test_the_key_never_leaks_anywhere(tmp_path: Path, echo_zotero: str) -> None:
    check_leaks(tmp_path, [echo_zotero, UNREACHABLE], COMMANDS + MORE_COMMANDS)


# -- the Hub token never leaks -----------------------------------------------------------------

TOKEN = "hf_SECRET_TOKEN_0123456789abcdef"


def token_leaks(tmp: Path, how: str, hf_url: str, accepted: bool) -> list[str]:
    """Every place the Hub token showed up (the file it was given in aside)."""
    home = tmp / f"token-{how}-{'ok' if accepted else 'refused'}"
    home.mkdir()
    source: dict[str, Any] = {"kind": "hf-api", "api_url": hf_url, "days": 2, "retries": 0}
    extra = {}
    if how == "file":
        source["token"] = TOKEN
    elif how == "env":
        extra["FEEDSYNC_SOURCE__TOKEN"] = TOKEN
    else:
        (home / "hf.token").write_text(TOKEN + "\n", encoding="utf-8")
        source["token_file"] = "hf.token"
    config = {
        "data_dir": "data",
        "output_dir": "feeds",
        "source": source,
        "topics": {"t": {"title": "T", "query": "lattice"}},
    }
    (home / "feedsync.toml").write_text(dumps(config), encoding="utf-8")
    env = clean_env(tmp, extra)
    given_in = {"file": "feedsync.toml", "token-file": "hf.token"}.get(how)
    found = scan(tmp, home, env, TOKEN, given_in, COMMANDS, run_exit=0 if accepted else 1)
    return [f"token in {how}, {'accepted' if accepted else 'refused'}: {where}" for where in found]


def test_the_hub_token_never_leaks(tmp_path: Path) -> None:
    from tests.fakes.hf_api import FakeHF

    with FakeHF(tokens={TOKEN: 2}) as taking, FakeHF() as refusing:
        combos = [
            (how, hf, accepted)
            for how in ("file", "env", "token-file")
            for hf, accepted in ((taking, True), (refusing, False))
        ]
        with ThreadPoolExecutor(max_workers=len(combos)) as pool:
            found = [
                f
                for fs in pool.map(lambda c: token_leaks(tmp_path, c[0], c[1].url, c[2]), combos)
                for f in fs
            ]
        sent = [r.headers.get("authorization") for r in taking.requests]
    record("secrets: Hub token", f"{len(found)} leaks (token in file, env and token_file)")
    assert not found, "\n".join(found)
    assert sent and all(value == f"Bearer {TOKEN}" for value in sent)
