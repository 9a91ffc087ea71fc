"""Is feedsync healthy? The rule shared by /healthz and `feedsync healthcheck`.

Healthy means: the last finished run succeeded and finished within two schedule periods.
A run that is still going does not count either way; a store that does not exist yet
means no run has happened.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from feedsync.config import Config
from feedsync.errors import StorageError
from feedsync.store import Store


def health_report(
    config: Config, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> tuple[bool, dict[str, Any]]:
    """(healthy, the JSON payload describing the last run)."""
    period = config.schedule.period
    payload: dict[str, Any] = {
        "status": "unhealthy",
        "max_age_seconds": int(2 * period.total_seconds()),
    }
    if not config.store_path.exists():
        payload["reason"] = "no run yet"
        return False, payload
    try:
        with Store(config.store_path) as store:
            runs = store.last_runs(1)
            running = store.last_runs(1, finished_only=False)
    except StorageError as e:
        payload["reason"] = str(e)
        return False, payload
    if running and running[0].result == "running":
        payload["running_since"] = running[0].started.isoformat()
    if not runs:
        payload["reason"] = "no run has finished yet"
        return False, payload
    last = runs[0]
    assert last.finished is not None
    age = now() - last.finished
    payload["last_run"] = {
        "started": last.started.isoformat(),
        "finished": last.finished.isoformat(),
        "result": last.result,
        "error": last.error,
        "age_seconds": int(age.total_seconds()),
    }
    if last.result != "ok":
        payload["reason"] = f"the last run failed: {last.error}"
        return False, payload
    if age > 2 * period:
        payload["reason"] = "the last successful run is older than two schedule periods"
        return False, payload
    payload["status"] = "ok"
    return True, payload
