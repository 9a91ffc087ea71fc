"""Bucket URLs: ``s3://bucket/prefix`` (also ``gs://`` and ``az://``), checked when the config is.

``output_dir`` is a folder or a bucket URL: anything that starts like a URL
(``scheme://``) is read as one, and a scheme other than these three is an error rather
than a folder of that strange name. Rules, in order:

1. The scheme is ``s3``, ``gs`` or ``az`` (the Azure container is the "bucket").
2. No credentials, port, query or fragment: credentials belong in ``[publish]`` or the
   service's own variables, and a URL is shown by ``check-config`` and in messages.
3. The bucket name follows its service's rules (S3: 3-63 lowercase letters, digits, dots
   and hyphens; GCS also takes underscores, up to 222; Azure: no dots, no double hyphen).
4. The path is a prefix of plain segments (no empty, ``.`` or ``..`` segment, no
   backslash or control character); surrounding slashes are dropped. The state's URL
   names one object, so it needs a path that does not end in ``/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

SCHEMES = ("s3", "gs", "az")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")
_BUCKET = {
    "s3": re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
    "gs": re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$"),
    "az": re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$"),
}
_BUCKET_RULE = {
    "s3": "3-63 lowercase letters, digits, '.' and '-'",
    "gs": "3-222 lowercase letters, digits, '.', '_' and '-'",
    "az": "3-63 lowercase letters, digits and single '-'",
}
_BAD_CHARACTER = re.compile(r"[\x00-\x1f\x7f\\]")


@dataclass(frozen=True, slots=True)
class BucketUrl:
    """A bucket and a key in it: a prefix for the feeds, an object's key for the state."""

    scheme: str
    bucket: str
    key: str = ""

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.key}".rstrip("/")

    def child(self, name: str) -> BucketUrl:
        """The URL of ``name`` under this prefix."""
        return BucketUrl(self.scheme, self.bucket, f"{self.key}/{name}".lstrip("/"))


def is_url(text: str) -> bool:
    """Whether a setting's value is written as a URL (``scheme://...``), not as a path."""
    return _URL.match(text) is not None


def without_credentials(text: str) -> str:
    """``text`` with any ``user:password@`` of a URL masked, for messages."""
    return _USERINFO.sub(r"\1********@", text)


def parse_bucket_url(text: str, *, object_key: bool = False) -> BucketUrl:
    """The bucket URL ``text``, or ValueError saying what is wrong with it (rules above)."""
    match = _URL.match(text)
    if match is None:
        raise ValueError("is not a URL (s3://bucket/prefix)")
    scheme = match[1].lower()
    if scheme not in SCHEMES:
        raise ValueError(
            f"unknown scheme {match[1]!r}: a bucket URL starts with s3://, gs:// or az://"
        )
    parts = urlsplit(text)
    if "@" in parts.netloc:
        raise ValueError(
            "credentials do not belong in the URL: give them in [publish] "
            "or the service's own variables (AWS_ACCESS_KEY_ID, ...)"
        )
    if ":" in parts.netloc:
        raise ValueError("a bucket URL has no port: set the server in [publish] endpoint")
    if parts.query or parts.fragment or text.rstrip().endswith(("?", "#")):
        raise ValueError("a bucket URL has no query or fragment")
    bucket = parts.netloc
    if not _BUCKET[scheme].match(bucket):
        shown = f"bucket name {bucket!r}" if bucket else "no bucket name"
        raise ValueError(f"{shown}: {scheme}:// bucket names have {_BUCKET_RULE[scheme]}")
    key = parts.path.strip("/")
    if _BAD_CHARACTER.search(key):
        raise ValueError("the path holds a backslash or a control character")
    if key and any(segment in ("", ".", "..") for segment in key.split("/")):
        raise ValueError("the path has an empty, '.' or '..' segment")
    if object_key and (not key or parts.path.endswith("/")):
        raise ValueError("must name an object, e.g. s3://bucket/feedsync.sqlite3")
    return BucketUrl(scheme, bucket, key)
