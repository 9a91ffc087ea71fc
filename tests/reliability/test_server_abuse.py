"""Reliability 5: `feedsync serve` under abuse keeps its files in and stays up.

The real command runs in a subprocess on a free port, with its real config. A canary file
sits next to output_dir (and in the data directory, and behind symlinks that lead out of
output_dir); its content must never appear in any response. Requests are written byte for
byte on raw sockets, so no client library normalizes them first.

- a path traversal table: encoded, double-encoded, overlong UTF-8, unicode dots,
  backslashes, NULs, absolute-form URIs, ``;`` parameters, 64 KB URLs -> 400 or 404;
- very long heads (a 64 MB header, 100,000s of headers): refused early (431), with
  bounded server memory;
- hundreds of slow clients that never finish their headers, while a normal client still
  gets its 200 quickly; in the slow variant, more idle connections than uvicorn's
  ``limit_concurrency``, which are dropped after ``HEAD_TIMEOUT`` so service comes back;
- HEAD, unsupported methods (405 with ``Allow``), garbage request lines (400);
- and after each group: the server still answers ``GET /`` with 200 and logged no error.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from feedsync.serve.app import HEAD_TIMEOUT
from tests.memory import memory_kb
from tests.reliability.figures import record
from tests.test_server import ATOM, TRAVERSALS

CANARY = b"CANARY-5e1f0c2b9d7a"
FEEDSYNC = [sys.executable, "-m", "feedsync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Site:
    base: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    responses: int = 0

    def memory_kb(self, field: str = "VmRSS") -> int:
        """The server's resident memory now (VmRSS), or at its peak so far (VmHWM)."""
        return memory_kb(self.proc.pid, field)


def build_home(home: Path) -> Path:
    """A config, an output_dir with every kind of file, and canaries all around it."""
    feeds = home / "feeds"
    (feeds / "sub").mkdir(parents=True)
    (home / "data").mkdir()
    (home / "outside").mkdir()
    (feeds / "index.html").write_text("<!doctype html><title>feeds</title>\n")
    (feeds / "topic.atom").write_bytes(ATOM)
    (feeds / "topic.rss").write_text('<?xml version="1.0"?><rss version="2.0"></rss>\n')
    (feeds / "index.opml").write_text('<opml version="2.0"/>\n')
    (feeds / ".tmp-half").write_bytes(CANARY)  # a publish in progress
    (feeds / "sub" / "inner.html").write_text("inner\n")
    for secret in (
        home / "canary.html",
        home / "canary.atom",
        home / "outside" / "canary.html",
        home / "data" / "canary.atom",
    ):
        secret.write_bytes(CANARY + b"\n")
    os.symlink(home / "canary.html", feeds / "escape.html")
    os.symlink(home / "outside", feeds / "linked")
    config = home / "feedsync.toml"
    config.write_text(
        f'# {CANARY.decode()}\ndata_dir = "data"\noutput_dir = "feeds"\n'
        '[schedule]\ncron = "*/30 * * * *"\n',
        encoding="utf-8",
    )
    return config


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("abuse")
    config = build_home(home)
    port = free_port()
    log = home / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSYNC_")}
    env["CANARY_ENV"] = CANARY.decode()  # /proc/self/environ must not be reachable either
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [*FEEDSYNC, "--config", str(config), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(base + "/", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "feedsync serve did not start"
        time.sleep(0.05)
    yield Site(base, port, proc, log)
    proc.terminate()
    proc.wait(10)


def exchange(site: Site, data: bytes, *, timeout: float = 10) -> tuple[int | None, bytes]:
    """Send raw bytes, read until the server closes; (status or None, everything read).

    The one rule checked on every response: the canary never comes back.
    """
    with socket.create_connection(("127.0.0.1", site.port), timeout=timeout) as s:
        # The server may answer and close before reading everything: that is fine.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    answer = b"".join(chunks)
    site.responses += 1
    assert CANARY not in answer, data[:200]
    assert b"root:x:0:0" not in answer, data[:200]
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else None
    return status, answer


def get(site: Site, target: bytes | str, headers: bytes = b"") -> tuple[int | None, bytes]:
    target = target.encode("latin-1") if isinstance(target, str) else target
    head = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    return exchange(site, head + headers + b"\r\n")


def still_up(site: Site) -> None:
    """The server answers normally and has logged no error (a 500 or a traceback)."""
    assert site.proc.poll() is None, site.log.read_text()
    r = httpx.get(site.base + "/", timeout=5)
    assert r.status_code == 200
    log = site.log.read_text(errors="replace")
    assert "Traceback" not in log and "Exception in ASGI" not in log, log


# -- path traversal --------------------------------------------------------------------------------

LONG = 64 * 1024
EXTRA_TRAVERSALS = [
    # double-encoded
    "/%252e%252e/canary.html",
    "/%252e%252e%252fcanary.html",
    "/..%252fcanary.html",
    "/%25%32%65%25%32%65/canary.html",
    # overlong UTF-8 for "." and "/"
    "/%c0%ae%c0%ae/canary.html",
    "/%c0%ae%c0%ae%c0%afcanary.html",
    "/%e0%80%ae%e0%80%ae/canary.html",
    "/%c0%2e%c0%2e/canary.html",
    "/..%c0%afcanary.html",
    "/..%c1%9ccanary.html",
    # unicode dots: two dot leader, fullwidth full stop, one dot leader, as UTF-8 escapes
    "/%e2%80%a5/canary.html",
    "/%ef%bc%8e%ef%bc%8e/canary.html",
    "/%e2%80%a4%e2%80%a4/canary.html",
    "/%ef%bc%8e%ef%bc%8e%ef%bc%8fcanary.html",
    # backslashes
    "/..\\canary.html",
    "/sub\\..\\..\\canary.html",
    "/%5c..%5ccanary.html",
    "/..%5c..%5ccanary.html",
    "/\\..\\canary.html",
    # NULs, encoded
    "/%00",
    "/canary.html%00",
    "/..%00/canary.html",
    "/index.html%00",
    "/escape.html%00.atom",
    # absolute-form and scheme-relative
    "http://x/../canary.html",
    "http://127.0.0.1/%2e%2e/canary.html",
    "https://x/../../canary.html",
    "http://x/..%2fcanary.html",
    "file:///etc/passwd",
    "//../canary.html",
    "///canary.html",
    # ";" parameters (Tomcat-style path parameters)
    "/..;/canary.html",
    "/index.html;/../../canary.html",
    "/;/../canary.html",
    "/sub;x=../../canary.html",
    "/..;x=1/canary.html",
    # symlinks out of output_dir, the data and config files, proc
    "/escape.html",
    "/linked/canary.html",
    "/linked/../canary.html",
    "/../data/canary.atom",
    "/%2e%2e/data/feedsync.sqlite3",
    "/../feedsync.toml",
    "/../canary.atom",
    "/.tmp-half",
    "/%2etmp-half",
    "/../../../../proc/self/environ",
    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/proc/self/cmdline",
    # case and odd targets
    "/CANARY.HTML",
    "/../CANARY.html",
    "*",
    # very long URLs (64 KB)
    "/" + "../" * (LONG // 3) + "canary.html",
    "/" + "%2e%2e/" * (LONG // 7) + "canary.html",
    "/" + "a" * LONG + ".atom",
    "/" + "sub/" * (LONG // 4) + "inner.html",
]
# The query string is not part of the path: these serve the index, which is fine.
HARMLESS = ["/index.html?file=../canary.html", "/?../../canary.html", "/topic.atom?%00"]
# Raw bytes no valid request line may hold: the parser refuses them.
RAW_TARGETS = [b"/\x00../canary.html", "/\u2025/canary.html".encode(), b"/\xc0\xae\xc0\xae/x"]


def test_path_traversal_table(site: Site) -> None:
    problems = []
    table = [*TRAVERSALS, *EXTRA_TRAVERSALS]
    for target in table:
        status, _ = get(site, target)
        if status not in (400, 404, 414, 431):
            problems.append(f"{target[:80]!r}: {status}")
    for raw in RAW_TARGETS:
        status, _ = get(site, raw)
        if status != 400:
            problems.append(f"{raw!r}: {status}")
    for target in HARMLESS:
        status, _ = get(site, target)
        if status not in (200, 400, 404):
            problems.append(f"{target!r}: {status}")
    still_up(site)
    tried = len(table) + len(RAW_TARGETS) + len(HARMLESS)
    record("server: path traversal", f"{tried} requests, {len(problems)} served a wrong status")
    record("server: files outside output_dir served", f"0 of {site.responses} responses")
    assert not problems, problems


# -- long heads ------------------------------------------------------------------------------------


def flood(site: Site, head: bytes, filler: Iterator[bytes], total: int) -> tuple[int | None, int]:
    """Send ``head`` then ``filler`` chunks up to ``total`` bytes or until the server stops
    reading; (status, bytes sent)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
        try:
            s.sendall(head)
            while sent < total:
                chunk = next(filler)
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    site.responses += 1
    assert CANARY not in answer
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else None
    return status, sent


def _repeat(chunk: bytes) -> Iterator[bytes]:
    while True:
        yield chunk


def _headers() -> Iterator[bytes]:
    n = 0
    while True:
        yield b"".join(b"X-H%d: %s\r\n" % (n + i, b"v" * 40) for i in range(1000))
        n += 1000


def test_long_heads_are_refused_with_bounded_memory(site: Site) -> None:
    before = site.memory_kb()
    start = b"GET / HTTP/1.1\r\nHost: x\r\n"
    one_header = flood(site, start + b"X-Big: ", _repeat(b"a" * 65536), 64 << 20)
    many_headers = flood(site, start, _headers(), 64 << 20)
    status, _ = get(site, "/", b"X-Fine: " + b"a" * 4000 + b"\r\n")  # a big but sane header
    # The peak, not what is left: the buffered head is freed when the connection ends.
    growth_mb = max(0, site.memory_kb("VmHWM") - before) / 1024
    record(
        "server: 64 MB request heads",
        f"one header -> {one_header[0]} after {one_header[1] >> 10} KB sent, "
        f"100,000s of headers -> {many_headers[0]} after {many_headers[1] >> 10} KB sent, "
        f"server peak RSS +{growth_mb:.1f} MB",
    )
    assert status == 200
    for refused, sent in (one_header, many_headers):
        assert refused in (400, 413, 431, None)
        assert sent < 8 << 20, f"the server read {sent >> 20} MB of one request head"
    assert growth_mb < 32
    still_up(site)


# -- slow clients ----------------------------------------------------------------------------------


def slow_clients(site: Site, count: int, seconds: float) -> dict[str, float]:
    """``count`` clients: half trickle their head a byte at a time, half never send a byte.

    Meanwhile a normal client keeps fetching a feed; its latencies are the figure.
    """
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", site.port), timeout=5)
        s.setblocking(False)
        sockets.append(s)
    head = b"GET /topic.atom HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 10000
    stop = threading.Event()

    def trickle() -> None:
        position = 0
        while not stop.is_set():
            for s in sockets[: count // 2]:
                with contextlib.suppress(OSError):  # BlockingIOError: the buffer is full
                    s.send(head[position % len(head) : position % len(head) + 1])
            position += 1
            time.sleep(0.02)

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    latencies = []
    try:
        deadline = time.monotonic() + seconds
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                r = client.get(site.base + "/topic.atom")
                latencies.append(time.perf_counter() - start)
                assert r.status_code == 200 and r.content == ATOM
                time.sleep(0.05)
    finally:
        stop.set()
        trickler.join(5)
        for s in sockets:
            s.close()
    return {
        "slow_clients": count,
        "requests": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


def check_slow(site: Site, figures: dict[str, float]) -> None:
    record("server: slow clients", figures)
    assert figures["max_ms"] < 1000
    still_up(site)


def test_slow_clients_do_not_starve_a_normal_client(site: Site) -> None:
    check_slow(site, slow_clients(site, 200, seconds=2.0))


@pytest.mark.slow
def test_many_slow_clients(site: Site) -> None:
    check_slow(site, slow_clients(site, 900, seconds=30.0))


@pytest.mark.slow
def test_connections_that_never_finish_are_dropped(site: Site) -> None:
    """More idle connections than uvicorn's limit_concurrency lock everyone else out
    (503), but only until HEAD_TIMEOUT: then they are closed and service comes back."""
    idle = [socket.create_connection(("127.0.0.1", site.port), timeout=5) for _ in range(1100)]
    slow = [socket.create_connection(("127.0.0.1", site.port), timeout=5) for _ in range(20)]
    for s in slow:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    time.sleep(0.5)
    during = httpx.get(site.base + "/topic.atom", timeout=5).status_code
    time.sleep(HEAD_TIMEOUT + 2)
    after = httpx.get(site.base + "/topic.atom", timeout=5).status_code
    closed = sum(s.recv(100) == b"" for s in idle)
    timed_out = sum(s.recv(100).startswith(b"HTTP/1.1 408") for s in slow)
    for s in idle + slow:
        s.close()
    record(
        "server: 1,100 idle and 20 slow connections",
        f"a normal GET got {during} while they were open, {after} once they timed out; "
        f"{closed} idle ones closed, {timed_out} slow ones answered 408",
    )
    assert after == 200 and closed == len(idle) and timed_out == len(slow)
    still_up(site)


# -- methods and garbage ---------------------------------------------------------------------------


def test_head_and_unsupported_methods(site: Site) -> None:
    def head(target: str) -> tuple[int | None, bytes, bytes]:
        request = f"HEAD {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        status, answer = exchange(site, request.encode())
        fields, _, body = answer.partition(b"\r\n\r\n")
        return status, fields.lower(), body

    status, fields, body = head("/topic.atom")
    assert status == 200 and body == b""
    assert f"content-length: {len(ATOM)}".encode() in fields
    assert head("/nope.atom")[::2] == (404, b"")
    assert head("/healthz")[::2] == (503, b"")  # no run yet
    problems = []
    methods = ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "MKCOL", "LOCK"]
    for method in methods:
        for target in ("/topic.atom", "/healthz", "/nope.atom", "/../canary.html"):
            status, answer = exchange(
                site,
                f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                "Connection: close\r\n\r\nhello".encode(),
            )
            head = answer.partition(b"\r\n\r\n")[0].lower()
            allow = next((h for h in head.split(b"\r\n") if h.startswith(b"allow:")), b"")
            if status != 405 or b"get" not in allow or b"head" not in allow:
                problems.append(f"{method} {target}: {status} {allow!r}")
    record("server: unsupported methods", f"{len(methods) * 4} requests, {len(problems)} not 405")
    assert not problems, problems
    still_up(site)


GARBAGE = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"\x00\x01\x02\x03\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),  # a TLS ClientHello
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # the HTTP/2 preface
    b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"\r\n\r\n\r\n\r\n\r\n\r\nGET\r\n\r\n",
]


def test_garbage_request_lines(site: Site) -> None:
    problems = []
    for data in GARBAGE:
        status, _ = exchange(site, data, timeout=5)
        if status != 400:
            problems.append(f"{data[:40]!r}: {status}")
    record("server: garbage requests", f"{len(GARBAGE)} sent, {len(problems)} not answered 400")
    assert not problems, problems
    still_up(site)
