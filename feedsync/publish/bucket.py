"""Publish into a bucket (``output_dir = "s3://bucket/prefix"``): the folder's rules, by request.

Rules, in order (files.py has the same for a folder):

1. Names are plain file names, as for a folder: anything else is refused before a request.
2. Only changed bytes are sent: a file whose sha256 is the one recorded when it was last
   uploaded, with the Cache-Control it has now, is not sent again. The record is trusted
   (target.py), so an idle run sends no request at all.
3. A changed file is one PUT carrying its Content-Type and ``Cache-Control: public,
   max-age=<schedule period>`` (a PUT replaces all metadata, so both go every time). An
   object is replaced whole or not at all: a reader never sees half a feed. Never
   multipart (a feed is far below its threshold, and a single PUT's ETag is the MD5 of
   its bytes).
4. Topic feeds first, ``index.opml`` and ``index.html`` last, so the index never names a
   feed that is not there yet.
5. What feedsync uploaded last time and no longer publishes (a removed topic) is deleted
   after the index stops naming it, in one request; nothing else in the bucket is touched.
6. The first failure stops the publish with one line naming the bucket (exit code 1). What
   was uploaded stays; its record says "unknown", so the next run uploads it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping

from feedsync.config import Config
from feedsync.config.buckets import BucketUrl
from feedsync.errors import PublishError
from feedsync.publish.files import REMOVABLE_SUFFIXES, PublishReport, is_plain, order
from feedsync.publish.headers import cache_control, content_type
from feedsync.publish.objects import ObjectBucket
from feedsync.publish.target import Record


class Bucket:
    """A bucket and a prefix as the target of a publish."""

    def __init__(self, url: BucketUrl, config: Config) -> None:
        self.url = url
        self.where = str(url)
        self.identity = f"bucket {url}"
        self.cache_control = cache_control(config.schedule.period)
        self.objects = ObjectBucket(url, config.publish)
        self.before_write: Callable[[], None] | None = None

    def owns(self, recorded: str | None) -> bool:
        return recorded == self.identity

    def intact(self, name: str, record: Record) -> bool:
        # Sent with the headers it would be sent with now; a new schedule means new ones.
        return record[1] is not None and record[1].startswith(self._stamp_prefix)

    def _first_write(self) -> None:
        before, self.before_write = self.before_write, None
        if before is not None:
            before()

    @property
    def _stamp_prefix(self) -> str:
        return f"{self.cache_control}; etag="

    def publish(
        self,
        files: Mapping[str, bytes],
        *,
        previous: Mapping[str, Record],
        intact: Iterable[str],
        owned: Iterable[str],
    ) -> tuple[PublishReport, dict[str, str | None]]:
        bad = sorted(name for name in files if not is_plain(name))
        if bad:
            raise PublishError(
                f"refusing to publish outside {self.url}: {', '.join(map(repr, bad))}"
            )
        still = set(intact)
        written: list[str] = []
        unchanged: list[str] = []
        stamps: dict[str, str | None] = {}
        for name in sorted(files, key=order):
            data = files[name]
            known = previous.get(name)
            if name in still and known and known[0] == hashlib.sha256(data).hexdigest():
                unchanged.append(name)
                stamps[name] = known[1]
                continue
            self._first_write()
            sent = self.objects.put(
                name, data, content_type=content_type(name), cache_control=self.cache_control
            )
            written.append(name)
            stamps[name] = f"{self._stamp_prefix}{sent.etag}"
        stale = sorted(
            name
            for name in set(owned) - set(files)
            if is_plain(name) and name.endswith(REMOVABLE_SUFFIXES)
        )
        if stale:
            self._first_write()
            self.objects.delete(stale)
        return PublishReport(tuple(written), tuple(unchanged), tuple(stale)), stamps
