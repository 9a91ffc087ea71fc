"""Tell the WebSub hub which feeds changed, so readers subscribed there get them in seconds.

The feeds advertise the hub (``<link rel="hub">``, render/feeds.py) and ``feedsync serve``
sends the matching ``Link`` headers; a reader that honours WebSub subscribes at the hub,
and the hub fetches a feed again when told it changed. The W3C recommendation leaves how a
publisher tells its hub to the hub; the hubs in use take a form POST with ``hub.mode =
publish`` and the feed's URL, as ``hub.url`` (PubSubHubbub 0.4: Google's and Superfeedr's
hubs) or ``hub.topic`` (flask-websub and others). Both are sent, with the same URL.

Rules, in order:
1. Only after a publish that wrote feeds, one POST per written feed (an RSS and an Atom
   file are two topics), in the order they were written; the index files are no topics.
2. A 2xx answer is success (hubs answer 202 or 204).
3. The first failure (no connection, no answer within ``timeout``, another status) stops
   the pings of this run and becomes one report line: never a failed run, since readers
   still get the change at their next poll. A missed ping is not sent again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from feedsync.publish.headers import FEED_SUFFIXES

log = logging.getLogger(__name__)

TIMEOUT = 5.0  # seconds per ping: a hub is quick, or it is down


@dataclass(frozen=True, slots=True)
class WebSubReport:
    """The pings of one run: the feeds announced, and the failure that stopped them."""

    hub: str
    announced: tuple[str, ...] = ()
    missed: tuple[str, ...] = ()
    failure: str | None = None

    def line(self) -> str:
        if self.failure is None:
            return f"websub: told {self.hub} of {len(self.announced)} changed feed(s)"
        return (
            f"websub: {self.failure}: {len(self.missed)} changed feed(s) not announced "
            "(readers get them at their next poll)"
        )


def topics(base_url: str, written: Sequence[str]) -> list[str]:
    """The public URLs of the feeds among ``written`` file names: each feed's rel=self."""
    base = str(base_url).rstrip("/")
    return [f"{base}/{name}" for name in written if name.endswith(FEED_SUFFIXES)]


def announce(hub: str, feeds: Sequence[str], *, timeout: float = TIMEOUT) -> WebSubReport:
    """Rules 1-3: one ``hub.mode=publish`` POST per feed URL, until one fails."""
    import httpx

    announced: list[str] = []
    start = time.monotonic()
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for n, feed in enumerate(feeds):
            form = {"hub.mode": "publish", "hub.url": feed, "hub.topic": feed}
            try:
                answer = client.post(hub, data=form)
            except httpx.TimeoutException:
                why = f"{_host(hub)} did not answer within {timeout:g} s"
            except httpx.HTTPError as e:
                why = f"cannot reach {_host(hub)} ({type(e).__name__})"
            else:
                if answer.is_success:
                    announced.append(feed)
                    continue
                why = f"{_host(hub)} answered HTTP {answer.status_code} to a ping for {feed}"
            return WebSubReport(hub, tuple(announced), tuple(feeds[n:]), why)
    log.info("websub: %d ping(s) in %.3f s", len(announced), time.monotonic() - start)
    return WebSubReport(hub, tuple(announced))


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"the hub {parts.scheme}://{parts.netloc}"
