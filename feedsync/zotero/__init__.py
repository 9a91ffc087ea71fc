"""Zotero integration: matched papers become ``preprint`` items in per-topic collections.

- ``mapping``: pure; a ``Paper`` as the item JSON Zotero accepts, creator names, keys.
- ``client``: the only module that talks to the Web API (pyzotero, wrapped: retries,
  backoff, 50-object writes, every failure as ``SyncError``).
- ``collections``: the parent and per-topic collections, remembered, found or created.
- ``adopt``: finding the items that exist for papers the store does not know.
- ``sync``: the exactly-once orchestration over the store and the client.
- ``status``: whether the sync can run, and what the store says it has done.

Only ``sync`` and ``client`` load pyzotero and httpx2, and only when a sync runs.
"""
