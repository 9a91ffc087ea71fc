"""Render each paper once, splice it into every feed that lists it.

A paper sits in several topic feeds, and most of a feed is the same from one run to the
next: rendering every entry of every changed feed through feedgen was most of an hourly
run. Here feedgen renders a paper's ``<item>`` and ``<entry>`` once, with a marker where
the topic goes; the store keeps those fragments by (paper, revision); and a feed is the
feedgen-rendered channel with the fragments spliced in, the marker replaced by the topic.

The result is byte for byte what ``render.render_rss`` / ``render_atom`` give for the same
papers (tests/test_fragments.py proves it over arbitrary papers and topics), so readers,
ETags and the skip-unchanged publisher see no difference.

The marker is U+0080: legal in XML, and ``render.clean`` strips it from every input
field, so no paper can contain it.
"""

from __future__ import annotations

from collections.abc import Sequence

from feedsync.models import Fragment, StoredPaper
from feedsync.render.feeds import (
    EPOCH,
    FeedSpec,
    add_atom_entry,
    add_rss_entry,
    atom_feed,
    clean,
    feed_updated,
    id_prefix,
    prepare_entry,
    rss_feed,
)

MARK = "\x80"
_MARK_ID = f"tag:{MARK}/"  # the id prefix a fragment is rendered with
_MARK_BYTES = MARK.encode()
_MARK_ID_BYTES = _MARK_ID.encode()
# The feed fragments are rendered in; its own bytes are never used, only its entries.
_MARK_SPEC = FeedSpec(slug="fragments", title="", description="", base_url="http://x", ttl=60)
# Where feedgen puts entries: after all channel/feed metadata, at these indents (pretty).
_RSS_ITEM = b"    <item>\n"
_RSS_END = b"  </channel>\n"
_ATOM_ENTRY = b"  <entry>\n"
_ATOM_END = b"</feed>\n"


def render_fragments(papers: Sequence[StoredPaper]) -> dict[int, Fragment]:
    """Fragments for ``papers``, by row id: one feedgen pass per format for all of them."""
    if not papers:
        return {}
    entries = [prepare_entry(p) for p in papers]
    rss = rss_feed(_MARK_SPEC, EPOCH)
    atom = atom_feed(_MARK_SPEC, EPOCH)
    for entry in entries:
        add_rss_entry(rss, entry, _MARK_ID + entry.key, MARK)
        add_atom_entry(atom, entry, _MARK_ID + entry.key, MARK)
    items = _split(rss.rss_str(pretty=True), _RSS_ITEM, _RSS_END)
    atoms = _split(atom.atom_str(pretty=True), _ATOM_ENTRY, _ATOM_END)
    if not len(items) == len(atoms) == len(papers):  # feedgen's layout is not what we know
        raise RuntimeError("feedgen output could not be split into entries")
    return {
        p.rowid: Fragment(p.rev, e.updated, i, a)
        for p, e, i, a in zip(papers, entries, items, atoms, strict=True)
    }


def assemble_rss(spec: FeedSpec, fragments: Sequence[Fragment]) -> bytes:
    """The RSS feed of ``spec`` listing ``fragments`` in order (newest first)."""
    shell = rss_feed(spec, feed_updated(f.updated for f in fragments)).rss_str(pretty=True)
    category = b"<category>%s</category>"
    topic = _Topic(spec, category % _MARK_BYTES, category % _text(clean(spec.slug)))
    return _splice(shell, _RSS_END, [topic.put(f.rss) for f in fragments])


def assemble_atom(spec: FeedSpec, fragments: Sequence[Fragment]) -> bytes:
    """The Atom feed of ``spec`` listing ``fragments`` in order (newest first)."""
    shell = atom_feed(spec, feed_updated(f.updated for f in fragments)).atom_str(pretty=True)
    category = b'<category term="%s"/>'
    topic = _Topic(spec, category % _MARK_BYTES, category % _attr(clean(spec.slug)))
    return _splice(shell, _ATOM_END, [topic.put(f.atom) for f in fragments])


class _Topic:
    """Puts one topic where a fragment has the marker: its entry id and first category."""

    def __init__(self, spec: FeedSpec, marked: bytes, category: bytes) -> None:
        self.prefix = _text(id_prefix(spec))
        self.marked = marked
        # feedgen drops an empty category, and lists a repeated one once: the topic's
        # line then goes, or the keyword's later copy of it does.
        self.category = category if clean(spec.slug) else None

    def put(self, fragment: bytes) -> bytes:
        out = fragment.replace(_MARK_ID_BYTES, self.prefix, 1)
        if self.category is None:
            return _drop_line(out, out.find(self.marked), self.marked)
        out = out.replace(self.marked, self.category, 1)
        again = out.find(self.category, out.index(self.category) + len(self.category))
        return _drop_line(out, again, self.category) if again >= 0 else out


def _drop_line(text: bytes, at: int, element: bytes) -> bytes:
    """``text`` without the pretty-printed line (newline, indent, element) found at ``at``."""
    start = text.rindex(b"\n", 0, at)
    return text[:start] + text[at + len(element) :]


def _split(document: bytes, opening: bytes, closing: bytes) -> list[bytes]:
    """The entries of a rendered feed, each from its opening line through its closing one.

    Markup in a paper's text is always escaped, so an entry's opening tag at the start of
    a line can only be a real entry.
    """
    first = document.find(opening)
    if first < 0:
        return []
    body = document[first : document.rindex(closing)]
    return [opening + piece for piece in body.split(opening)[1:]]


def _splice(shell: bytes, closing: bytes, entries: list[bytes]) -> bytes:
    at = shell.rindex(closing)
    return b"".join([shell[:at], *entries, shell[at:]])


def _text(value: str) -> bytes:
    """``value`` escaped as lxml escapes element text."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode()


def _attr(value: str) -> bytes:
    """``value`` escaped as lxml escapes an attribute in double quotes."""
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace('"', "&quot;").encode()
