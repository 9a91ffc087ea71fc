"""Where a publish goes: a folder (files.py) or a bucket (bucket.py), behind one interface.

The stage decides what to write (plan.py) the same way for both; a target only answers
two questions and does the writes:

- ``intact``: is this file still the one we published, by its record (name -> sha256 and a
  stamp)? A folder stats the file (a stamp is "mtime_ns-size"). A bucket trusts the
  record, so that an idle run sends no request at all: nobody else writes feedsync's
  objects, and a stamp there is the Cache-Control the object was sent with and its ETag.
- ``owns``: are the records in the store about this target? They are tagged with the
  target's ``identity``; after a move to another folder or bucket none of them counts, so
  nothing is deleted at the new place and everything is written there.

``publish`` writes feeds first, then ``index.opml`` and ``index.html``, and only then
removes what feedsync published before and no longer does; it returns the report and
each written file's stamp. ``before_write``, if set, is called before its first write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

from feedsync.publish.files import PublishReport, publish

Record = tuple[str, str | None]  # sha256 of the bytes, stamp (None: not known to be intact)


class Target(Protocol):
    where: str  # for messages and the report
    identity: str  # what the store's records of published files belong to
    # Called once before the first write, if any (the state's check that no other job has
    # saved meanwhile, state.py, which raises to stop the publish).
    before_write: Callable[[], None] | None

    def owns(self, recorded: str | None) -> bool: ...

    def intact(self, name: str, record: Record) -> bool: ...

    def publish(
        self,
        files: Mapping[str, bytes],
        *,
        previous: Mapping[str, Record],
        intact: Iterable[str],
        owned: Iterable[str],
    ) -> tuple[PublishReport, dict[str, str | None]]: ...


class Folder:
    """The output directory: atomic writes, skip-unchanged by the bytes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        self.identity = f"folder {path}"
        self.before_write: Callable[[], None] | None = None

    def owns(self, recorded: str | None) -> bool:
        # Stores from before targets were recorded published into output_dir.
        return recorded in (None, self.identity)

    def intact(self, name: str, record: Record) -> bool:
        return record[1] is not None and _stamp(self.path / name) == record[1]

    def publish(
        self,
        files: Mapping[str, bytes],
        *,
        previous: Mapping[str, Record],
        intact: Iterable[str],
        owned: Iterable[str],
    ) -> tuple[PublishReport, dict[str, str | None]]:
        if self.before_write is not None and files:
            self.before_write()  # (files.py skips unchanged bytes itself: this may be early)
        report = publish(self.path, files, owned=owned)
        return report, {name: _stamp(self.path / name) for name in files}


def _stamp(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{st.st_mtime_ns}-{st.st_size}"
