"""The Hub's rate limits: reading them off each answer, and pacing every fetch worker by them.

The Hub counts requests per client in fixed windows (5 minutes; 500 API calls and 100 page
views anonymously) and says where a client stands on every answer it chooses to, in the
IETF draft's headers (draft-ietf-httpapi-ratelimit-headers, version 9)::

    RateLimit: "api";r=<remaining>;t=<seconds until the window resets>
    RateLimit-Policy: "fixed window";"api";q=<quota>;w=<window in seconds>

Over quota it answers 429 with those headers and no Retry-After. Retrying on a backoff
schedule only burns the remaining attempts inside the same window, so instead:

1. Each request belongs to a bucket: ``/api/...`` to "api", everything else (the papers
   pages) to "pages", as the Hub counts them.
2. A request is admitted while its bucket has more requests left than are in flight;
   otherwise it waits until the bucket's window resets. Requests counted twice (answered
   but not yet read) only make the pacer stop a little early: it never overruns.
3. A 429 says the window is spent: the bucket waits ``t`` seconds (``Retry-After``, when a
   server sends one, wins) and the request is sent again.
4. The first worker to wait for a window announces it; the others wait silently.

The pacer is shared by every worker of a run and holds no clock of its own: it is given
one, and it never sleeps (the client does, where a closed run can wake it).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

# A new answer's reset time within this of the known one belongs to the same window: the
# headers give whole seconds, and answers arrive a little apart.
_SAME_WINDOW = 1.5
# Added to every reset the headers state: ``t`` is in whole seconds, and a request that
# arrives before the window has really reset costs a 429.
MARGIN = 0.25
_PARAM = re.compile(r"^\s*([a-z][a-z0-9_.*-]*)\s*=\s*(\S+?)\s*$")


@dataclass(frozen=True, slots=True)
class Limit:
    """Where one bucket stands, as one answer told it."""

    bucket: str
    remaining: int | None  # r
    reset: float | None  # t: seconds until the window resets


@dataclass(frozen=True, slots=True)
class Policy:
    bucket: str
    quota: int  # q
    window: float  # w, seconds

    def __str__(self) -> str:
        return f"{self.quota} per {self.window:g} s"


def bucket_of(url: str) -> str:
    """The Hub's bucket for a request: its API, or its web pages."""
    return "api" if urlsplit(url).path.startswith("/api/") else "pages"


def parse_limits(value: str | None) -> list[Limit]:
    """The members of a ``RateLimit`` field; malformed ones are left out."""
    limits = []
    for name, params in _members(value):
        remaining = _number(params.get("r"))
        reset = _number(params.get("t"))
        if remaining is not None or reset is not None:
            limits.append(Limit(name, None if remaining is None else int(remaining), reset))
    return limits


def parse_policies(value: str | None) -> list[Policy]:
    """The members of a ``RateLimit-Policy`` field that state a quota and a window."""
    policies = []
    for name, params in _members(value):
        quota, window = _number(params.get("q")), _number(params.get("w"))
        if quota is not None and window is not None and window > 0:
            policies.append(Policy(name, int(quota), window))
    return policies


def _members(value: str | None) -> list[tuple[str, dict[str, str]]]:
    """(name, parameters) per comma-separated member. The name is the member's last quoted
    string: the Hub writes the policy's kind first (``"fixed window";"api";q=...``)."""
    members = []
    for member in (value or "").split(","):
        names, params = [], {}
        for part in member.split(";"):
            part = part.strip()
            if len(part) >= 2 and part[0] == part[-1] == '"':
                names.append(part[1:-1])
            elif match := _PARAM.match(part):
                params[match[1]] = match[2]
        if names:
            members.append((names[-1], params))
    return members


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


@dataclass(frozen=True, slots=True)
class Wait:
    """What ``admit`` asks of a request it cannot let through yet."""

    bucket: str
    seconds: float
    reset_at: float  # on the pacer's clock
    policy: Policy | None
    announce: bool  # the first wait for this window: say so

    def __str__(self) -> str:
        quota = f" ({self.policy})" if self.policy else ""
        return f"waiting {max(1, round(self.seconds))} s for the Hub's {self.bucket} quota{quota}"


class _Bucket:
    __slots__ = ("announced", "in_flight", "policy", "remaining", "reset_at")

    def __init__(self) -> None:
        self.remaining: int | None = None  # unknown until an answer says
        self.reset_at: float | None = None
        self.in_flight = 0
        self.policy: Policy | None = None
        self.announced: float | None = None  # the reset_at of the last window announced


class Pacer:
    """One run's view of the Hub's quotas, shared by its fetch workers (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def admit(self, bucket: str) -> Wait | None:
        """None when a request of ``bucket`` may go now (it is counted in flight until
        ``settle``); else how long to wait first."""
        with self._lock:
            state = self._bucket(bucket)
            now = self._clock()
            if state.reset_at is not None and now >= state.reset_at:
                state.remaining, state.reset_at = None, None
            spent = state.remaining is not None and state.remaining - state.in_flight <= 0
            if not spent or state.reset_at is None:
                state.in_flight += 1
                return None
            announce = state.announced != state.reset_at
            state.announced = state.reset_at
            return Wait(bucket, state.reset_at - now, state.reset_at, state.policy, announce)

    def waited(self, wait: Wait) -> None:
        """The caller slept through ``wait``: that window is over, whatever the clock says
        (a test's sleep takes no time)."""
        with self._lock:
            state = self._bucket(wait.bucket)
            if state.reset_at == wait.reset_at:
                state.remaining, state.reset_at = None, None

    def settle(
        self,
        bucket: str,
        limits: list[Limit],
        policies: list[Policy],
        *,
        refused_for: float | None = None,
    ) -> None:
        """An admitted request of ``bucket`` is over (answered or not). ``refused_for``:
        the server refused it for its quota and asks to wait that long."""
        with self._lock:
            now = self._clock()
            self._bucket(bucket).in_flight -= 1
            for policy in policies:
                self._bucket(policy.bucket).policy = policy
            for limit in limits:
                self._learn(self._bucket(limit.bucket), limit, now)
            if refused_for is not None:
                state = self._bucket(bucket)
                state.remaining = 0
                state.reset_at = now + refused_for + MARGIN

    def _learn(self, state: _Bucket, limit: Limit, now: float) -> None:
        if limit.reset is None or limit.remaining is None:
            return  # a count without its reset time (or the reverse) cannot pace anything
        reset_at = now + limit.reset + MARGIN
        if state.reset_at is None or reset_at > state.reset_at + _SAME_WINDOW:
            state.reset_at = reset_at  # a new window
            state.remaining = limit.remaining
        elif reset_at >= state.reset_at - _SAME_WINDOW:
            # The same window: answers can arrive out of order, the lowest count is news.
            known = state.remaining
            state.remaining = limit.remaining if known is None else min(known, limit.remaining)
        # An answer from a window already over says nothing about this one.

    def _bucket(self, name: str) -> _Bucket:
        state = self._buckets.get(name)
        if state is None:
            state = self._buckets[name] = _Bucket()
        return state
