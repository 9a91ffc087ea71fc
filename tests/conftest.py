"""Shared fixtures: configs written to temporary directories, a clean environment."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_feedsync_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Tests see no FEEDSYNC_* variables from the developer's shell, and a private cache."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("FEEDSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


WriteConfig = Callable[..., Path]


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    """Write a TOML config (dedented) into tmp_path and return its path."""

    def write(text: str = "", name: str = "feedsync.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long torture and soak runs (marked ``slow``) only run when asked for.

    ``pytest -m slow`` (or any ``-m`` expression) or FEEDSYNC_SLOW=1 selects them; the
    normal suite deselects them, so they show as deselected, not as skipped.
    """
    import os

    if config.getoption("markexpr") or os.environ.get("FEEDSYNC_SLOW") == "1":
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
