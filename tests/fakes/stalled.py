"""Servers on 127.0.0.1 that never finish an answer: one that hangs, one that trickles."""

from __future__ import annotations

import socket
import threading
from typing import Self


class _Listener:
    """Accepts connections on 127.0.0.1 and hands each to ``_serve``."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._serve(connection)

    def _serve(self, connection: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StalledServer(_Listener):
    """Accepts connections and never answers: a server that hangs."""

    def __init__(self) -> None:
        self.accepted = threading.Event()
        self._held: list[socket.socket] = []
        super().__init__()

    def _serve(self, connection: socket.socket) -> None:
        self._held.append(connection)
        self.accepted.set()

    def close(self) -> None:
        super().close()
        for connection in self._held:
            connection.close()


class TricklingServer(_Listener):
    """Answers 200 with a long body, and sends it one byte every ``interval`` seconds: each
    read is quick, the answer never ends (a stuck proxy, a sick server). With ``headers``,
    the bytes are those of a header that never ends."""

    def __init__(self, interval: float = 0.2, *, headers: bool = False) -> None:
        self._interval = interval
        self._headers = headers
        self.requests = 0
        super().__init__()

    def _serve(self, connection: socket.socket) -> None:
        threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                self.requests += 1
                if self._headers:
                    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Padding: ")
                else:
                    connection.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 1000000\r\n\r\n["
                    )
                while not self._closed.wait(self._interval):
                    connection.sendall(b"x" if self._headers else b" ")
            except OSError:
                pass
