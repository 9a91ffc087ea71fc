"""The fetchers' daemon-thread pool: results, errors, cancelling, and never holding up exit."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from feedsync.net import DaemonPool


def test_results_and_errors_come_back_through_futures() -> None:
    pool = DaemonPool(2)
    try:
        assert [pool.submit(lambda n=n: n * n).result(5) for n in range(5)] == [0, 1, 4, 9, 16]
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result(5)
    finally:
        pool.close()


def test_close_cancels_what_has_not_started() -> None:
    pool = DaemonPool(1)
    gate, started = threading.Event(), threading.Event()

    def hold() -> bool:
        started.set()
        return gate.wait(5)

    running = pool.submit(hold)
    assert started.wait(5)
    queued = [pool.submit(lambda: "ran") for _ in range(3)]
    pool.close()
    gate.set()
    assert running.result(5) is True
    assert all(f.cancelled() for f in queued)


def test_a_blocked_call_does_not_hold_up_the_end_of_the_process() -> None:
    code = (
        "import time\n"
        "from feedsync.net import DaemonPool\n"
        "pool = DaemonPool(2)\n"
        "pool.submit(lambda: time.sleep(60))\n"
        "time.sleep(0.2)\n"
        "pool.close()\n"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    assert time.monotonic() - started < 10


def test_close_with_wait_leaves_no_thread_behind() -> None:
    before = threading.active_count()
    pool = DaemonPool(3)
    assert [pool.submit(lambda n=n: n).result(5) for n in range(6)] == list(range(6))
    pool.close(wait=True)
    assert threading.active_count() == before


def test_within_gives_the_result_or_the_exception_of_work_over_in_time() -> None:
    from feedsync.net import within

    assert within(5, lambda: 42, "quick") == 42
    with pytest.raises(ValueError, match="bad"):
        within(5, lambda: int("bad"), "failing")


def test_within_abandons_late_work_and_says_so() -> None:
    from feedsync.net import Late, within

    release = threading.Event()
    with pytest.raises(Late, match=r"not over after 0\.2 s"):
        within(0.2, release.wait, "late")
    late = [t for t in threading.enumerate() if t.name == "late"]
    assert late and all(t.daemon for t in late)  # left to end on its own, never joined
    release.set()
    for thread in late:
        thread.join(5)
