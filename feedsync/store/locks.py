"""Advisory locks on the data directory (``fcntl.flock``: released by the kernel on death).

``daemon.lock``: one daemon per data_dir; a second one fails at once, naming the holder.
``run.lock``: one pass at a time, so a manual `feedsync run` waits for the daemon's pass.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from feedsync.errors import LockError


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise LockError(f"cannot create the lock file {path}: {e.strerror}") from e


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 200).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "another process"


def _claim(fd: int) -> None:
    # Who holds the lock is only told to a process that waits for it: a full disk refusing
    # these few bytes must not stop a run, which then says what is wrong where it matters.
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())


@contextlib.contextmanager
def daemon_lock(data_dir: Path) -> Iterator[None]:
    path = data_dir / "daemon.lock"
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockError(
                f"another feedsync daemon is running for this data directory: "
                f"{_holder(fd)} holds {path}"
            ) from None
        _claim(fd)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def run_lock(data_dir: Path, *, timeout: float = 600.0) -> Iterator[None]:
    path = data_dir / "run.lock"
    fd = _open(path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockError(
                        f"another feedsync pass has been running for over {timeout:.0f} s: "
                        f"{_holder(fd)} holds {path}"
                    ) from None
                time.sleep(0.2)
        _claim(fd)
        yield
    finally:
        os.close(fd)
