"""The exactly-once Zotero sync: every matched paper becomes one ``preprint`` item.

Rule order for one sync:
1. Work: every paper a ``zotero = true`` topic matches (all its matches, not the newest);
   a paper without an arXiv id is skipped and counted.
2. Collections: the parent and one subcollection per topic (``collections.py``): from the
   store, else looked up by name, else created -- with client-chosen keys.
3. Adoption: for papers the store has no record of, existing items are looked up and
   adopted before anything is created (``adopt.py``): a lost store makes no duplicates.
4. Create: a new item gets a random key, is recorded ``pending`` in the store, and only
   then is sent with ``version: 0``. A write whose answer was lost is sent again as it
   was, same keys: what it did commit fails with 412, meaning "it exists", and is read back
   and adopted. A key is never sent as a second, different item.
5. Update: an item whose paper joined another topic is read back and written whole with
   its version, collections and topic tags only added (``mapping.with_memberships``); a
   412 (someone changed it meanwhile) means read it again in the next round.
6. Per-object refusals are recorded with their message (``failed``) and retried by the
   next run; a 409 "collection not found" forgets that collection, which is resolved
   again in the next round of this run.
7. At most 50 objects per write, creates, updates and PDF links sharing batches (an item
   and its PDF link never split); at most ``ROUNDS`` rounds, the later ones only for
   412/409 follow-ups.

A ``SyncError`` (a refused key, retries exhausted) stops the sync and is put in the report:
whatever the store holds stays true, so the next run resumes where this one stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from feedsync.config import Config
from feedsync.errors import ConfigError, SyncError
from feedsync.match.topics import Topic
from feedsync.models import Paper
from feedsync.store import Store, ZoteroItemState
from feedsync.zotero import adopt, collections, mapping
from feedsync.zotero.status import library_of

if TYPE_CHECKING:
    from feedsync.zotero.client import WriteResult, ZoteroClient

log = logging.getLogger(__name__)

ROUNDS = 4
BATCH = 50  # objects per write, the API's limit


@dataclass(frozen=True, slots=True)
class Candidate:
    """A paper to sync, and the opted-in topics that match it."""

    paper: Paper
    slugs: frozenset[str]

    @property
    def arxiv_id(self) -> str:
        return self.paper.arxiv_id or ""


@dataclass
class SyncReport:
    """What one sync did (with ``dry_run``: would do)."""

    created: int = 0
    adopted: int = 0
    updated: int = 0
    skipped_no_id: int = 0
    failed: int = 0
    pending: int = 0
    requests: int = 0
    error: str | None = None  # what stopped the sync
    failures: list[str] = field(default_factory=list)  # "<id>: <message>" per refusal
    plan: list[str] = field(default_factory=list)  # dry-run lines

    def counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "adopted": self.adopted,
            "updated": self.updated,
            "skipped_no_id": self.skipped_no_id,
            "failed": self.failed,
            "pending": self.pending,
            "requests": self.requests,
        }

    def problems(self) -> list[str]:
        """Lines for the run report; any of them makes the exit code 1."""
        out = [self.error] if self.error else []
        if self.failures:
            shown = "; ".join(self.failures[:3]) + (" ..." if len(self.failures) > 3 else "")
            out.append(
                f"{len(self.failures)} paper(s) refused by Zotero, retried next run: {shown}"
            )
        return out


@dataclass(frozen=True, slots=True)
class _Op:
    kind: str  # create | update | attach
    arxiv_id: str
    payload: dict[str, Any]


def open_client(config: Config) -> ZoteroClient:
    from feedsync.zotero.client import ZoteroClient

    zotero = config.zotero
    key = zotero.key()
    if not zotero.library_id or not key:
        raise ConfigError("[zotero] needs library_id and an api_key (or api_key_file)")
    return ZoteroClient(
        library_id=zotero.library_id,
        library_type=zotero.library_type,
        api_key=key,
        api_url=zotero.api_url,
    )


def sync(
    config: Config,
    store: Store,
    topics: Sequence[Topic],
    *,
    client: ZoteroClient | None = None,
    dry_run: bool = False,
    new_key: Callable[[], str] = mapping.new_key,
) -> SyncReport:
    """Sync the opted-in topics' papers; a SyncError ends up in the report, not raised."""
    chosen = [t for t in topics if t.zotero]
    zot = client if client is not None else open_client(config)
    try:
        return _Sync(config, store, chosen, zot, dry_run=dry_run, new_key=new_key).run()
    finally:
        if client is None:
            zot.close()


class _Sync:
    """One sync: the records as they evolve, and the follow-ups between rounds."""

    def __init__(
        self,
        config: Config,
        store: Store,
        topics: Sequence[Topic],
        client: ZoteroClient,
        *,
        dry_run: bool,
        new_key: Callable[[], str],
    ) -> None:
        self.zotero = config.zotero
        self.store = store
        self.topics = topics
        self.client = client
        self.dry_run = dry_run
        self.new_key = new_key
        self.library = library_of(config.zotero)
        self.records = store.zotero_items(self.library)
        self.report = SyncReport()
        self.where = collections.Collections({}, {})
        self.gone: set[str] = set()  # collection keys a 409 said no longer exist
        self.refresh: set[str] = set()  # arXiv ids to read back before writing again
        self.done: set[str] = set()  # arXiv ids refused this run: retried by the next
        self.unwritten: set[str] = set()  # arXiv ids whose item write failed this run

    def run(self) -> SyncReport:
        candidates = self._candidates()
        try:
            if candidates:
                self._sync(candidates)
        except SyncError as e:
            self.report.error = str(e)
            log.error("zotero: %s", e)
        report = self.report
        report.requests = self.client.requests
        states = [self.records.get(c.arxiv_id) for c in candidates]
        report.failed = sum(1 for s in states if s is not None and s.status == "failed")
        report.pending = sum(1 for s in states if s is not None and s.status == "pending")
        log.info("zotero: %s", report.counts())
        return report

    def _candidates(self) -> list[Candidate]:
        matched = self.store.zotero_candidates([t.slug for t in self.topics])
        candidates = [Candidate(p, slugs) for p, slugs in matched if p.arxiv_id]
        self.report.skipped_no_id = len(matched) - len(candidates)
        return candidates

    def _sync(self, candidates: list[Candidate]) -> None:
        self._resolve_collections()
        unknown = [c.arxiv_id for c in candidates if c.arxiv_id not in self.records]
        if unknown:
            adopted = adopt.existing_items(self.client, self.records, unknown)
            self.report.adopted += len(adopted)
            if adopted and self.dry_run:
                self.report.plan.append(f"would adopt {len(adopted)} existing item(s)")
            self._save(adopted)
        for _ in range(ROUNDS):
            if self.gone & set(self.where.keys.values()):
                self.store.forget_zotero_collections(self.library, self.gone)
                self._resolve_collections()
            ops = self._plan(candidates)
            if not ops:
                return
            if self.dry_run:
                self._describe(ops, candidates)
                return
            self._send(ops)

    def _resolve_collections(self) -> None:
        self.where = collections.resolve(
            self.store,
            self.client,
            library=self.library,
            parent_name=self.zotero.collection,
            topics=self.topics,
            gone=self.gone,
            dry_run=self.dry_run,
            new_key=self.new_key,
        )
        if self.dry_run:
            self.report.plan += [f"would create collection {p}" for p in self.where.created]
        elif self.where.created:
            log.info("zotero: created collection(s) %s", ", ".join(self.where.created))

    def _desired(self, candidate: Candidate) -> set[str]:
        keys = self.where.keys
        return {keys[s] for s in candidate.slugs if s in keys}

    # -- planning ----------------------------------------------------------------------------

    def _plan(self, candidates: list[Candidate]) -> list[_Op]:
        creates: list[_Op] = []
        attaches: list[_Op] = []
        reread: list[Candidate] = []
        for c in candidates:
            record = self.records.get(c.arxiv_id)
            if c.arxiv_id in self.done:
                continue
            if record is not None and c.arxiv_id in self.refresh:
                reread.append(c)  # a 412: it exists, or changed since we read it
            elif record is None or record.version == 0:
                creates += self._create(c, record)
            elif record.status == "failed" or not self._desired(c) <= set(record.collections):
                reread.append(c)
            elif self.zotero.attach_pdf and record.attachment is None:
                attaches.append(self._attach(c.paper, record.key))
        self.refresh.clear()
        if not reread:
            return creates + attaches
        if self.dry_run:  # reading back is for writing; a plan names what would be added
            updates = [
                _Op("update", c.arxiv_id, {"collections": sorted(self._desired(c))}) for c in reread
            ]
            return creates + updates + attaches
        updates, more = self._read_back(reread)
        return creates + updates + attaches + more

    def _create(self, c: Candidate, record: ZoteroItemState | None) -> list[_Op]:
        key = record.key if record is not None else self._fresh_key()
        item = mapping.preprint(
            c.paper,
            collections=self._desired(c),
            topics=c.slugs,
            keyword_tags=self.zotero.keyword_tags,
        )
        ops = [_Op("create", c.arxiv_id, {"key": key, "version": 0, **item})]
        if self.zotero.attach_pdf:
            ops.append(self._attach(c.paper, key))
        return ops

    def _attach(self, paper: Paper, parent: str) -> _Op:
        payload = mapping.pdf_attachment(paper, parent)
        key = mapping.attachment_key(parent)
        return _Op("attach", paper.arxiv_id or "", {"key": key, "version": 0, **payload})

    def _fresh_key(self) -> str:
        taken = {r.key for r in self.records.values()}
        while (key := self.new_key()) in taken:
            pass
        return key

    def _read_back(self, reread: list[Candidate]) -> tuple[list[_Op], list[_Op]]:
        """Read items again; those missing collections or topic tags become whole writes."""
        keys = [self.records[c.arxiv_id].key for c in reread]
        current = {d["key"]: d for d in adopt.read_items(self.client, keys)}
        updates: list[_Op] = []
        attaches: list[_Op] = []
        changed = []
        for c in reread:
            record = self.records[c.arxiv_id]
            data = current.get(record.key)
            if data is None:
                changed.append(self._vanished(c, record))
                continue
            if record.version == 0:
                self.report.adopted += 1  # a create whose answer was lost: it is there
            record = replace(
                record,
                version=int(data["version"]),
                status="synced",
                collections=tuple(data.get("collections", [])),
                error=None,
            )
            changed.append(record)
            merged = mapping.with_memberships(
                data, collections=self._desired(c), topics=c.slugs, gone=self.gone
            )
            if merged is not None:
                updates.append(_Op("update", c.arxiv_id, _editable(merged)))
            elif self.zotero.attach_pdf and record.attachment is None:
                attaches.append(self._attach(c.paper, record.key))
        self._save(changed)
        return updates, attaches

    def _vanished(self, c: Candidate, record: ZoteroItemState) -> ZoteroItemState:
        self.done.add(c.arxiv_id)
        if record.version == 0:
            message = f"key {record.key} exists in Zotero but the item cannot be read"
            self.report.failures.append(f"{c.arxiv_id}: {message}")
            return replace(record, status="failed", error=message)
        # Deleted in Zotero by its owner: that decision stands; it is not made again.
        return replace(
            record,
            status="synced",
            collections=tuple(sorted(self._desired(c))),
            error="deleted in Zotero; not re-created",
        )

    # -- writing -----------------------------------------------------------------------------

    def _send(self, ops: list[_Op]) -> None:
        # Pending before sending: after a crash or a lost answer the key is on record, so
        # the create is replayed with the same key, never made again under a new one.
        pending = []
        for op in ops:
            if op.kind == "create":
                old = self.records.get(op.arxiv_id)
                pending.append(
                    ZoteroItemState(
                        arxiv_id=op.arxiv_id,
                        key=op.payload["key"],
                        version=0,
                        status="pending",
                        collections=tuple(op.payload["collections"]),
                        attempts=(old.attempts if old else 0) + 1,
                        error=old.error if old else None,
                    )
                )
        self._save(pending)
        for batch in _batches(ops):
            self._apply(batch, self.client.write_items([op.payload for op in batch]))

    def _apply(self, batch: Sequence[_Op], result: WriteResult) -> None:
        changed: dict[str, ZoteroItemState] = {}
        for index, op in enumerate(batch):
            record = changed.get(op.arxiv_id) or self.records[op.arxiv_id]
            failure = result.failed.get(index)
            if failure is not None and op.kind != "attach":
                self.unwritten.add(op.arxiv_id)
            if failure is None:
                record = self._written(op, record, result.written.get(index))
            elif failure.code == 412 and op.kind == "attach":
                record = replace(record, attachment=op.payload["key"])  # ours, derived: exists
            elif failure.code == 412:
                self.refresh.add(op.arxiv_id)
            elif op.kind == "attach" and op.arxiv_id in self.unwritten:
                continue  # its item was not written; the link follows it in a later round
            elif failure.code == 409:
                self.gone |= collections.missing(failure.message, self.where.keys.values())
                record = replace(record, error=failure.message)
            else:
                self.done.add(op.arxiv_id)
                what = "PDF link: " if op.kind == "attach" else ""
                message = f"{what}{failure.message} (HTTP {failure.code})"
                self.report.failures.append(f"{op.arxiv_id}: {message}")
                tries = record.attempts + (op.kind != "create")  # creates counted when sent
                record = replace(record, status="failed", error=message, attempts=tries)
            changed[op.arxiv_id] = record
        self._save(list(changed.values()))

    def _written(self, op: _Op, record: ZoteroItemState, version: int | None) -> ZoteroItemState:
        if op.kind == "attach":
            return replace(record, attachment=op.payload["key"])
        if op.kind == "create":
            self.report.created += 1
        elif version is not None:
            self.report.updated += 1
        return replace(
            record,
            version=version if version is not None else record.version,
            status="synced",
            collections=tuple(op.payload["collections"]),
            attempts=0,
            error=None,
        )

    def _save(self, states: Sequence[ZoteroItemState]) -> None:
        for state in states:
            self.records[state.arxiv_id] = state
        if states and not self.dry_run:
            self.store.save_zotero_items(self.library, states)

    def _describe(self, ops: list[_Op], candidates: list[Candidate]) -> None:
        papers = {c.arxiv_id: c.paper for c in candidates}
        groups: dict[str, list[str]] = {"create": [], "update": [], "attach": []}
        for op in ops:
            names = sorted(self.where.names.get(k, k) for k in op.payload.get("collections", []))
            groups[op.kind].append(mapping.describe(papers[op.arxiv_id], names))
        titles = {
            "create": "would create {} item(s):",
            "update": "would file {} existing item(s) in more collections:",
            "attach": "would add {} PDF link(s):",
        }
        for kind, lines in groups.items():
            if lines:
                self.report.plan.append(titles[kind].format(len(lines)))
                self.report.plan += [f"  {line}" for line in lines]
        self.report.created = len(groups["create"])
        self.report.updated = len(groups["update"])


def _batches(ops: Sequence[_Op]) -> Iterator[list[_Op]]:
    """Writes of at most BATCH objects that never part an item from its PDF link."""
    batch: list[_Op] = []
    index = 0
    while index < len(ops):
        end = index + 1
        while end < len(ops) and ops[end].arxiv_id == ops[index].arxiv_id:
            end += 1
        if batch and len(batch) + (end - index) > BATCH:
            yield batch
            batch = []
        batch += ops[index:end]
        index = end
    if batch:
        yield batch


def _editable(data: dict[str, Any]) -> dict[str, Any]:
    # Dates are the server's to set; the rest of the editable JSON goes back whole.
    return {k: v for k, v in data.items() if k not in ("dateAdded", "dateModified")}
