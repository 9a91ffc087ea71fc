"""Atomic, skip-unchanged publishing into a real temporary directory."""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedsync.errors import PublishError
from feedsync.publish.files import PublishReport, publish, write_atomic

OLD = 1_000_000_000  # an mtime far in the past, so a rewrite cannot hide within one tick


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".tmp-"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_077() -> Iterator[None]:
    """A strict umask: the published files must still be world-readable."""
    old = os.umask(0o077)
    yield
    os.umask(old)


# --- write_atomic ---------------------------------------------------------------------------


@pytest.mark.usefixtures("umask_077")
def test_writes_new_file_world_readable(tmp_path: Path) -> None:
    target = tmp_path / "llm.rss"
    assert write_atomic(target, b"<rss/>") is True
    assert target.read_bytes() == b"<rss/>"
    assert mode(target) == 0o644
    assert temp_files(tmp_path) == []


def test_unchanged_bytes_are_not_rewritten(tmp_path: Path) -> None:
    target = tmp_path / "llm.rss"
    target.write_bytes(b"<rss>same</rss>")
    os.utime(target, ns=(OLD * 10**9, OLD * 10**9))
    inode = target.stat().st_ino

    assert write_atomic(target, b"<rss>same</rss>") is False
    assert target.stat().st_mtime_ns == OLD * 10**9
    assert target.stat().st_ino == inode


def test_changed_bytes_of_same_size_are_rewritten(tmp_path: Path) -> None:
    target = tmp_path / "llm.rss"
    target.write_bytes(b"<rss>aaaa</rss>")
    os.utime(target, ns=(OLD * 10**9, OLD * 10**9))

    assert write_atomic(target, b"<rss>bbbb</rss>") is True
    assert target.read_bytes() == b"<rss>bbbb</rss>"
    assert target.stat().st_mtime_ns != OLD * 10**9
    assert mode(target) == 0o644


def test_failed_rename_keeps_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "llm.rss"
    target.write_bytes(b"old")

    def no_space(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(PublishError) as caught:
        write_atomic(target, b"new")
    assert str(target) in str(caught.value)
    assert os.strerror(errno.ENOSPC) in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)
    assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []


def test_failed_write_keeps_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "llm.rss"
    target.write_bytes(b"old")

    def io_error(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", io_error)
    with pytest.raises(PublishError, match=r"llm\.rss"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []


def test_permission_denied_is_a_publish_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a read-only directory gives a non-root user, simulated so root runs it too."""

    def denied(**kwargs: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr("tempfile.mkstemp", denied)
    with pytest.raises(PublishError, match=r"cannot write .*llm\.rss: Permission denied"):
        write_atomic(tmp_path / "llm.rss", b"new")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_is_a_publish_error(tmp_path: Path) -> None:
    target = tmp_path / "llm.rss"
    target.write_bytes(b"old")
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(PublishError, match=r"llm\.rss"):
            write_atomic(target, b"new")
    finally:
        tmp_path.chmod(0o755)
    assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []


def test_missing_directory_is_a_publish_error(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="nowhere"):
        write_atomic(tmp_path / "nowhere" / "llm.rss", b"x")


# --- publish --------------------------------------------------------------------------------


def test_creates_directory_and_writes_index_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "site" / "feeds"
    renamed: list[str] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        renamed.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    files = {
        "index.html": b"<html/>",
        "b.rss": b"b",
        "index.opml": b"<opml/>",
        "a.atom": b"a",
        "a.rss": b"a",
    }
    report = publish(out, files)
    expected = ["a.atom", "a.rss", "b.rss", "index.opml", "index.html"]
    assert renamed == expected
    assert report == PublishReport(written=tuple(expected), unchanged=(), removed=())
    assert {p.name for p in out.iterdir()} == set(files)


def test_second_publish_reports_unchanged(tmp_path: Path) -> None:
    files = {"a.rss": b"a", "index.html": b"<html/>"}
    publish(tmp_path, files)
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    report = publish(tmp_path, {**files, "a.rss": b"a2"})
    assert report.written == ("a.rss",)
    assert report.unchanged == ("index.html",)
    assert (tmp_path / "index.html").stat().st_mtime_ns == before["index.html"]


def test_removes_only_stale_owned_feed_files(tmp_path: Path) -> None:
    out = tmp_path / "feeds"
    out.mkdir()
    for name in ("old.rss", "old.atom", "foreign.rss", "notes.txt", "README.md"):
        (out / name).write_bytes(b"x")
    (out / "olddir.rss").mkdir()
    outside = tmp_path / "outside.rss"
    outside.write_bytes(b"keep me")

    owned = [
        "a.rss",  # still published
        "old.rss",
        "old.atom",
        "gone.rss",  # owned but already missing
        "notes.txt",  # owned, but not a name feedsync writes
        "olddir.rss",  # a directory: not ours
        "../outside.rss",
        "sub/x.rss",
        ".hidden.rss",
    ]
    report = publish(out, {"a.rss": b"a"}, owned=owned)

    assert report.removed == ("old.atom", "old.rss")
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "a.rss",
        "foreign.rss",
        "notes.txt",
        "olddir.rss",
    ]
    assert outside.read_bytes() == b"keep me"


@pytest.mark.parametrize(
    "name", ["../evil.rss", "a/b.rss", "..", "", ".tmp-x", "/etc/passwd", "a\\b.rss"]
)
def test_bad_names_are_refused_before_any_write(tmp_path: Path, name: str) -> None:
    out = tmp_path / "feeds"
    with pytest.raises(PublishError, match="refusing"):
        publish(out, {"a.rss": b"a", name: b"x"})
    assert not out.exists()


def test_stale_temp_files_are_cleaned(tmp_path: Path) -> None:
    now = time.time()
    stale = tmp_path / ".tmp-killed"
    fresh = tmp_path / ".tmp-running"
    for path in (stale, fresh):
        path.write_bytes(b"partial")
    os.utime(stale, (now - 7200, now - 7200))
    os.utime(fresh, (now - 60, now - 60))

    publish(tmp_path, {"a.rss": b"a"}, clock=lambda: now)
    assert not stale.exists()
    assert fresh.exists()  # may belong to a run still writing


def test_output_dir_that_is_a_file_is_a_publish_error(tmp_path: Path) -> None:
    out = tmp_path / "feeds"
    out.write_bytes(b"not a directory")
    with pytest.raises(PublishError, match="feeds"):
        publish(out, {"a.rss": b"a"})
