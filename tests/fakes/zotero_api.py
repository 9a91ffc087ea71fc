"""A fake of the Zotero Web API v3, served on 127.0.0.1, as strict as the real service.

It holds one library (``/users/<id>`` or ``/groups/<id>``) and follows the rules of
``shared/reference/zotero.md``: a numeric library id (else 400), an API key (Bearer,
``Zotero-API-Key`` or ``?key=``; a wrong or revoked one is 403 "Invalid key"),
``Zotero-API-Version: 3``, multi-object writes of at most 50 objects answered 200 with
``successful``/``success``/``unchanged``/``failed`` keyed by string index, per-object
validation against the ``preprint`` / ``attachment`` schema (unknown property 400,
field of another item type 400, bad creator 400, missing collection 409, too long 413,
keyed write without version 428, stale version 412), versions that grow once per write
request, ``Zotero-Write-Token`` (a successful token reused is 412 before processing),
tag / itemType / itemKey filters with the ``||`` syntax, ``format=keys|versions``,
``limit`` clamped to 100 with ``Total-Results`` and ``Link: rel="next"``.

A POST of an existing object replaces its editable JSON (fields not sent are cleared);
only PATCH merges. That is the stricter reading of the documentation: a client that is
right here is right against either behaviour of the real server.

Faults are scripted per request, like the HF fake: ``fake.fault("429", retry_after=0.01)``
makes the next matching request fail that way. ``reset`` drops the connection before
processing; ``lost`` processes and commits the request, then drops the connection without
an answer (the response a client never sees).
"""

from __future__ import annotations

import copy
import html
import json
import re
import secrets
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fakes.server import FakeHandler, QuietServer

KEY_CHARS = "23456789ABCDEFGHIJKLMNPQRSTUVWXYZ"
KEY = re.compile(f"^[{KEY_CHARS}]{{8}}$")
MAX_WRITE = 50
MAX_FIELD_BYTES = 65535
MAX_TAG = 255
FAULTS = ("429", "500", "503", "reset", "lost", "backoff")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


PREPRINT_FIELDS = _words(
    "title abstractNote genre repository archiveID place date series seriesNumber DOI"
    " citationKey url accessDate archive archiveLocation shortTitle language libraryCatalog"
    " callNumber rights extra"
)
_COMMON = _words(
    "title abstractNote date shortTitle language url accessDate archive archiveLocation"
    " libraryCatalog callNumber rights extra"
)
ITEM_FIELDS: dict[str, frozenset[str]] = {
    "preprint": PREPRINT_FIELDS,
    "journalArticle": _COMMON
    | _words(
        "publicationTitle volume issue pages series seriesTitle seriesText"
        " journalAbbreviation DOI ISSN"
    ),
    "conferencePaper": _COMMON
    | _words("proceedingsTitle conferenceName place publisher volume pages series DOI ISBN"),
    "book": _COMMON
    | _words("series seriesNumber volume numberOfVolumes edition place publisher numPages ISBN"),
    "report": _COMMON | _words("reportNumber reportType seriesTitle place institution pages"),
    "webpage": _words(
        "title abstractNote websiteTitle websiteType date shortTitle url accessDate language"
        " rights extra"
    ),
    "attachment": frozenset({"title", "accessDate", "url"}),
    "note": frozenset(),
}
# Real Zotero fields of some item type (plus a few more of the schema): sending one that
# the item's type lacks is "not a valid field for type", anything else "Invalid property".
ALL_FIELDS = frozenset().union(*ITEM_FIELDS.values()) | _words(
    "number university thesisType court code system programmingLanguage versionNumber"
)
_AUTHORS = frozenset({"author", "contributor", "editor", "translator", "reviewedAuthor"})
CREATOR_TYPES: dict[str, frozenset[str]] = {
    "preprint": _AUTHORS,
    "journalArticle": _AUTHORS,
    "conferencePaper": _AUTHORS | {"seriesEditor"},
    "book": frozenset({"author", "contributor", "editor", "seriesEditor", "translator"}),
    "report": frozenset({"author", "contributor", "seriesEditor", "translator"}),
    "webpage": frozenset({"author", "contributor", "translator"}),
}
LINK_MODES = frozenset({"imported_file", "imported_url", "linked_file", "linked_url"})
ATTACHMENT_PROPS = frozenset({"linkMode", "contentType", "charset", "filename", "md5", "mtime"})
READ_PARAMS = _words(
    "format limit start tag itemType itemKey collectionKey since q qmode sort direction locale"
    " include includeTrashed key v"
)


@dataclass
class Fault:
    kind: str
    method: str | None = None  # only requests with this method
    path: str | None = None  # only requests whose path+query contains this
    retry_after: str | None = None
    backoff: str | None = None
    times: int = 1


@dataclass
class Refusal:
    """Objects whose JSON contains ``match`` fail with this code and message."""

    match: str
    code: int
    message: str
    times: int


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body_size: int
    headers: dict[str, str]
    status: int = 0  # -1: the connection was dropped


@dataclass
class Obj:
    """An item or a collection: its key, version and editable JSON (``data``)."""

    key: str
    version: int
    data: dict[str, Any]


@dataclass
class ZoteroState:
    library_type: str
    library_id: str
    api_key: str | None
    write_access: bool = True
    version: int = 0
    items: dict[str, Obj] = field(default_factory=dict)
    collections: dict[str, Obj] = field(default_factory=dict)
    tokens: set[tuple[str, str]] = field(default_factory=set)
    faults: deque[Fault] = field(default_factory=deque)
    refusals: list[Refusal] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Fail(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FakeZotero:
    """Run with ``with FakeZotero() as z:``; ``z.url`` is the ``api_url`` to configure."""

    def __init__(
        self,
        *,
        api_key: str = "fake-zotero-key-0123456789",
        library_type: str = "user",
        library_id: str = "475425",
        write_access: bool = True,
    ) -> None:
        self.api_key = api_key
        self.state = ZoteroState(library_type, library_id, api_key, write_access)
        self._server = QuietServer(("127.0.0.1", 0), _Handler)
        self._server.state = self.state  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def library_id(self) -> str:
        return self.state.library_id

    @property
    def library_type(self) -> str:
        return self.state.library_type

    @property
    def prefix(self) -> str:
        return f"/{self.state.library_type}s/{self.state.library_id}"

    def __enter__(self) -> FakeZotero:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- scripting -----------------------------------------------------------------------

    def fault(
        self,
        kind: str,
        *,
        method: str | None = None,
        path: str | None = None,
        retry_after: float | str | None = None,
        backoff: float | str | None = None,
        times: int = 1,
    ) -> None:
        assert kind in FAULTS, kind
        self.state.faults.append(
            Fault(
                kind,
                method,
                path,
                None if retry_after is None else str(retry_after),
                None if backoff is None else str(backoff),
                times,
            )
        )

    def refuse(
        self,
        match: str,
        *,
        code: int = 400,
        message: str = "Invalid property 'injected'",
        times: int = 1,
    ) -> None:
        """The next ``times`` objects whose JSON contains ``match`` fail per object."""
        self.state.refusals.append(Refusal(match, code, message, times))

    def revoke(self) -> None:
        """The key stops working (a user revoked it at zotero.org/settings/keys)."""
        self.state.api_key = None

    def restore(self) -> None:
        self.state.api_key = self.api_key

    def delete_collection(self, key: str) -> None:
        """Delete a collection and its subcollections, as a user would in Zotero."""
        with self.state.lock:
            _delete_collection(self.state, key)

    def edit_item(self, key: str, **changes: Any) -> None:
        """Change an item as a user would: its version moves on."""
        with self.state.lock:
            state = self.state
            state.version += 1
            obj = state.items[key]
            obj.data.update(changes)
            obj.version = obj.data["version"] = state.version

    # -- inspection ----------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        return self.state.requests

    @property
    def writes(self) -> list[Request]:
        return [r for r in self.state.requests if r.method != "GET"]

    def item_writes(self) -> list[Request]:
        return [r for r in self.writes if r.path.endswith("/items")]

    def reset_log(self) -> None:
        self.state.requests.clear()

    def items(self, item_type: str | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            return [
                copy.deepcopy(o.data)
                for o in self.state.items.values()
                if item_type is None or o.data["itemType"] == item_type
            ]

    def item(self, key: str) -> dict[str, Any]:
        with self.state.lock:
            return copy.deepcopy(self.state.items[key].data)

    def collections(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [copy.deepcopy(o.data) for o in self.state.collections.values()]

    @property
    def library_version(self) -> int:
        return self.state.version


def random_key() -> str:
    return "".join(secrets.choice(KEY_CHARS) for _ in range(8))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _delete_collection(state: ZoteroState, key: str) -> None:
    doomed = {key}
    grew = True
    while grew:
        children = {k for k, c in state.collections.items() if c.data["parentCollection"] in doomed}
        grew = not children <= doomed
        doomed |= children
    state.version += 1
    for k in doomed:
        state.collections.pop(k, None)
    # Items leave the deleted collections, which is a change to them: their version moves.
    for obj in state.items.values():
        kept = [c for c in obj.data.get("collections", []) if c not in doomed]
        if kept != obj.data.get("collections", []):
            obj.data["collections"] = kept
            obj.version = obj.data["version"] = state.version


class _Handler(FakeHandler):
    server_version = "FakeZotero/3"

    @property
    def state(self) -> ZoteroState:
        return self.server.state  # type: ignore[attr-defined,no-any-return]

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # -- plumbing ------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = Request(
            method,
            parts.path,
            query,
            len(body),
            {k.lower(): v for k, v in self.headers.items()},
        )
        with self.state.lock:
            self.state.requests.append(record)
            fault = self._take_fault(method, self.path)
        extra: dict[str, str] = {}
        if fault is not None:
            if fault.kind == "reset":
                return self._drop(record)
            if fault.kind in ("429", "500", "503"):
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                text = {
                    "429": "Too Many Requests",
                    "500": "An error occurred",
                    "503": "Service Unavailable",
                }
                return self._send(
                    int(fault.kind), text[fault.kind].encode(), "text/plain", record, headers
                )
            if fault.kind == "backoff" and fault.backoff:
                extra["Backoff"] = fault.backoff
        with self.state.lock:
            try:
                status, payload, headers = self._route(method, parts.path, query, body)
            except _Fail as f:
                status, payload, headers = f.code, f.message, {}
        if fault is not None and fault.kind == "lost":
            return self._drop(record)  # committed above; the answer never leaves
        headers.update(extra)
        if isinstance(payload, str):
            self._send(status, payload.encode(), "text/plain; charset=utf-8", record, headers)
        elif status == 204 or payload is None:
            self._send(status, b"", "text/plain", record, headers)
        else:
            data = json.dumps(payload, ensure_ascii=False).encode()
            self._send(status, data, "application/json", record, headers)

    def _take_fault(self, method: str, target: str) -> Fault | None:
        for fault in self.state.faults:
            if (fault.method is None or fault.method == method) and (
                fault.path is None or fault.path in target
            ):
                fault.times -= 1
                if fault.times <= 0:
                    self.state.faults.remove(fault)
                return fault
        return None

    def _drop(self, record: Request) -> None:
        # SO_LINGER 0: close with a reset, so the client sees the connection break.
        self.connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        self.close_connection = True
        self.connection.close()
        record.status = -1

    # -- routing -------------------------------------------------------------------------

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        match = re.match(r"^/(users|groups)/([^/]+)(/.*)?$", path)
        if not match:
            return 404, "Not found", {}
        kind, lib_id, rest = match.group(1), match.group(2), match.group(3) or ""
        if not lib_id.isdigit():
            return 400, f"Invalid {kind[:-1]} ID", {}
        self._check_version(query)
        self._check_key(method, query)
        state = self.state
        if kind != f"{state.library_type}s" or lib_id != state.library_id:
            return 403, "Forbidden", {}
        segments = [s for s in rest.split("/") if s]
        if not segments or segments[0] not in ("items", "collections"):
            return 404, "Not found", {}
        what, tail = segments[0], segments[1:]
        if method == "GET":
            return self._read(what, tail, query)
        if method == "POST" and not tail:
            return self._write_many(what, body)
        if method == "PATCH" and what == "items" and len(tail) == 1:
            return self._patch_item(tail[0], body)
        if method == "DELETE" and len(tail) == 1:
            return self._delete_one(what, tail[0])
        return 405, "Method not allowed", {}

    def _check_version(self, query: dict[str, list[str]]) -> None:
        version = self.headers.get("Zotero-API-Version") or (query.get("v") or [None])[-1]
        if version != "3":
            raise _Fail(400, "Zotero-API-Version: 3 is required (this fake is strict)")

    def _check_key(self, method: str, query: dict[str, list[str]]) -> None:
        key: str | None = None
        auth = self.headers.get("Authorization")
        if auth is not None:
            scheme, _, value = auth.partition(" ")
            if scheme != "Bearer" or not value.strip():
                raise _Fail(400, "Invalid Authorization header format")
            key = value.strip()
        key = key or self.headers.get("Zotero-API-Key") or (query.get("key") or [None])[-1]
        if key is None:
            if method == "GET":
                raise _Fail(403, "Forbidden")
            raise _Fail(403, "An API key is required for write requests.")
        if self.state.api_key is None or key != self.state.api_key:
            raise _Fail(403, "Invalid key")
        if method != "GET" and not self.state.write_access:
            raise _Fail(403, "Write access denied")

    # -- reads ---------------------------------------------------------------------------

    def _read(
        self, what: str, tail: list[str], query: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        unknown = set(query) - READ_PARAMS
        if unknown:
            raise _Fail(400, f"Invalid parameter '{sorted(unknown)[0]}'")
        state = self.state
        since = self.headers.get("If-Modified-Since-Version")
        if since is not None and since.isdigit() and state.version <= int(since):
            return 304, None, {"Last-Modified-Version": str(state.version)}
        store = state.items if what == "items" else state.collections
        if len(tail) == 1 and tail[0] not in ("top",):
            obj = store.get(tail[0])
            if obj is None:
                return 404, "Not found", {}
            return (
                200,
                self._object(what, obj),
                {"Last-Modified-Version": str(obj.version)},
            )
        objects = self._select(what, tail, (query.get("includeTrashed") or ["0"])[-1] == "1")
        objects = self._filter(what, objects, query)
        return self._page(what, objects, query)

    def _select(self, what: str, tail: list[str], trashed: bool) -> list[Obj]:
        state = self.state
        if what == "items":
            items = [o for o in state.items.values() if trashed or not o.data.get("deleted")]
            if tail == ["top"]:
                return [o for o in items if not o.data.get("parentItem")]
            if len(tail) == 2 and tail[1] == "children":
                if tail[0] not in state.items:
                    raise _Fail(404, "Not found")
                return [o for o in items if o.data.get("parentItem") == tail[0]]
            if tail:
                raise _Fail(404, "Not found")
            return items
        collections = list(state.collections.values())
        if tail == ["top"]:
            return [c for c in collections if not c.data["parentCollection"]]
        if len(tail) == 2 and tail[1] in ("collections", "items"):
            if tail[0] not in state.collections:
                raise _Fail(404, "Collection not found")
            if tail[1] == "items":
                return [o for o in state.items.values() if tail[0] in o.data.get("collections", [])]
            return [c for c in collections if c.data["parentCollection"] == tail[0]]
        if tail:
            raise _Fail(404, "Not found")
        return collections

    def _filter(self, what: str, objects: list[Obj], query: dict[str, list[str]]) -> list[Obj]:
        if "since" in query:
            since = _int(query["since"][-1], "since")
            objects = [o for o in objects if o.version > since]
        if what != "items":
            return objects
        for expression in query.get("tag", []):
            objects = [o for o in objects if _bool_match(expression, _tags(o))]
        for expression in query.get("itemType", []):
            objects = [o for o in objects if _bool_match(expression, {o.data["itemType"].lower()})]
        if "itemKey" in query:
            keys = [k for k in query["itemKey"][-1].split(",") if k]
            if len(keys) > 50:
                raise _Fail(400, "Cannot specify more than 50 item keys")
            wanted = set(keys)
            objects = [o for o in objects if o.key in wanted]
        if "q" in query:
            needle = query["q"][-1].lower()
            objects = [o for o in objects if needle in _searchable(o)]
        return objects

    def _page(
        self, what: str, objects: list[Obj], query: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        fmt = (query.get("format") or ["json"])[-1]
        if fmt not in ("json", "keys", "versions"):
            raise _Fail(400, f"Invalid 'format' value '{fmt}'")
        start = _int((query.get("start") or ["0"])[-1], "start")
        if "limit" in query:
            limit = min(max(_int(query["limit"][-1], "limit"), 1), 100)
        else:
            # keys and versions come whole unless a limit is asked for
            limit = len(objects) if fmt in ("keys", "versions") else 25
        total = len(objects)
        page = objects[start : start + limit]
        headers = {
            "Total-Results": str(total),
            "Last-Modified-Version": str(self.state.version),
        }
        if start + limit < total:
            params = {k: v[-1] for k, v in query.items() if k != "start"}
            base = f"http://{self.headers.get('Host')}{urlsplit(self.path).path}"
            last = ((total - 1) // limit) * limit
            headers["Link"] = ", ".join(
                [
                    f'<{base}?{urlencode({**params, "start": start + limit})}>; rel="next"',
                    f'<{base}?{urlencode({**params, "start": last})}>; rel="last"',
                ]
            )
        if fmt == "keys":
            return 200, "".join(o.key + "\n" for o in page), headers
        if fmt == "versions":
            return 200, {o.key: o.version for o in page}, headers
        return 200, [self._object(what, o) for o in page], headers

    def _object(self, what: str, obj: Obj) -> dict[str, Any]:
        state = self.state
        prefix = f"http://{self.headers.get('Host')}/{state.library_type}s/{state.library_id}"
        if what == "items":
            meta: dict[str, Any] = {}
            if not obj.data.get("parentItem"):
                meta["numChildren"] = sum(
                    1 for o in state.items.values() if o.data.get("parentItem") == obj.key
                )
        else:
            meta = {
                "numCollections": sum(
                    1 for c in state.collections.values() if c.data["parentCollection"] == obj.key
                ),
                "numItems": sum(
                    1 for o in state.items.values() if obj.key in o.data.get("collections", [])
                ),
            }
        return {
            "key": obj.key,
            "version": obj.version,
            "library": {
                "type": state.library_type,
                "id": int(state.library_id),
                "name": "fake library",
                "links": {},
            },
            "links": {"self": {"href": f"{prefix}/{what}/{obj.key}", "type": "application/json"}},
            "meta": meta,
            "data": copy.deepcopy(obj.data),
        }

    # -- writes --------------------------------------------------------------------------

    def _write_many(self, what: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        state = self.state
        try:
            objects = json.loads(body or b"null")
        except ValueError:
            return 400, "Invalid JSON", {}
        if not isinstance(objects, list):
            return 400, "Uploaded data must be a JSON array", {}
        if len(objects) > MAX_WRITE:
            return 413, f"Cannot add more than {MAX_WRITE} {what} at a time", {}
        token = self.headers.get("Zotero-Write-Token")
        if token is not None:
            if not 5 <= len(token) <= 32:
                return 400, "Invalid Zotero-Write-Token", {}
            if (str(state.api_key), token) in state.tokens:
                return 412, "Write token already used", {}
        precondition = self.headers.get("If-Unmodified-Since-Version")
        if precondition is not None:
            expected = _int(precondition, "If-Unmodified-Since-Version")
            if state.version > expected:
                return (
                    412,
                    "Library has been modified since specified version "
                    f"(expected {expected}, found {state.version})",
                    {"Last-Modified-Version": str(state.version)},
                )
        result: dict[str, dict[str, Any]] = {
            "successful": {},
            "success": {},
            "unchanged": {},
            "failed": {},
        }
        new_version = state.version + 1
        changed = False
        for index, obj in enumerate(objects):
            i = str(index)
            try:
                written = self._write_one(what, index, obj, new_version, precondition is not None)
            except _Fail as f:
                key = obj.get("key") if isinstance(obj, dict) else None
                failure: dict[str, Any] = {
                    "code": f.code,
                    "message": html.escape(f.message, quote=False),
                }
                if isinstance(key, str):
                    failure["key"] = key
                result["failed"][i] = failure
                continue
            if written is None:
                result["unchanged"][i] = obj["key"]
            else:
                changed = True
                result["successful"][i] = self._object(what, written)
                result["success"][i] = written.key
        if changed:
            state.version = new_version
        if token is not None:
            state.tokens.add((str(state.api_key), token))
        return 200, result, {"Last-Modified-Version": str(state.version)}

    def _write_one(
        self, what: str, index: int, obj: Any, new_version: int, precondition: bool
    ) -> Obj | None:
        """Validate and commit one object; None when it was unchanged."""
        state = self.state
        noun = what[:-1]
        if not isinstance(obj, dict):
            raise _Fail(
                400,
                f"Invalid value for index {index} in uploaded data; expected JSON {noun} object",
            )
        for refusal in state.refusals:
            if refusal.times > 0 and refusal.match in json.dumps(obj):
                refusal.times -= 1
                raise _Fail(refusal.code, refusal.message)
        store = state.items if what == "items" else state.collections
        key = obj.get("key")
        version = obj.get("version")
        if key is not None and (not isinstance(key, str) or not KEY.match(key)):
            raise _Fail(400, f"'{key}' is not a valid {noun} key")
        existing = store.get(key) if key is not None else None
        if key is not None and version is None and not precondition:
            raise _Fail(
                428,
                "Either If-Unmodified-Since-Version or 'version' property must be provided "
                "for 'key'-based writes",
            )
        if version is not None:
            if not isinstance(version, int) or isinstance(version, bool) or version < 0:
                raise _Fail(400, "'version' must be a non-negative integer")
            if existing is None and version > 0:
                raise _Fail(404, f"{noun.title()} {key} doesn't exist (expected version {version})")
            if existing is not None and version != existing.version:
                raise _Fail(
                    412,
                    f"{noun.title()} has been modified since specified version "
                    f"(expected {version}, found {existing.version})",
                )
        if what == "items":
            data = self._item_data(obj, existing, partial=False)
        else:
            data = self._collection_data(obj)
        return self._commit(store, key, existing, data, new_version)

    def _commit(
        self,
        store: dict[str, Obj],
        key: str | None,
        existing: Obj | None,
        data: dict[str, Any],
        new_version: int,
    ) -> Obj | None:
        if existing is not None:
            before = {
                k: v for k, v in existing.data.items() if k not in ("version", "dateModified")
            }
            after = {k: v for k, v in data.items() if k not in ("version", "dateModified")}
            if before == after:
                return None
            if "dateAdded" in existing.data:
                data["dateAdded"] = existing.data["dateAdded"]
                data["dateModified"] = _now()
            existing.data = data
            existing.version = data["version"] = new_version
            return existing
        key = key or random_key()
        data["key"] = key
        data["version"] = new_version
        if "itemType" in data:
            data["dateAdded"] = data["dateModified"] = _now()
        obj = Obj(key, new_version, data)
        store[key] = obj
        return obj

    def _patch_item(self, key: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        state = self.state
        try:
            changes = json.loads(body or b"null")
        except ValueError:
            return 400, "Invalid JSON", {}
        if not isinstance(changes, dict):
            return 400, "Uploaded data must be a JSON object", {}
        existing = state.items.get(key)
        if existing is None:
            return 404, "Not found", {}
        header = self.headers.get("If-Unmodified-Since-Version")
        expected = _int(header, "If-Unmodified-Since-Version") if header else changes.get("version")
        if expected is None:
            return 428, "If-Unmodified-Since-Version not provided", {}
        if expected != existing.version:
            return (
                412,
                f"Item has been modified since specified version "
                f"(expected {expected}, found {existing.version})",
                {"Last-Modified-Version": str(existing.version)},
            )
        data = self._item_data({**changes, "key": key}, existing, partial=True)
        written = self._commit(state.items, key, existing, data, state.version + 1)
        if written is not None:
            state.version += 1
        return 204, None, {"Last-Modified-Version": str(state.version)}

    def _delete_one(self, what: str, key: str) -> tuple[int, Any, dict[str, str]]:
        state = self.state
        store = state.items if what == "items" else state.collections
        existing = store.get(key)
        header = self.headers.get("If-Unmodified-Since-Version")
        if header is None:
            return 428, "If-Unmodified-Since-Version not provided", {}
        if existing is None:
            return 404, "Not found", {}
        if _int(header, "If-Unmodified-Since-Version") < existing.version:
            return 412, f"{what[:-1].title()} has been modified since specified version", {}
        if what == "collections":
            _delete_collection(state, key)
        else:
            state.version += 1
            for child in [k for k, o in state.items.items() if o.data.get("parentItem") == key]:
                del state.items[child]
            del state.items[key]
        return 204, None, {"Last-Modified-Version": str(state.version)}

    # -- validation ----------------------------------------------------------------------

    def _item_data(
        self, obj: dict[str, Any], existing: Obj | None, *, partial: bool
    ) -> dict[str, Any]:
        """The editable JSON ``obj`` leaves behind, or ``_Fail`` naming the first problem."""
        state = self.state
        base = existing.data if (existing is not None and partial) else {}
        item_type = obj.get("itemType", base.get("itemType"))
        if item_type is None:
            raise _Fail(400, "'itemType' property not provided")
        if not isinstance(item_type, str) or item_type not in ITEM_FIELDS:
            raise _Fail(400, f"'{item_type}' is not a valid itemType")
        fields = ITEM_FIELDS[item_type]
        parent = obj.get("parentItem", base.get("parentItem"))
        is_child = bool(parent)
        if is_child and item_type not in ("note", "attachment"):
            raise _Fail(400, "Child item must be note or attachment")
        if item_type == "attachment" and not is_child and obj.get("linkMode") == "linked_url":
            raise _Fail(400, "Only file attachments and PDFs can be top-level items")
        data: dict[str, Any] = copy.deepcopy(base) if base else {}
        if not base:
            data = {"key": obj.get("key"), "version": 0, "itemType": item_type}
            if item_type == "attachment":
                data.update({"linkMode": None, "contentType": "", "charset": ""})
            if item_type in ("note", "attachment"):
                data["note"] = ""
            else:
                data["creators"] = []
            data.update(dict.fromkeys(sorted(fields), ""))
            data.update({"tags": [], "collections": [], "relations": {}})
        data["itemType"] = item_type
        for name, value in obj.items():
            if name in ("key", "version", "itemType", "dateAdded", "dateModified"):
                continue
            if name == "parentItem":
                if not isinstance(value, str) or not KEY.match(value):
                    raise _Fail(400, "'parentItem' must be a valid item key")
                if value not in state.items:
                    raise _Fail(400, f"Parent item {value} doesn't exist")
                data["parentItem"] = value
            elif name == "creators":
                if item_type in ("note", "attachment"):
                    raise _Fail(400, f"'creators' is not valid for type '{item_type}'")
                data["creators"] = _creators(value, item_type)
            elif name == "tags":
                data["tags"] = _tag_list(value)
            elif name == "collections":
                data["collections"] = self._collection_keys(value, is_child)
            elif name == "relations":
                if not isinstance(value, dict) and value != []:
                    raise _Fail(400, "'relations' property must be an object")
                data["relations"] = value or {}
            elif name == "deleted":
                data["deleted"] = bool(value)
            elif name == "note":
                if item_type not in ("note", "attachment"):
                    raise _Fail(400, "'note' property is valid only for note and attachment items")
                data["note"] = str(value)
            elif name in ATTACHMENT_PROPS:
                if item_type != "attachment":
                    raise _Fail(400, f"Invalid property '{name}'")
                if name == "linkMode" and value not in LINK_MODES:
                    raise _Fail(400, f"'{value}' is not a valid linkMode")
                data[name] = value
            elif name in fields:
                if not isinstance(value, str):
                    raise _Fail(400, f"'{name}' must be a string")
                if len(value.encode("utf-8")) > MAX_FIELD_BYTES:
                    raise _Fail(413, f"Value for '{name}' too long")
                data[name] = value
            elif name in ALL_FIELDS:
                if value not in ("", None):  # an inapplicable empty field is ignored
                    raise _Fail(400, f"'{name}' is not a valid field for type '{item_type}'")
            else:
                raise _Fail(400, f"Invalid property '{name}'")
        if item_type == "attachment" and not data.get("linkMode"):
            raise _Fail(400, "'linkMode' property not provided")
        return data

    def _collection_keys(self, value: Any, is_child: bool) -> list[str]:
        if not isinstance(value, list):
            raise _Fail(400, "'collections' property must be an array")
        if is_child and value:
            raise _Fail(400, "Child items cannot be assigned to collections")
        for key in value:
            if not isinstance(key, str) or not KEY.match(key):
                raise _Fail(400, f"'{key}' is not a valid collection key")
        for key in value:
            if key not in self.state.collections:
                raise _Fail(409, f"Collection {key} not found")
        return list(dict.fromkeys(value))

    def _collection_data(self, obj: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "key": obj.get("key"),
            "version": 0,
            "name": "",
            "parentCollection": False,
            "relations": {},
        }
        for name, value in obj.items():
            if name in ("key", "version"):
                continue
            if name == "name":
                if not isinstance(value, str) or not value.strip():
                    raise _Fail(400, "Collection name cannot be empty")
                if len(value) > 255:
                    raise _Fail(413, f"Collection name '{value[:50]}…' too long")
                data["name"] = value
            elif name == "parentCollection":
                if value in (False, "", None):
                    data["parentCollection"] = False
                    continue
                if not isinstance(value, str) or not KEY.match(value):
                    raise _Fail(400, f"'{value}' is not a valid collection key")
                if value not in self.state.collections:
                    raise _Fail(409, f"Parent collection {value} not found")
                data["parentCollection"] = value
            elif name == "relations":
                if not isinstance(value, dict) and value != []:
                    raise _Fail(400, "'relations' property must be an object")
                data["relations"] = value or {}
            elif name == "deleted":
                data["deleted"] = bool(value)
            else:
                raise _Fail(400, f"Invalid property '{name}'")
        if not data["name"]:
            raise _Fail(400, "'name' property not provided")
        return data


def _creators(value: Any, item_type: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise _Fail(400, "'creators' property must be an array")
    out = []
    allowed = CREATOR_TYPES.get(item_type, frozenset({"author"}))
    for creator in value:
        if not isinstance(creator, dict):
            raise _Fail(400, "Invalid creator object")
        if "creatorType" not in creator:
            raise _Fail(400, "creator object must contain 'creatorType'")
        for k in creator:
            if k not in ("creatorType", "firstName", "lastName", "name"):
                raise _Fail(400, f"Invalid creator property '{k}'")
        names = [str(creator.get(k) or "").strip() for k in ("name", "firstName", "lastName")]
        if not any(names):
            raise _Fail(400, "creator object must contain 'firstName'/'lastName' or 'name'")
        if "name" in creator and ("firstName" in creator or "lastName" in creator):
            raise _Fail(
                400, "'name' and 'firstName'/'lastName' creator fields are mutually exclusive"
            )
        if ("firstName" in creator) != ("lastName" in creator):
            raise _Fail(400, "'firstName' and 'lastName' creator fields must be set together")
        kind = creator["creatorType"]
        if kind not in allowed:
            raise _Fail(400, f"'{kind}' is not a valid creator type for item type '{item_type}'")
        out.append(dict(creator))
    return out


def _tag_list(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _Fail(400, "'tags' property must be an array")
    out = []
    for tag in value:
        if not isinstance(tag, dict) or not tag:
            raise _Fail(400, "Tag object is empty")
        for k in tag:
            if k not in ("tag", "type"):
                raise _Fail(400, f"Invalid tag property '{k}'")
        name = tag.get("tag")
        if not isinstance(name, str) or name == "":
            raise _Fail(400, "Tag cannot be empty")
        if len(name) > MAX_TAG:
            raise _Fail(413, f"Tag '{name[:50]}…' too long")
        kind = tag.get("type", 0)
        if kind not in (0, 1):
            raise _Fail(400, f"Invalid tag type '{kind}'")
        out.append({"tag": name, "type": 1} if kind else {"tag": name})
    return out


def _tags(obj: Obj) -> set[str]:
    return {t["tag"].lower() for t in obj.data.get("tags", [])}


def _bool_match(expression: str, values: set[str]) -> bool:
    """The API's boolean search syntax: ``a || b`` is OR, a leading ``-`` is NOT."""
    negate = expression.startswith("-")
    alternatives = {a.strip().lower() for a in expression.removeprefix("-").split(" || ")}
    hit = bool(alternatives & values)
    return not hit if negate else hit


def _searchable(obj: Obj) -> str:
    creators = " ".join(
        " ".join(str(v) for k, v in c.items() if k != "creatorType")
        for c in obj.data.get("creators", [])
    )
    return f"{obj.data.get('title', '')} {creators} {obj.data.get('date', '')[:4]}".lower()


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _Fail(400, f"Invalid '{name}' value '{value}'") from None
