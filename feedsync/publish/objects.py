"""One bucket through obstore: explicit time limits, and every failure one line naming it.

obstore is imported here only, and only once a request is about to be made: an idle run,
which sends nothing to the bucket, never loads it.

Settings, for s3:// (rules in order):
1. ``[publish]`` wins: ``endpoint``, ``region``, and ``access_key_id`` with
   ``secret_access_key`` (given together, they are the only credentials used: an ambient
   ``AWS_SESSION_TOKEN`` is not mixed in).
2. Whatever is not set there comes from the standard AWS variables, which obstore reads
   itself: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
   ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``,
   and the role chains (``AWS_WEB_IDENTITY_TOKEN_FILE`` with ``AWS_ROLE_ARN``, container
   credentials, instance metadata). Profiles in ``~/.aws`` are not read.
3. With an endpoint (from either), requests are path-style (``http://host/bucket/key``,
   which every S3-compatible server takes) and plain http is allowed if the endpoint says
   http.
4. Each request may take ``[publish] timeout`` seconds; failures worth another try (5xx,
   connection errors) are retried up to ``retries`` times within that same time, so a
   hung server costs one timeout, not obstore's default three minutes. A bucket opened
   for ``large`` objects (the state, hundreds of MB) instead allows an hour per request
   and ``timeout`` seconds of silence: a slow transfer goes on, a hung server still ends.

gs:// and az:// go through the same client with the client options only: their
credentials come from their own variables (``GOOGLE_APPLICATION_CREDENTIALS``, ...;
``AZURE_STORAGE_ACCOUNT_NAME``, ``AZURE_STORAGE_ACCOUNT_KEY``, ...). Only S3 is tested.
HTTP(S)_PROXY and NO_PROXY apply to every scheme.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

from feedsync.config import PublishConfig
from feedsync.config.buckets import BucketUrl
from feedsync.errors import FeedsyncError, PublishError

if TYPE_CHECKING:
    from obstore.store import ObjectStore, S3Credential

T = TypeVar("T")
_CODE = re.compile(r"<Code>([^<]{1,80})</Code>")
_STATUS = re.compile(r"status code: (\d{3})(?: ([A-Za-z][A-Za-z ]{0,40}[a-z]))?")
_SENT_TO = re.compile(r"Error performing [A-Z]+ (\S+)")
_REFUSED_CREDENTIALS = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AuthorizationHeaderMalformed",
    }
)


@dataclass(frozen=True, slots=True)
class Version:
    """What identifies an object's current bytes: its ETag (and GCS's generation)."""

    etag: str | None
    version: str | None = None


NOT_MODIFIED = Version(None, "not modified")  # what ``download`` returns for a 304


class ObjectBucket:
    """Requests to one bucket (and a prefix in it); failures raise ``error`` with one line."""

    def __init__(
        self,
        url: BucketUrl,
        settings: PublishConfig,
        *,
        error: type[FeedsyncError] = PublishError,
        environ: Mapping[str, str] | None = None,
        large: bool = False,
    ) -> None:
        self.url = url
        self.settings = settings
        self.large = large
        self._error = error
        self._environ = os.environ if environ is None else environ
        self._store: ObjectStore | None = None

    @property
    def endpoint(self) -> str | None:
        if self.url.scheme != "s3":
            return None
        env = self._environ
        return (
            self.settings.endpoint
            or env.get("AWS_ENDPOINT_URL_S3")
            or env.get("AWS_ENDPOINT_URL")
            or env.get("AWS_ENDPOINT")
        )

    def put(
        self, name: str, data: bytes, *, content_type: str, cache_control: str | None = None
    ) -> Version:
        """Replace ``name`` with ``data`` (one request: a reader sees the old or the new)."""
        return self._call(
            f"cannot upload {name} to",
            lambda: self._put(name, data, content_type, cache_control, "overwrite"),
        )

    def put_if(
        self, name: str, data: bytes, *, content_type: str, expected: Version | None
    ) -> Version | None:
        """Write ``name`` only if it is still ``expected`` (None: only if there is none);
        None when it is not, because someone else wrote it meanwhile."""
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        mode: Any = "create"
        if expected is not None:
            mode = {"e_tag": expected.etag}
            if expected.version is not None:
                mode["version"] = expected.version

        def write() -> Version | None:
            try:
                return self._put(name, data, content_type, None, mode)
            except (AlreadyExistsError, PreconditionError):
                return None

        return self._call(f"cannot save {name} to", write)

    def download(
        self, name: str, into: BinaryIO, *, unless: Version | None = None
    ) -> Version | None:
        """``name``'s bytes written to ``into`` as they come, and its version;
        ``NOT_MODIFIED`` (nothing written) if it is still ``unless``; None if missing."""
        import obstore
        from obstore.exceptions import NotModifiedError

        def read() -> Version | None:
            options: Any = {"if_none_match": unless.etag} if unless and unless.etag else {}
            try:
                answer = obstore.get(self._client(), name, options=options)
                for chunk in answer.stream(min_chunk_size=1 << 20):
                    into.write(chunk)
            except NotModifiedError:
                return NOT_MODIFIED
            except FileNotFoundError as e:
                if "NoSuchBucket" in str(e):
                    raise
                return None
            meta = answer.meta
            return Version(meta["e_tag"], meta["version"])

        return self._call(f"cannot fetch {name} from", read)

    def head(self, name: str) -> Version | None:
        """``name``'s current version, or None when there is no such object."""
        import obstore

        def look() -> Version | None:
            try:
                meta = obstore.head(self._client(), name)
            except FileNotFoundError:
                return None
            return Version(meta["e_tag"], meta["version"])

        return self._call(f"cannot look up {name} in", look)

    def delete(self, names: Iterable[str]) -> None:
        """Remove ``names`` (one request for all; a missing one is no error)."""
        import obstore

        wanted = sorted(names)
        if wanted:
            self._call(
                "cannot remove old files from", lambda: obstore.delete(self._client(), wanted)
            )

    # -- obstore ---------------------------------------------------------------------------

    def _put(
        self, name: str, data: bytes, content_type: str, cache_control: str | None, mode: Any
    ) -> Version:
        import obstore

        # Each PUT replaces all of an object's metadata: both headers go with every one.
        attributes: Any = {"Content-Type": content_type}
        if cache_control:
            attributes["Cache-Control"] = cache_control
        done = obstore.put(
            self._client(), name, data, attributes=attributes, mode=mode, use_multipart=False
        )
        return Version(done["e_tag"], done["version"])

    def _call(self, action: str, work: Callable[[], T]) -> T:
        start = time.monotonic()
        try:
            return work()
        except FeedsyncError:
            raise
        except Exception as e:  # obstore's errors, FileNotFoundError for a missing bucket
            if not _is_obstore_error(e):
                raise
            why = self._why(e, time.monotonic() - start)
            raise self._error(f"{action} {self.url}: {why}") from e

    def _why(self, error: Exception, elapsed: float) -> str:
        text = str(error)
        code = _CODE.search(text)
        status = _STATUS.search(text)
        refused = type(error).__name__ in ("PermissionDeniedError", "UnauthenticatedError")
        if refused or (code is not None and code[1] in _REFUSED_CREDENTIALS):
            said = f" (HTTP {status[1]} {code[1]})" if status and code else ""
            return (
                f"the bucket refused the credentials{said}: check [publish] access_key_id and "
                "secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        if code and code[1] == "NoSuchBucket":
            return "no such bucket"
        if "error sending request" in text or "builder error" in text:
            sent = _SENT_TO.search(text)
            where = self.endpoint or (_origin(sent[1]) if sent else "the service")
            if elapsed >= self.settings.timeout * 0.9:
                return f"no answer from {where} within {self.settings.timeout:g} s"
            if "dns error" in text:
                return f"cannot resolve the host of {where}"
            if "builder error" in text:
                return f"cannot send requests to {where} (is the endpoint a valid URL?)"
            return f"cannot connect to {where}"
        if status:
            return f"HTTP {status[1]}" + (f" {code[1]}" if code else f" {status[2] or ''}".rstrip())
        first = text.splitlines()[0] if text else type(error).__name__
        return first[:200]

    def _client(self) -> ObjectStore:
        if self._store is None:
            try:
                self._store = self._open()
            except Exception as e:
                if not _is_obstore_error(e):
                    raise
                first = (str(e).splitlines() or [type(e).__name__])[0][:200]
                raise self._error(f"cannot use the bucket {self.url}: {first}") from e
        return self._store

    def _open(self) -> ObjectStore:
        from obstore.store import S3Store, from_url

        timeout = self.settings.timeout
        client: Any = {"timeout": f"{timeout:g}s", "connect_timeout": f"{min(timeout, 10):g}s"}
        if self.large:
            client.update(timeout="3600s", read_timeout=f"{timeout:g}s")
        retry: Any = {
            "max_retries": self.settings.retries,
            "retry_timeout": timedelta(seconds=timeout),
            "backoff": {
                "init_backoff": timedelta(milliseconds=100),
                "max_backoff": timedelta(seconds=2),
                "base": 2,
            },
        }
        if self.url.scheme != "s3":
            store: ObjectStore = from_url(str(self.url), client_options=client, retry_config=retry)
            return store
        config: Any = {}
        if endpoint := self.endpoint:
            # Given here, it must also win over AWS_ENDPOINT_URL_S3, which obstore would
            # otherwise prefer to an explicit endpoint.
            config.update(endpoint=endpoint, aws_endpoint_url_s3=endpoint)
            config["virtual_hosted_style_request"] = False
            client["allow_http"] = urlsplit(endpoint).scheme == "http"
        if self.settings.region:
            config["region"] = self.settings.region
        provider = None
        if self.settings.access_key_id and (secret := self.settings.secret()):
            provider = _static_credentials(self.settings.access_key_id, secret)
        return S3Store(
            self.url.bucket,
            prefix=self.url.key or None,
            config=config,
            client_options=client,
            retry_config=retry,
            credential_provider=provider,
        )


def _static_credentials(key_id: str, secret: str) -> Callable[[], S3Credential]:
    def credentials() -> S3Credential:
        return {
            "access_key_id": key_id,
            "secret_access_key": secret,
            "token": None,
            "expires_at": None,
        }

    return credentials


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _is_obstore_error(error: Exception) -> bool:
    from obstore.exceptions import BaseError

    # A missing object or bucket is the builtin FileNotFoundError, raised by obstore.
    return isinstance(error, BaseError | FileNotFoundError)
