"""The match stage: bring every topic's memberships in the store up to date.

Rules, in order:
1. A topic that is new, or whose selection changed (its signature), is matched against
   every stored paper.
2. Any other topic matches only the papers that changed since it last looked (the store's
   seq says which).
3. A topic no longer configured loses its memberships.
Returns each topic's count of matches and how many are new, as a frozen value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from feedsync.match.select import select_all, select_changed
from feedsync.match.topics import Topic
from feedsync.store import MatchUpdate, Store, TopicState


@dataclass(frozen=True, slots=True)
class TopicMatches:
    matches: int  # papers the topic holds now
    new: int  # of which this pass added


def match_topics(store: Store, topics: Sequence[Topic]) -> Mapping[str, TopicMatches]:
    """Match what each topic has not seen yet; its counts, by slug."""
    states = store.topic_states()
    seq = store.seq
    whole = [t for t in topics if _needs_full_match(states.get(t.slug), t)]
    whole_slugs = {t.slug for t in whole}
    behind = [t for t in topics if t.slug not in whole_slugs and states[t.slug].seq < seq]
    before = {slug: state.matched for slug, state in states.items()}
    updates: list[MatchUpdate] = []
    if whole:
        found = select_all(store, whole)
        updates += [MatchUpdate(t.slug, t.signature, found[t.slug]) for t in whole]
    if behind:
        since = min(states[t.slug].seq for t in behind)
        scope, found = select_changed(store, behind, since)
        updates += [MatchUpdate(t.slug, t.signature, found[t.slug], scope) for t in behind]
    gone = set(states) - {t.slug for t in topics}
    if updates or gone:
        store.save_matches(updates, seq=seq, drop=gone)
    after = store.topic_states() if updates or gone else states
    counts = {}
    for t in topics:
        total = after[t.slug].matched if t.slug in after else 0
        counts[t.slug] = TopicMatches(matches=total, new=total - before.get(t.slug, 0))
    return MappingProxyType(counts)


def _needs_full_match(state: TopicState | None, topic: Topic) -> bool:
    return state is None or state.signature != topic.signature
