"""`feedsync daemon`: the run pass on a schedule (APScheduler 3), optionally with the server.

Rules:
- One daemon per data_dir: an exclusive, non-blocking lock on ``daemon.lock`` that names
  its holder. The kernel drops it when the process dies, SIGKILL included.
- The pass runs once at start-up, then on the cron schedule; ``coalesce``, one instance and
  a misfire grace time make a slow or late pass skip, never pile up.
- A pass that raises is logged and recorded; the next scheduled pass still happens.
- SIGTERM / SIGINT: no new pass starts; a pass in progress stops fetching at the next
  unit and publishes what is stored (every write is atomic or transactional, so even a
  SIGKILL after the grace period leaves consistent files); exit code 0.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from feedsync.config import Config, cron
from feedsync.errors import FeedsyncError
from feedsync.store.locks import daemon_lock

log = logging.getLogger(__name__)


class Daemon:
    """The scheduler and its bookkeeping; ``start`` returns at once, ``stop`` waits."""

    def __init__(
        self,
        config: Config,
        *,
        interval: float | None = None,
        max_runs: int | None = None,
        on_run: Callable[[Any], None] | None = None,
    ) -> None:
        self.config = config
        self.interval = interval
        self.max_runs = max_runs
        self.runs = 0
        self.stopping = threading.Event()
        self.finished = threading.Event()  # set when max_runs is reached
        self._on_run = on_run
        self._scheduler: Any = None

    def start(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        tz = ZoneInfo(self.config.schedule.timezone)
        period = timedelta(seconds=self.interval) if self.interval else self.config.schedule.period
        trigger: Any
        if self.interval:
            trigger = IntervalTrigger(seconds=self.interval, timezone=tz)
        else:
            fields = cron.parse(self.config.schedule.cron).trigger_fields()
            trigger = CronTrigger(timezone=tz, **fields)
        self._scheduler = BackgroundScheduler(timezone=tz)
        self._scheduler.add_job(
            self._run_once,
            trigger,
            id="run",
            name="feedsync run",
            coalesce=True,
            max_instances=1,
            # A pass may start late by up to half a period; later than that it is skipped
            # and the next one is waited for.
            misfire_grace_time=max(1, int(period.total_seconds() / 2)),
            next_run_time=datetime.now(tz),
        )
        self._scheduler.start()
        log.info(
            "daemon started: schedule %s (%s)",
            f"every {self.interval} s" if self.interval else self.config.schedule.cron,
            self.config.schedule.timezone,
        )

    def stop(self) -> None:
        """Stop scheduling and wait for a pass in progress (which stops at a safe point)."""
        self.stopping.set()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        log.info("daemon stopped after %d run(s)", self.runs)

    def _run_once(self) -> None:
        if self.stopping.is_set() or self.finished.is_set():
            return
        from feedsync.pipeline import run

        start = time.perf_counter()
        try:
            report = run(self.config, stop=self.stopping.is_set)
        except FeedsyncError as e:
            log.error("run failed: %s", e)
        except Exception:
            # A bug must not kill the daemon: log it with its traceback, go on.
            log.exception("run crashed")
        else:
            log.info(
                "run %s in %.3f s: %s",
                "ok" if report.ok else "failed",
                time.perf_counter() - start,
                "; ".join(report.failures) or "no failures",
            )
            for warning in report.warnings:
                log.warning("%s", warning)
            if self._on_run:
                self._on_run(report)
        finally:
            _release_memory()
        self.runs += 1
        if self.max_runs is not None and self.runs >= self.max_runs:
            self.finished.set()


def _release_memory() -> None:
    """Give what a pass freed back to the system before the daemon sleeps for an hour.

    A pass with new papers briefly holds whole feeds in memory. glibc keeps freed heap
    pages for reuse, so without a trim the daemon's resident size creeps up with the
    largest pass seen so far instead of following what it really holds.
    """
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        pass


def run_daemon(
    config: Config,
    *,
    serve: bool = False,
    host: str | None = None,
    port: int | None = None,
    interval: float | None = None,
    max_runs: int | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or ``max_runs`` passes); raises LockError if not alone."""
    with daemon_lock(config.data_dir):
        daemon = Daemon(config, interval=interval, max_runs=max_runs)
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            daemon.stopping.set()
            stop.set()

        # Installed before uvicorn, which calls the previous handler again on its way out.
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        daemon.start()
        try:
            if serve:
                _serve_until_stopped(config, host, port, daemon, stop)
            else:
                while not stop.is_set() and not daemon.finished.is_set():
                    stop.wait(0.5)
        finally:
            daemon.stop()


def _serve_until_stopped(
    config: Config,
    host: str | None,
    port: int | None,
    daemon: Daemon,
    stop: threading.Event,
) -> None:
    import uvicorn

    from feedsync.serve.app import create_app, server_config

    server = uvicorn.Server(server_config(create_app(config), config, host, port))

    def watch() -> None:  # ends the server when max_runs is reached (tests, benchmarks)
        while not stop.is_set():
            if daemon.finished.wait(0.5):
                server.should_exit = True
                return

    threading.Thread(target=watch, daemon=True).start()
    server.run()
    stop.set()
