"""Publish rendered files into the output directory: atomic, skip-unchanged, in order.

Rules, in order:

1. Names are plain file names; anything with a "/" or ".." is refused before any write.
2. A file whose bytes are unchanged is not touched: rewriting it would change its mtime,
   hence nginx's ETag and Last-Modified, and every reader would download it again.
3. A changed file is written to a ``.tmp-*`` file in the same directory (so the rename is
   atomic), made world-readable (mkstemp creates 0600, which nginx cannot serve), synced,
   renamed over the target, and the directory is synced. A reader sees the old file or
   the new one, never half of one; on error the old file stays and the temp file goes.
4. Topic feeds first, ``index.opml`` and ``index.html`` last, so the index never links to
   a feed that is not there yet.
5. Only files feedsync published last time (``owned``, from the caller's records) are
   removed, and only plain ``.rss``/``.atom``/``.opml``/``.html`` names: a file someone
   else put in the directory is never touched. Temp files a killed run left behind are
   removed once they are an hour old.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from feedsync.errors import PublishError

TEMP_PREFIX = ".tmp-"
STALE_TEMP_SECONDS = 3600
FILE_MODE = 0o644
REMOVABLE_SUFFIXES = (".rss", ".atom", ".opml", ".html")
LAST = ("index.opml", "index.html")
# fsync on a directory is not supported everywhere; there is nothing more to do then.
_NO_DIR_SYNC = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF})


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What one ``publish`` call did, by file name, in the order it happened."""

    written: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


def _why(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:  # missing, unreadable, a directory: write (and report that failure)
        return False


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in _NO_DIR_SYNC:
            raise
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, sync_dir: bool = True) -> bool:
    """Replace ``path`` with ``data`` atomically; False (and no write) if already equal.

    Raises PublishError naming the path and the OS error; the old file is then intact.
    With ``sync_dir`` False the caller makes the rename durable (one directory fsync for
    many files).
    """
    if _same_bytes(path, data):
        return False
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX)
        with open(fd, "wb") as out:  # owns fd from here: closed on any error
            os.fchmod(out.fileno(), FILE_MODE)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        tmp = None
        if sync_dir:
            _fsync_dir(path.parent)
    except OSError as e:
        _discard(tmp)
        raise PublishError(f"cannot write {path}: {_why(e)}") from e
    except BaseException:
        _discard(tmp)
        raise
    return True


def _discard(tmp: str | None) -> None:
    if tmp is not None:
        # Already gone, or the directory itself is gone: nothing left to clean.
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def is_plain(name: str) -> bool:
    return (
        bool(name)
        and not name.startswith(".")
        and ".." not in name
        and not any(ch in name for ch in "/\\\x00")
    )


def order(name: str) -> tuple[int, str]:
    if name in LAST:
        return (2 + LAST.index(name), name)
    return (1 if name.startswith("index.") else 0, name)


def _clean_stale_temps(directory: Path, now: float) -> None:
    """Best effort: a temp file an hour old belongs to a run that was killed."""
    try:
        with os.scandir(directory) as entries:
            stale = [
                e.path
                for e in entries
                if e.name.startswith(TEMP_PREFIX)
                and e.is_file(follow_symlinks=False)
                and now - e.stat(follow_symlinks=False).st_mtime > STALE_TEMP_SECONDS
            ]
    except OSError:
        return
    for stale_path in stale:
        _discard(stale_path)


def _remove_stale(directory: Path, names: Iterable[str], removed: list[str]) -> list[str]:
    failures = []
    for name in sorted(set(names)):
        path = directory / name
        if not (is_plain(name) and name.endswith(REMOVABLE_SUFFIXES)):
            continue  # not a name feedsync writes: never ours to delete
        if not (path.is_symlink() or path.is_file()):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as e:
            failures.append(f"{name}: {_why(e)}")
            continue
        removed.append(name)
    return failures


def publish(
    output_dir: Path,
    files: Mapping[str, bytes],
    *,
    owned: Iterable[str] = (),
    clock: Callable[[], float] = time.time,
) -> PublishReport:
    """Write ``files`` (name -> bytes) into ``output_dir``, then drop the stale owned ones.

    ``owned`` is what the previous run published, as the caller recorded it. ``clock``
    (seconds since the epoch) only decides which leftover temp files are old enough to go.
    """
    bad = sorted(name for name in files if not is_plain(name))
    if bad:
        raise PublishError(f"refusing to publish outside {output_dir}: {', '.join(map(repr, bad))}")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PublishError(f"cannot create {output_dir}: {_why(e)}") from e
    _clean_stale_temps(output_dir, clock())

    written: list[str] = []
    unchanged: list[str] = []
    removed: list[str] = []
    # Every file's bytes are synced before its rename; the directory is synced once after
    # the feeds and once after the index files, so a crash can never leave an index that
    # lists a feed whose rename was lost (was: one directory sync per file).
    ordered = sorted(files, key=order)
    feeds = [n for n in ordered if order(n)[0] == 0]
    for batch in (feeds, ordered[len(feeds) :]):
        for name in batch:
            wrote = write_atomic(output_dir / name, files[name], sync_dir=False)
            (written if wrote else unchanged).append(name)
        if any(name in written for name in batch):
            try:
                _fsync_dir(output_dir)
            except OSError as e:
                raise PublishError(f"cannot sync {output_dir}: {_why(e)}") from e
    failures = _remove_stale(output_dir, (n for n in owned if n not in files), removed)
    if failures:
        raise PublishError(f"cannot remove stale files in {output_dir}: {'; '.join(failures)}")
    return PublishReport(tuple(written), tuple(unchanged), tuple(removed))
