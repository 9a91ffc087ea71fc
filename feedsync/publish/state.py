"""The store as one object in a bucket (``[state] url``), for runs with no disk of their own.

A run checks the object out into ``data_dir`` (the local working copy), works on that copy
as always, and checks it back in at the end (pipeline.py wraps the pass). Rules, in order:

1. Fetch: the object's bytes replace the working copy, and its version (ETag) is kept. A
   working copy this machine already saved or fetched is asked for conditionally, so a
   laptop's cron job downloads nothing when nobody else saved meanwhile. A missing object
   starts a new store, or keeps a working copy that was never saved anywhere (that is how
   an installation moves to a bucket).
2. Check: before this run's first write outside the store (uploading feeds, or Zotero),
   the object must still be the version fetched (one HEAD): otherwise another job saved
   meanwhile, and this run stops there, exit 3, having published nothing.
3. Save: a consistent snapshot of the store (``VACUUM INTO``) is PUT only if the object is
   still the version fetched (``If-Match``; ``If-None-Match: *`` when there was none).
   Refused: another job saved first, this run's changes are dropped, exit 3. A refusal
   whose object holds exactly our bytes was our own retried PUT, and is a success. A pass
   that changed nothing but its own status record (an idle run) saves nothing: the store
   of 50,000 papers is some 300 MB, too much to send every hour for a line of status.

What an overlapping job that loses loses: its copy of the store. The feeds it uploaded are
the same bytes the winner's store renders for the same digests (dates come from the data),
or are rendered again when next they change; a Zotero item it created is adopted by the
next run (zotero/adopt.py), which asks Zotero before creating what its store does not know.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from feedsync.config import Config
from feedsync.config.buckets import BucketUrl
from feedsync.errors import StateConflict, StateError
from feedsync.publish.objects import NOT_MODIFIED, ObjectBucket, Version
from feedsync.store import Store

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.sqlite3"
_BESIDE = ("-wal", "-shm", "-journal")  # SQLite's files next to the store


@dataclass
class Checkout:
    """The state object as this run fetched it (``version`` None: there was none)."""

    url: BucketUrl
    version: Version | None
    objects: ObjectBucket
    checked: bool = False
    changed: bool = True  # the pass sets it: False when it changed nothing worth saving

    def check(self) -> None:
        """Rule 2: stop before writing anywhere if another job saved meanwhile."""
        if self.checked:
            return
        now = self.objects.head(self.url.key)
        if not _same(now, self.version):
            raise StateConflict(
                f"another job saved the state {self.url} since this run fetched it: stopped "
                "before publishing anything; the next run fetches it again"
            )
        self.checked = True


def checkout(config: Config) -> Checkout:
    """Rule 1: the object into the working copy at ``config.store_path``."""
    url = config.state.url
    assert url is not None
    where = BucketUrl(url.scheme, url.bucket)
    objects = ObjectBucket(where, config.publish, error=StateError, large=True)
    store = config.store_path
    known = _known(config) if store.exists() else None
    with _Download(store) as into:
        got = objects.download(url.key, into.file, unless=known)
        if got is NOT_MODIFIED:
            log.info("state %s: the working copy is current", url)
            return Checkout(url, known, objects)
        if got is None:
            if store.exists() and known is None:
                log.warning("no state at %s yet: the store in %s is saved there", url, store)
            else:
                log.warning("no state at %s: starting a new store", url)
                _forget(config)
                _discard(store)
            return Checkout(url, None, objects)
        _forget(config)  # until the copy is replaced, it descends from no known version
        size = into.replace()
    _remember(config, got)
    log.info("state %s: fetched %d bytes", url, size)
    return Checkout(url, got, objects)


def checkin(config: Config, taken: Checkout) -> None:
    """Rule 3: the store back into its object, only over the version this run fetched."""
    if not taken.changed and taken.version is not None:
        log.info("state %s: nothing changed but the run's status, not saved", taken.url)
        return
    data = _snapshot(config.store_path)
    key = taken.url.key
    saved = taken.objects.put_if(key, data, content_type=CONTENT_TYPE, expected=taken.version)
    if saved is None:
        now = taken.objects.head(key)
        if now is None or now.etag != f'"{hashlib.md5(data).hexdigest()}"':
            raise StateConflict(
                f"another job saved the state {taken.url} meanwhile: this run's changes are "
                "not saved; the next run fetches it again"
            )
        saved = now  # our own earlier attempt, whose answer was lost
    _remember(config, saved)
    taken.version = saved
    log.info("state %s: saved %d bytes", taken.url, len(data))


def _same(now: Version | None, fetched: Version | None) -> bool:
    if now is None or fetched is None:
        return now is fetched
    return now.etag == fetched.etag and (fetched.version is None or now.version == fetched.version)


def _snapshot(store_path: Path) -> bytes:
    with tempfile.TemporaryDirectory(dir=store_path.parent, prefix=".snapshot-") as tmp:
        into = Path(tmp) / store_path.name
        with Store(store_path) as store:
            store.snapshot(into)
        return into.read_bytes()


class _Download:
    """A temp file beside the working copy that ``replace`` puts in its place, atomically;
    left unused, it goes. A stale WAL beside the store must not be replayed into the new
    copy, so SQLite's side files go first."""

    def __init__(self, store: Path) -> None:
        self.store = store

    def __enter__(self) -> _Download:
        # Under the run lock, what a killed run left here is nobody's any more.
        for left in self.store.parent.glob(".fetched-*"):
            with contextlib.suppress(OSError):
                left.unlink()
        try:
            self.store.parent.mkdir(parents=True, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(dir=self.store.parent, prefix=".fetched-")
        except OSError as e:
            raise StateError(
                f"cannot write the state into {self.store.parent}: {e.strerror}"
            ) from e
        self.file = open(fd, "wb")  # closed in __exit__
        return self

    def replace(self) -> int:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            size = self.file.tell()
            self.file.close()
            for suffix in _BESIDE:
                Path(f"{self.store}{suffix}").unlink(missing_ok=True)
            os.replace(self.tmp, self.store)
        except OSError as e:
            raise StateError(
                f"cannot write the fetched state into {self.store}: {e.strerror}"
            ) from e
        return size

    def __exit__(self, *exc: object) -> None:
        self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def _discard(store: Path) -> None:
    for path in (store, *(Path(f"{store}{suffix}") for suffix in _BESIDE)):
        path.unlink(missing_ok=True)


def _marker(config: Config) -> Path:
    return config.store_path.with_name(config.store_path.name + ".state.json")


def _known(config: Config) -> Version | None:
    """The version of the object the working copy was last fetched as or saved to."""
    try:
        data = json.loads(_marker(config).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("url") != str(config.state.url):
        return None
    etag = data.get("etag")
    return Version(etag, data.get("version")) if isinstance(etag, str) else None


def _remember(config: Config, version: Version) -> None:
    """The working copy descends from ``version`` (changes since are this machine's own)."""
    record = {"url": str(config.state.url), "etag": version.etag, "version": version.version}
    # Not written: the next run on this machine downloads the object whole, nothing worse.
    with contextlib.suppress(OSError):
        _marker(config).write_text(json.dumps(record), encoding="utf-8")


def _forget(config: Config) -> None:
    with contextlib.suppress(OSError):
        _marker(config).unlink(missing_ok=True)
