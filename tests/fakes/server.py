"""What the fake services share: a quiet threading server and a handler that answers."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol


class QuietServer(ThreadingHTTPServer):
    """A threading server that does not print the clients' hang-ups (tests cause them)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class Recorded(Protocol):
    """A fake's log entry of one request; the answer's status is written into it."""

    status: int


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle and the client's
    # delayed ACK add ~40 ms to an answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str,
        record: Recorded,
        headers: dict[str, str] | None = None,
    ) -> None:
        record.status = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body) if status != 304 else 0))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)
