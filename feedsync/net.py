"""What the network code shares (the digest's fetcher and the Zotero client): daemon
threads for work that may block, one call with a time limit, and how long a server asks us
to wait (Retry-After and Backoff header values).

``concurrent.futures.ThreadPoolExecutor`` joins its threads when the interpreter exits, so
one request stalled on a hung server (each attempt may take the whole timeout, and there
are retries) would hold up Ctrl-C, SIGTERM and the daemon's stop for minutes. These threads
are daemon threads: whoever owns the pool stops waiting for them when it has to, and the
process can end while they are still blocked. Work given to them must therefore never
write anything that outlives the process (the fetchers only fetch and parse).
"""

from __future__ import annotations

import email.utils
import math
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[Future[Any], Callable[[], Any]]


class DaemonPool:
    """``submit`` runs a call on one of ``workers`` daemon threads; ``close`` never waits."""

    def __init__(self, workers: int, name: str = "worker") -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{number}", daemon=True)
            for number in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, call: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((future, call))
        return future

    def close(self, *, wait: bool = False) -> None:
        """Cancel what has not started; threads end once their current call returns.

        ``wait`` joins them, for when they are known to be idle (all work collected):
        then no thread of this pool outlives the call.
        """
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[0].cancel()
        for _ in self._threads:
            self._jobs.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, call = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = call()
            except BaseException as e:  # handed to whoever waits on the future
                future.set_exception(e)
            else:
                future.set_result(result)


class Late(TimeoutError):
    """Raised by ``within`` when the work is not over in time (not by the work itself)."""


def within(seconds: float, work: Callable[[], T], name: str) -> T:
    """``work()``'s result, or its exception, if it is over within ``seconds``; else
    ``Late``.

    The work runs on a daemon thread of its own, which is abandoned when late: it ends when
    its blocking call does (for a request: when the answer ends, or when its client is
    closed under it). For calls that only time each step, never the whole.
    """
    outcome: list[T | BaseException] = []
    over = threading.Event()

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as e:  # handed to the caller, whatever it is
            outcome.append(e)
        finally:
            over.set()

    threading.Thread(target=run, name=name, daemon=True).start()
    if not over.wait(seconds):
        raise Late(f"not over after {seconds:g} s")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def wait_seconds(value: str | None) -> float | None:
    """Seconds from a header value: a (decimal) number or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        return number if math.isfinite(number) and number >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
