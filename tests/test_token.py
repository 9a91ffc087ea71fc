"""The Hub token: where it is read from, where it is sent, and what a refusal says."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from feedsync.config import load_config
from feedsync.fetch.http import HttpClient
from tests.fakes.hf_api import FakeHF
from tests.fakes.hf_data import entry

TOKEN = "hf_TOKEN_abcdef0123456789"
DAY = date(2026, 3, 6)
FEEDSYNC = [sys.executable, "-m", "feedsync"]


def config_file(tmp: Path, source: str) -> Path:
    path = tmp / "feedsync.toml"
    path.write_text(
        f'data_dir = "data"\noutput_dir = "feeds"\n[source]\n{source}\n'
        '[topics.t]\ntitle = "T"\nquery = "lattice"\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("source", "env", "origin"),
    [
        (f'token = "{TOKEN}"', {}, "[source] token"),
        ("", {"FEEDSYNC_SOURCE__TOKEN": TOKEN}, "FEEDSYNC_SOURCE__TOKEN"),
        ('token_file = "hf.token"', {}, "hf.token"),
        ("", {"HF_TOKEN": TOKEN}, "HF_TOKEN"),
        ('token = "x"', {"FEEDSYNC_SOURCE__TOKEN": TOKEN}, "FEEDSYNC_SOURCE__TOKEN"),
        (f'token = "{TOKEN}"', {"HF_TOKEN": "hf_other"}, "[source] token"),
    ],
)
def test_the_token_is_read_from_where_it_is_given(
    tmp_path: Path, source: str, env: dict[str, str], origin: str
) -> None:
    (tmp_path / "hf.token").write_text(TOKEN + "\n", encoding="utf-8")
    path = config_file(tmp_path, source)
    for _ in range(2):  # validated, then from the cache (which never holds it)
        config = load_config(path, {**env, "XDG_CACHE_HOME": str(tmp_path / "cache")})
        assert config.source.bearer() == TOKEN
        assert config.source.token_from is not None and config.source.token_from.endswith(origin)
        assert TOKEN not in repr(config) and config.redacted()["source"]["token"] == "********"
    assert not any(TOKEN in p.read_text() for p in (tmp_path / "cache").rglob("*.json"))


def test_hf_token_goes_to_the_hub_only(tmp_path: Path) -> None:
    env = {"HF_TOKEN": TOKEN}
    mirror = load_config(config_file(tmp_path, 'api_url = "https://papers.example.org"'), env)
    assert mirror.source.token is None  # a mirror is given its token explicitly
    hub = load_config(config_file(tmp_path, 'api_url = "https://huggingface.co"'), env)
    assert hub.source.bearer() == TOKEN


@pytest.mark.parametrize("source", ['token = ""', 'token = "  "', "token = 5"])
def test_a_bad_token_setting_is_named(tmp_path: Path, source: str) -> None:
    result = subprocess.run(
        [*FEEDSYNC, "--config", str(config_file(tmp_path, source)), "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "source.token" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_check_config_redacts_the_token(tmp_path: Path) -> None:
    result = subprocess.run(
        [*FEEDSYNC, "--config", str(config_file(tmp_path, f'token = "{TOKEN}"')), "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert 'token = "********"' in result.stdout and TOKEN not in result.stdout + result.stderr


@pytest.fixture
def hf() -> Iterator[FakeHF]:
    with FakeHF(quotas={"api": (50, 300.0)}, tokens={TOKEN: 2}) as fake:
        fake.set_day(DAY, [entry("2603.01234", "Lattice Sketches", DAY)])
        yield fake


def test_the_token_is_sent_to_the_source_and_raises_the_quota(hf: FakeHF) -> None:
    with HttpClient(timeout=5, token=TOKEN, token_origin=hf.url) as http:
        answer = http.get(f"{hf.url}/api/daily_papers?date={DAY}&limit=100")
    assert answer.status == 200
    assert hf.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert hf.windows("api")[0].quota == 100  # a free account's, twice the anonymous one


class _Redirect(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.server.target + self.path)  # type: ignore[attr-defined]
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_token_never_follows_a_redirect_elsewhere(hf: FakeHF) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    server.target = hf.url  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    source = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with HttpClient(timeout=5, token=TOKEN, token_origin=source) as http:
            answer = http.get(f"{source}/api/daily_papers?date={DAY}&limit=100")
    finally:
        server.shutdown()
        server.server_close()
    assert answer.status == 200
    assert [r.headers.get("authorization") for r in hf.requests] == [None]


def test_nor_goes_to_another_host_of_the_run(hf: FakeHF) -> None:
    with HttpClient(timeout=5, token=TOKEN, token_origin="https://huggingface.co") as http:
        http.get(f"{hf.url}/api/daily_papers?date={DAY}&limit=100")
    assert "authorization" not in hf.requests[0].headers


def test_a_refused_token_is_one_line_naming_what_to_check(tmp_path: Path, hf: FakeHF) -> None:
    path = config_file(tmp_path, f'api_url = "{hf.url}"\ndays = 3\ntoken = "hf_wrong"')
    result = subprocess.run(
        [sys.executable, "-m", "feedsync", "--config", str(path), "run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    failures = [line for line in result.stderr.splitlines() if line.startswith("feedsync: failed")]
    assert len(failures) == 1, result.stderr
    assert "the Hub refused the token from [source] token (HTTP 401)" in failures[0]
    assert "hf_wrong" not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert len(hf.requests) <= 3  # stopped at the refusal, not retried
    assert (tmp_path / "feeds" / "index.opml").exists()  # the feeds are published still
