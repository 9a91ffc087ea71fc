"""The built-in server over real HTTP on 127.0.0.1: types, validators, gzip, health, traversal."""

from __future__ import annotations

import gzip
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import feedparser
import httpx
import pytest
import uvicorn

from feedsync.config import Config, load_config
from feedsync.serve.app import create_app
from feedsync.store import Store
from tests.commands import start_feedsync

ATOM = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:x</id><title>T</title><updated>2026-03-06T00:00:00Z</updated>'
    + b"<!-- pad -->" * 200
    + b"</feed>\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    tmp_path = tmp_path_factory.mktemp("server")
    path = tmp_path / "feedsync.toml"
    path.write_text('data_dir = "data"\noutput_dir = "out"\n[schedule]\ncron = "*/30 * * * *"\n')
    config = load_config(path, {})
    out = config.output_dir
    out.mkdir()
    (out / "index.html").write_text("<!doctype html><title>x</title>")
    (out / "topic.atom").write_bytes(ATOM)
    (out / "topic.rss").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'
    )
    (out / "index.opml").write_text('<opml version="2.0"/>')
    (out / ".tmp-half").write_text("partial")
    (out / "sub").mkdir()
    (out / "sub" / "inner.html").write_text("inner")
    (tmp_path / "secret.html").write_text("SECRET")
    os.symlink(tmp_path / "secret.html", out / "escape.html")
    return config


@pytest.fixture(scope="module")
def server(config: Config) -> Iterator[str]:
    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(5)


def raw(base: str, request_line: str, headers: str = "") -> int:
    """Send a request byte for byte (no client normalization) and return the status."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            f"{request_line}\r\nHost: x\r\nConnection: close\r\n{headers}\r\n".encode("latin-1")
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.mark.parametrize(
    ("name", "ctype"),
    [
        ("topic.rss", "application/rss+xml; charset=utf-8"),
        ("topic.atom", "application/atom+xml; charset=utf-8"),
        ("index.opml", "text/x-opml; charset=utf-8"),
        ("index.html", "text/html; charset=utf-8"),
    ],
)
def test_content_types(server: str, name: str, ctype: str) -> None:
    r = httpx.get(f"{server}/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"] == ctype
    assert r.headers["cache-control"] == "public, max-age=1800"
    assert r.headers["vary"] == "Accept-Encoding"


def test_root_is_the_index(server: str) -> None:
    r = httpx.get(server + "/")
    assert r.status_code == 200 and r.text.startswith("<!doctype html>")


def test_etag_and_last_modified_give_304(server: str, config: Config) -> None:
    first = httpx.get(f"{server}/topic.atom", headers={"Accept-Encoding": "identity"})
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = httpx.get(f"{server}/topic.atom", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert (
        httpx.get(f"{server}/topic.atom", headers={"If-Modified-Since": modified}).status_code
        == 304
    )
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3).
    r = httpx.get(
        f"{server}/topic.atom", headers={"If-None-Match": '"other"', "If-Modified-Since": modified}
    )
    assert r.status_code == 200
    # Rewriting identical bytes keeps the ETag (it is a hash of the content).
    path = config.output_dir / "topic.atom"
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert httpx.get(f"{server}/topic.atom", headers={"If-None-Match": etag}).status_code == 304
    # New bytes: a new ETag.
    path.write_bytes(ATOM.replace(b"<title>T</title>", b"<title>U</title>"))
    assert httpx.get(f"{server}/topic.atom", headers={"If-None-Match": etag}).status_code == 200
    path.write_bytes(ATOM)


def test_feedparser_revalidates_with_304(server: str) -> None:
    first = feedparser.parse(f"{server}/topic.atom")
    assert not first.bozo and first.status == 200
    second = feedparser.parse(f"{server}/topic.atom", etag=first.etag, modified=first.modified)
    assert second.status == 304


def test_gzip_when_asked(server: str) -> None:
    with httpx.Client() as client:
        r = client.get(f"{server}/topic.atom", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["etag"].endswith('-gz"')
    assert r.content == ATOM  # httpx decodes
    assert int(r.headers["content-length"]) < len(ATOM) / 3
    plain = httpx.get(f"{server}/topic.atom", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert gzip.decompress(gzip.compress(plain.content)) == ATOM


def test_head(server: str) -> None:
    r = httpx.head(f"{server}/topic.atom", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["content-length"]) == len(ATOM)
    assert httpx.head(f"{server}/missing.atom").status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_unsupported_methods(server: str, method: str) -> None:
    r = httpx.request(method, f"{server}/topic.atom")
    assert r.status_code == 405
    assert "GET" in r.headers["allow"]


TRAVERSALS = [
    "/../secret.html",
    "/..%2fsecret.html",
    "/%2e%2e/secret.html",
    "/%2e%2e%2fsecret.html",
    "/..%5csecret.html",
    "/sub/../../secret.html",
    "/sub/%2e%2e/%2e%2e/secret.html",
    "//etc/passwd",
    "/%2fetc%2fpasswd",
    "/escape.html",  # a symlink out of output_dir
    "/.tmp-half",  # dotfiles: temporary files of a publish in progress
    "/sub/",  # no directory listings
    "/sub",
    "/%00index.html",
    "/index.html%00.atom",
    "/../../../../../../etc/passwd",
    "/..;/secret.html",
    "/C:%5cWindows%5cwin.ini",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_nothing_outside_output_dir_is_reachable(server: str, path: str) -> None:
    status = raw(server, f"GET {path} HTTP/1.1")
    assert status in (400, 404), path


def test_absolute_form_and_long_urls(server: str) -> None:
    assert raw(server, "GET http://x/../secret.html HTTP/1.1") in (400, 404)
    assert raw(server, "GET /" + "a" * 20000 + ".atom HTTP/1.1") in (400, 404, 414, 431)
    assert httpx.get(f"{server}/topic.atom").status_code == 200  # still up


def record_run(config: Config, result: str, finished: datetime) -> None:
    with Store(config.store_path) as store:
        run_id = store.start_run(finished - timedelta(seconds=3))
        store.finish_run(
            run_id, finished, result, {}, None if result == "ok" else "source: HTTP 500"
        )


def test_healthz_states(server: str, config: Config) -> None:
    r = httpx.get(f"{server}/healthz")
    assert r.status_code == 503 and r.json()["reason"] == "no run yet"
    record_run(config, "ok", datetime.now(UTC))
    r = httpx.get(f"{server}/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["last_run"]["result"] == "ok"
    record_run(config, "failed", datetime.now(UTC))
    r = httpx.get(f"{server}/healthz")
    assert r.status_code == 503 and "HTTP 500" in r.json()["reason"]
    record_run(config, "ok", datetime.now(UTC) - timedelta(minutes=61))  # two periods: 60 min
    assert httpx.get(f"{server}/healthz").status_code == 503


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_feedsync_serve_stops_cleanly_on_sigterm_and_ctrl_c(
    config: Config, signal_name: str
) -> None:
    """The server drains and the command exits 0, as the daemon does: not killed by the
    signal uvicorn raises again after its shutdown, nor reported as an interruption."""
    import signal

    port = free_port()
    proc = start_feedsync("--config", str(config.config_path), "serve", "--port", str(port))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/topic.atom").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
        proc.send_signal(getattr(signal, signal_name))
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "terminated" not in stderr
