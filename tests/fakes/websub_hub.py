"""A fake WebSub hub on 127.0.0.1 that takes publish pings and is strict about them.

The W3C WebSub recommendation (https://www.w3.org/TR/websub/) leaves how a publisher tells
its hub of new content to the hub; this fake holds pings to what the recommendation asks
of every request to a hub and to what the hubs in use take, and refuses the rest:

- ``POST`` only (else 405 with ``Allow: POST``), with a body of
  ``application/x-www-form-urlencoded`` (else 415) that parses strictly (else 400).
- ``hub.mode`` is ``publish`` (this fake has no subscribers, so ``subscribe`` is 400 too),
  and the topic is given as ``hub.url`` (PubSubHubbub 0.4) and/or ``hub.topic``: one URL,
  absolute http(s), without a fragment, the same in both when both are given; any other
  parameter is refused, as is a repeated one.
- Success is ``202 Accepted`` with no body, as for a subscription request.
- With ``discover``, the hub does what it does before distributing: it fetches the topic
  (``discover(url) -> (headers, body)``) and checks that the publisher advertises this hub
  and the topic as its self URL, in ``Link`` headers (WebSub 4) or in the feed's own links;
  a topic that does not is refused with 400.

Faults: ``refuse(status)`` answers every ping with that status, ``hang()`` never answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.server import QuietServer

FORM = "application/x-www-form-urlencoded"
Discover = Callable[[str], tuple[Mapping[str, str], bytes]]


@dataclass
class Ping:
    method: str
    content_type: str
    form: dict[str, list[str]]
    status: int = 0
    why: str = ""

    @property
    def topic(self) -> str:
        return (self.form.get("hub.url") or self.form.get("hub.topic") or [""])[0]


@dataclass
class HubState:
    pings: list[Ping] = field(default_factory=list)
    refuse: int | None = None
    hang: bool = False
    discover: Discover | None = None


class FakeHub:
    def __init__(self, discover: Discover | None = None) -> None:
        self.state = HubState(discover=discover)
        self._server = QuietServer(("127.0.0.1", 0), _handler(self.state))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hub/"

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.state.hang = False
        self._server.shutdown()
        self._server.server_close()

    @property
    def pings(self) -> list[Ping]:
        return self.state.pings

    def accepted(self) -> list[str]:
        """The topics of the pings answered 202, in order."""
        return [p.topic for p in self.state.pings if p.status == 202]

    def refuse(self, status: int) -> None:
        self.state.refuse = status

    def hang(self) -> None:
        self.state.hang = True


def _absolute(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment


def advertised(headers: Mapping[str, str], body: bytes) -> tuple[set[str], set[str]]:
    """The hub and self URLs a topic's answer advertises: Link headers, else feed links."""
    hubs, selves = set(), set()
    for part in ",".join(v for k, v in headers.items() if k.lower() == "link").split(","):
        url, _, params = part.strip().partition(";")
        rel = params.replace(" ", "").removeprefix("rel=").strip('"')
        (hubs if rel == "hub" else selves if rel == "self" else set()).add(url.strip("<> "))
    if hubs and selves:
        return hubs, selves
    import lxml.etree

    root = lxml.etree.fromstring(body)
    for link in root.iter("{http://www.w3.org/2005/Atom}link"):
        # An Atom feed's links, or an RSS channel's atom:link (items have none).
        if link.getparent() is root or link.getparent().tag == "channel":
            {"hub": hubs, "self": selves}.get(link.get("rel", ""), set()).add(link.get("href"))
    return hubs, selves


def _handler(state: HubState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, ping: Ping, status: int, why: str = "") -> None:
            ping.status, ping.why = status, why
            body = why.encode()
            self.send_response(status)
            if status == 405:
                self.send_header("Allow", "POST")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _not_post(self) -> None:
            ping = Ping(self.command, self.headers.get("Content-Type", ""), {})
            state.pings.append(ping)
            self._answer(ping, 405, "a hub takes POST")

        do_GET = do_PUT = do_DELETE = _not_post

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            ctype = self.headers.get("Content-Type", "")
            ping = Ping("POST", ctype, {})
            state.pings.append(ping)
            while state.hang:
                time.sleep(0.02)
            if ctype.split(";")[0].strip().lower() != FORM:
                return self._answer(ping, 415, f"the body must be {FORM}")
            try:
                ping.form = parse_qs(
                    raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True
                )
            except (UnicodeDecodeError, ValueError):
                return self._answer(ping, 400, "the form does not parse")
            if why := _problem(ping.form):
                return self._answer(ping, 400, why)
            if state.refuse is not None:
                return self._answer(ping, state.refuse, "refused, as told")
            if state.discover is not None:
                headers, body = state.discover(ping.topic)
                hubs, selves = advertised(headers, body)
                hub = f"http://{self.headers.get('Host')}{self.path}"
                if hub not in hubs or ping.topic not in selves:
                    return self._answer(
                        ping, 400, "the topic does not advertise this hub and itself"
                    )
            self._answer(ping, 202)

    return Handler


def _problem(form: dict[str, list[str]]) -> str:
    unknown = set(form) - {"hub.mode", "hub.url", "hub.topic"}
    if unknown:
        return f"unknown parameters: {sorted(unknown)}"
    if any(len(values) != 1 for values in form.values()):
        return "a parameter is repeated"
    if form.get("hub.mode") != ["publish"]:
        return "hub.mode must be publish"
    topics = {v[0] for k, v in form.items() if k in ("hub.url", "hub.topic")}
    if not topics:
        return "hub.url (or hub.topic) is missing"
    if len(topics) > 1:
        return "hub.url and hub.topic differ"
    (topic,) = topics
    if not _absolute(topic):
        return "the topic must be an absolute http(s) URL without a fragment"
    return ""
