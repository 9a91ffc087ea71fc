"""A reverse proxy in front of an S3 server that logs every request, and can stall an upload.

feedsync's ``[publish] endpoint`` points here; each request is forwarded unchanged (method,
path, query and every header but the hop-by-hop ones, Host included, so the SigV4
signature the client made for this address still holds) and its answer relayed back.

``stall(name)``: the next PUT of an object whose key ends with ``name`` is forwarded with
only half its body; the proxy then waits until its client goes away (a test SIGKILLs it)
and drops the connection to the server, which so receives a truncated upload.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.server import QuietServer

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "expect"}
)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # without the query
    query: str
    status: int


class S3Proxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.log: list[Seen] = []
        self.stalled = threading.Event()
        self._stall: str | None = None
        self._lock = threading.Lock()
        self._server = QuietServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> S3Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def stall(self, name: str) -> None:
        with self._lock:
            self._stall = name
        self.stalled.clear()

    def take_stall(self, method: str, path: str) -> bool:
        with self._lock:
            if self._stall is not None and method == "PUT" and path.endswith(self._stall):
                self._stall = None
                return True
        return False

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request seen, in order; readiness probes excluded."""
        return [(s.method, s.path) for s in self.log]

    def clear(self) -> None:
        self.log.clear()


def _handler(proxy: S3Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.endheaders()
            if proxy.take_stall(self.command, path):
                upstream.send(body[: len(body) // 2])
                proxy.log.append(Seen(self.command, path, query, 0))
                proxy.stalled.set()
                self._wait_for_client_to_go()
                if upstream.sock is not None:
                    upstream.sock.shutdown(socket.SHUT_RDWR)
                upstream.close()
                self.close_connection = True
                return
            upstream.send(body)
            answer = upstream.getresponse()
            data = answer.read()
            upstream.close()
            proxy.log.append(Seen(self.command, path, query, answer.status))
            self.send_response_only(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            if self.command == "HEAD":
                self.send_header("Content-Length", answer.getheader("Content-Length") or "0")
            else:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD" and answer.status not in (204, 304):
                self.wfile.write(data)

        def _wait_for_client_to_go(self, longest: float = 60.0) -> None:
            connection = self.connection
            deadline = time.monotonic() + longest
            while time.monotonic() < deadline:
                readable, _, _ = select.select([connection], [], [], 0.05)
                if readable:
                    try:
                        if not connection.recv(1, socket.MSG_PEEK):
                            return
                    except OSError:
                        return

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

    return Handler
