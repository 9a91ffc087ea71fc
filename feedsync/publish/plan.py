"""What a publish must do, decided from signatures alone (pure: no store, no disk).

Rules, in order:
1. Idle: when the run's signature (store seq, topics, feed settings, renderer version) is
   the one last published and every file is still the one we wrote, nothing is done.
2. A feed is rendered when its signature (its settings and its newest papers, by id and
   revision) changed, or one of its two files is not ours any more (deleted, overwritten).
3. The OPML bundle is always rebuilt (cheap, and skipped on write when its bytes are
   unchanged); the index page when any feed was rendered, when the set of feeds or their
   settings changed, or when its file is not ours any more.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Bump when the renderers' output changes (render/): every feed is then rendered again, and
# every cached entry is dropped first.
RENDER_VERSION = "2"
ALL = "all"  # the slug of the optional every-paper feed

Newest = tuple[tuple[int, int], ...]  # a feed's papers, newest first: (row id, revision)


@dataclass(frozen=True, slots=True)
class Feed:
    """One feed to publish: its settings (``spec``, anything with a stable repr) and papers."""

    slug: str
    spec: Any
    newest: Newest

    @property
    def files(self) -> tuple[str, str]:
        return f"{self.slug}.rss", f"{self.slug}.atom"

    @property
    def signature(self) -> str:
        return digest([RENDER_VERSION, repr(self.spec), [list(p) for p in self.newest]])


@dataclass(frozen=True, slots=True)
class Plan:
    """Which feeds to render, which files stay as they are, and whether the index page does."""

    render: tuple[Feed, ...]
    kept: frozenset[str]  # file names left as published
    index_signature: str
    render_index: bool

    @property
    def rendered(self) -> dict[str, str]:
        """Slug -> signature of each feed rendered now, to remember."""
        return {feed.slug: feed.signature for feed in self.render}


def run_signature(values: Sequence[Any]) -> str:
    """The signature of everything a publish depends on (rule 1)."""
    return digest([RENDER_VERSION, *values])


def idle(
    signature: str, last: str | None, published: Collection[str], intact: Collection[str]
) -> bool:
    """Rule 1: nothing changed since the last publish, and its files are all still ours."""
    return signature == last and bool(published) and all(name in intact for name in published)


def plan(
    feeds: Sequence[Feed],
    last: Mapping[str, str | None],
    intact: Collection[str],
    last_index: str | None,
) -> Plan:
    """Rules 2 and 3. ``last`` is each feed's signature when it was last rendered;
    ``intact`` the files still as we published them."""
    render: list[Feed] = []
    kept: set[str] = set()
    for feed in feeds:
        if last.get(feed.slug) == feed.signature and all(n in intact for n in feed.files):
            kept.update(feed.files)
        else:
            render.append(feed)
    rendered = {feed.slug: feed.signature for feed in render}
    index_signature = digest(
        [RENDER_VERSION, [repr(f.spec) for f in feeds], sorted(rendered.items()), sorted(kept)]
    )
    render_index = bool(render) or last_index != index_signature or "index.html" not in intact
    if not render_index:
        kept.add("index.html")
    return Plan(tuple(render), frozenset(kept), index_signature, render_index)


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, default=str).encode()).hexdigest()[:24]
