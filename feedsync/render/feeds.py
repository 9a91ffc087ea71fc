"""Render stored papers into RSS 2.0, Atom 1.0 and OPML 2.0 bytes: pure, no I/O, no clock.

The same input always gives the same bytes, so the publisher can skip unchanged files and
readers keep their ETag. Rule order for every entry:

1. Every string is made XML-safe (``xml_safe``) and single-line fields are collapsed
   before feedgen sees it: one NUL in one abstract must not break the whole feed.
2. Ids are per-topic tag URIs (``tag:<host>,2026:<slug>/<key>``, RFC 4151), because
   newsboat and Zotero treat ids globally and would hide a paper listed in two topics.
   They never contain a title, a date or an arXiv version.
3. Dates come from the data alone, never from the store's clock: published = updated =
   the featured day (00:00 UTC), else the arXiv date. The feed's date (Atom ``updated``,
   RSS ``lastBuildDate``) is the newest entry's, or the epoch if empty. So two stores
   built at different times from the same digests write the same bytes. Only a paper
   whose digest gives no date at all (a plain-text copy imported without a day) falls
   back to when the store first saw it: nothing else is known of it.
4. Entries have one alternate link (arXiv abstract, else a Hugging Face search) and, with
   an arXiv id, the PDF as an enclosure: ``<enclosure>`` in RSS, ``<link rel="enclosure">``
   in Atom. feedgen drops ``rel`` on extra Atom entry links (feedgen #135), so that one
   is added by an entry extension of ours (``_AtomEnclosure``).
5. Authors are the paper's named authors, else its organization, else none: no
   placeholder name (the feed's own author, feedsync, covers RFC 4287's rule).
6. Live counts (upvotes, comments) are never rendered: they would re-flag entries unread.
7. The entry HTML is built with ``html.escape`` from escaped parts only, and only http(s)
   URLs become links.
8. With a WebSub hub, the feed links to it (``rel="hub"``: an Atom link, an atom:link in
   RSS) right after its ``rel="self"``, so the channel header is the same whatever the
   entries, and spliced feeds (fragments.py) stay byte-identical to whole renders.

RSS and Atom use separate FeedGenerators, so each gets its own ``rel="self"`` link and the
RSS channel ``<link>`` (feedgen takes the last link added) is the HTML page.

``render_rss`` / ``render_atom`` render a whole feed and define its bytes. Runs build the
same bytes from cached entries (fragments.py), which tests hold to these two.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from feedsync.models import Paper, StoredPaper
from feedsync.text import collapse, xml_safe

# The date part of every entry id. RFC 4151: a tag's date pins who owned the authority
# name when the tag was minted. It is part of every id, so it must never change.
TAG_DATE = "2026"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HF_SEARCH = "https://huggingface.co/papers?q="
OPML_DOCS = "http://opml.org/spec2.opml"
UNTITLED = "Untitled paper"
GENERATOR = "feedsync"  # no version: an upgrade alone must not rewrite every feed
PDF_TYPE = "application/pdf"
_ATOM_NS = "http://www.w3.org/2005/Atom"

_BLANK_LINES = re.compile(r"\n\s*\n")
# DEL and the C1 controls (NEL aside, which is whitespace) are legal XML but discouraged
# (XML 1.0 §2.2), and feedparser reads them as cp1252 ("\x80" shows as "€"). In a paper
# they can only be mojibake, so they go too.
_CONTROLS = re.compile("[\x7f-\x84\x86-\x9f]")
_NOT_IN_URL = re.compile(r"[\s\x7f-\x9f]")
# Characters a tag URI's specific part may hold unescaped (RFC 4151 pchar, plus "/").
_TAG_SAFE = "/:@!$&'()*+,;=-._~"


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """What one topic feed is called and where it lives.

    ``base_url`` is the public URL of the output directory; a trailing slash is dropped.
    ``html_url`` defaults to the topic's section of the index page.
    ``tag_authority`` is the host in entry ids; it defaults to ``base_url``'s host and
    should be pinned in config before moving the feeds to another host, since ids must
    not change when feeds are relocated (RFC 4287 §4.2.6).
    ``hub`` is the WebSub hub readers may subscribe at (rule 8), if any.
    """

    slug: str
    title: str
    description: str
    base_url: str
    ttl: int
    html_url: str | None = None
    tag_authority: str | None = None
    hub: str | None = None

    def __post_init__(self) -> None:
        # Frozen, so normalize once here: str() also accepts pydantic's HttpUrl, which
        # ends in "/", and every derived URL then has exactly one slash.
        object.__setattr__(self, "base_url", str(self.base_url).rstrip("/"))
        if http_url(self.base_url) is None:
            raise ValueError(f"base_url must be an absolute http(s) URL, not {self.base_url!r}")
        if not self.slug or self.slug.startswith(".") or any(c in self.slug for c in "/\\\x00"):
            raise ValueError(f"slug {self.slug!r} cannot be a file name")
        if self.html_url is None:
            object.__setattr__(self, "html_url", f"{self.base_url}/index.html#{self.slug}")
        elif http_url(self.html_url) is None:
            raise ValueError(f"html_url must be an absolute http(s) URL, not {self.html_url!r}")
        if self.hub is not None and http_url(self.hub) is None:
            raise ValueError(f"hub must be an absolute http(s) URL, not {self.hub!r}")

    @property
    def rss_url(self) -> str:
        return f"{self.base_url}/{self.slug}.rss"

    @property
    def atom_url(self) -> str:
        return f"{self.base_url}/{self.slug}.atom"

    @property
    def page_url(self) -> str:
        """``html_url`` as a plain str: the page a reader's "open website" goes to."""
        return self.html_url or self.base_url

    @property
    def authority(self) -> str:
        return self.tag_authority or urlsplit(self.base_url).hostname or "localhost"


@dataclass(frozen=True, slots=True)
class Entry:
    """One paper, cleaned and decided once; only the id and first category vary by topic."""

    key: str  # the paper's key, escaped for a tag URI
    title: str
    link: str
    published: datetime
    updated: datetime
    authors: tuple[str, ...]
    keywords: tuple[str, ...]
    summary: str
    html: str
    pdf_url: str | None
    doi: str | None


# --- small pure helpers, shared with pages.py ---------------------------------------------


def _safe(text: str) -> str:
    return _CONTROLS.sub("", xml_safe(text))


def clean(text: str | None) -> str:
    """A single-line field as any output shows it: XML-safe, no controls, one-line.

    Titles round-trip exactly as ``clean(title)`` (or ``UNTITLED`` when that is empty).
    """
    return collapse(_safe(text)) if text else ""


def paragraphs(text: str | None) -> list[str]:
    """The paragraphs of a multi-line field (abstracts): blank lines split, hard wraps join."""
    if not text:
        return []
    return [p for p in (clean(part) for part in _BLANK_LINES.split(_safe(text))) if p]


def http_url(value: str | None) -> str | None:
    """``value`` if it is an absolute http(s) URL without whitespace, else None.

    Everything else (``javascript:``, ``data:``, relative paths) is never linked.
    """
    if not value:
        return None
    url = xml_safe(value).strip()
    if not url or _NOT_IN_URL.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def paper_link(paper: Paper) -> str:
    """The one link of an entry: the arXiv abstract, else a Hugging Face papers search."""
    return paper.url or HF_SEARCH + quote_plus(clean(paper.title) or UNTITLED)


def _tag_part(text: str) -> str:
    return quote(xml_safe(text), safe=_TAG_SAFE)


def id_prefix(spec: FeedSpec) -> str:
    """What every entry id of a topic starts with: ``tag:<host>,2026:<slug>/``."""
    return f"tag:{spec.authority},{TAG_DATE}:{_tag_part(spec.slug)}/"


def _tag(spec: FeedSpec, key: str) -> str:
    return id_prefix(spec) + key


def entry_id(spec: FeedSpec, paper: Paper) -> str:
    """The per-topic entry id, e.g. ``tag:feeds.example.org,2026:llm/2603.01234``."""
    return _tag(spec, _tag_part(paper.key))


def author_names(paper: Paper) -> tuple[str, ...]:
    """The authors as shown: cleaned, empty names dropped."""
    return tuple(n for n in (clean(a) for a in paper.authors) if n)


def _utc(moment: datetime) -> datetime:
    # Naive values should not exist (models.py), but a naive one must not crash feedgen.
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(microsecond=0)


def published_at(stored: StoredPaper) -> datetime:
    """Featured day at 00:00 UTC, else the arXiv date; when the digest gave neither, when
    the store first saw it (rule 3)."""
    paper = stored.paper
    if paper.featured is not None:
        return datetime.combine(paper.featured, time(0, 0), tzinfo=UTC)
    return _utc(paper.published or stored.first_seen)


def featured_day(stored: StoredPaper) -> date:
    """The day shown for a paper in listings."""
    return published_at(stored).date()


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


# --- entry HTML -----------------------------------------------------------------------------


def _a(url: str, label: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>'


def _links(paper: Paper) -> list[str]:
    candidates = [
        ("Hugging Face", paper.hf_url or paper_link(paper)),
        ("arXiv", paper.url),
        ("PDF", paper.pdf_url),
        ("Code", paper.github_repo),
        ("Project page", paper.project_page),
    ]
    return [_a(url, label) for label, raw in candidates if (url := http_url(raw))]


def _entry_html(paper: Paper, abstract: Sequence[str], names: Sequence[str]) -> str:
    """The entry body: abstract, labelled AI summary, authors, organization, links.

    Every piece of input goes through ``html.escape``; the markup is ours alone.
    """
    parts = [f"<p>{html.escape(p)}</p>" for p in abstract]
    if not parts:
        parts.append("<p><em>No abstract available.</em></p>")
    if summary := clean(paper.ai_summary):
        parts.append(f"<p><strong>AI-generated summary:</strong> {html.escape(summary)}</p>")
    if names:
        more = " et al." if (paper.author_count or 0) > len(names) else ""
        parts.append(f"<p><strong>Authors:</strong> {html.escape(', '.join(names))}{more}</p>")
    if org := clean(paper.organization):
        parts.append(f"<p><strong>Organization:</strong> {html.escape(org)}</p>")
    if links := _links(paper):
        parts.append(f"<p>{' · '.join(links)}</p>")
    return "\n".join(parts)


def prepare_entry(stored: StoredPaper) -> Entry:
    paper = stored.paper
    published = published_at(stored)
    abstract = paragraphs(paper.abstract)
    names = author_names(paper)
    organization = clean(paper.organization)
    credited = names or ((organization,) if organization else ())
    return Entry(
        key=_tag_part(paper.key),
        title=clean(paper.title) or UNTITLED,
        link=paper_link(paper),
        published=published,
        updated=published,
        authors=credited,
        keywords=tuple(clean(k) for k in paper.ai_keywords),
        summary="\n\n".join(abstract) or clean(paper.ai_summary),
        html=_entry_html(paper, abstract, names),
        pdf_url=http_url(paper.pdf_url),
        doi=clean(paper.doi) or None,
    )


# Whole-feed rendering (render_rss / render_atom) meets a paper in several topics and in
# both formats; preparing it once is most of that time. Pure function of a frozen value, so
# the cache cannot go stale. Runs never use it: they prepare each new paper once
# (fragments.py), and a daemon would otherwise keep the last 2,048 papers and their entry
# HTML in memory for good.
_prepared = functools.lru_cache(maxsize=2048)(prepare_entry)


# --- feeds ----------------------------------------------------------------------------------


class _HubLink:
    """A feedgen feed extension: the WebSub hub link, placed right after ``rel="self"``
    (an Atom ``<link>``, an ``<atom:link>`` in RSS), wherever feedgen put that."""

    href = ""

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, feed: Any) -> Any:
        self._after_self(feed, "link", {"href": self.href, "rel": "hub"})
        return feed

    def extend_rss(self, rss: Any) -> Any:
        tag = f"{{{_ATOM_NS}}}link"
        self._after_self(rss.find("channel"), tag, {"href": self.href, "rel": "hub"})
        return rss

    @staticmethod
    def _after_self(parent: Any, tag: str, attributes: dict[str, str]) -> None:
        from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs

        own = next(e for e in parent.iterfind(tag) if e.get("rel") == "self")
        own.addnext(etree.Element(tag, attributes))


class _AtomEnclosure:
    """A feedgen entry extension: the PDF as ``<link rel="enclosure">`` after the entry's
    link (feedgen drops ``rel`` on every entry link it writes itself)."""

    href = ""

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_rss(self, item: Any) -> Any:
        return item

    def extend_atom(self, entry: Any) -> Any:
        from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs

        link = etree.Element("link", {"href": self.href, "rel": "enclosure", "type": PDF_TYPE})
        entry.find("link").addnext(link)
        return entry


def _feed(spec: FeedSpec, updated: datetime, self_url: str, self_type: str) -> Any:
    # Imported here: commands that render nothing (an idle run) never load feedgen.
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    title = clean(spec.title) or clean(spec.slug)
    fg.id(spec.atom_url)
    fg.title(title)
    # RSS requires a description; the title is a better fallback than nothing.
    fg.description(clean(spec.description) or title)
    fg.author(name=GENERATOR)
    fg.generator(GENERATOR)
    fg.language("en")
    fg.ttl(spec.ttl)
    # Self first, alternate last: feedgen makes the last link the RSS channel <link>.
    fg.link(href=self_url, rel="self", type=self_type)
    fg.link(href=spec.page_url, rel="alternate", type="text/html")
    fg.updated(updated)
    if spec.hub:
        fg.register_extension("websub", _HubLink, None)
        fg.websub.href = xml_safe(spec.hub)
    return fg


def feed_updated(updated: Iterable[datetime]) -> datetime:
    """A feed's own date: its newest entry's, or the epoch when it is empty."""
    return max(updated, default=EPOCH)


def rss_feed(spec: FeedSpec, updated: datetime) -> Any:
    fg = _feed(spec, updated, spec.rss_url, "application/rss+xml")
    # RSS <author> needs an email address; dc:creator carries bare names.
    fg.load_extension("dc", atom=False, rss=True)
    return fg


def atom_feed(spec: FeedSpec, updated: datetime) -> Any:
    return _feed(spec, updated, spec.atom_url, "application/atom+xml")


def _base_entry(fg: Any, entry: Entry, entry_id: str, topic_term: str) -> Any:
    # feedgen is untyped: FeedGenerator and FeedEntry are Any to mypy.
    fe = fg.add_entry(order="append")
    fe.id(entry_id)  # id only: RSS guid gets isPermaLink="false"
    fe.title(entry.title)
    fe.link(href=entry.link, rel="alternate")
    fe.published(entry.published)
    fe.updated(entry.updated)
    fe.category([{"term": term} for term in _unique((topic_term, *entry.keywords))])
    return fe


def add_rss_entry(fg: Any, entry: Entry, entry_id: str, topic_term: str) -> None:
    fe = _base_entry(fg, entry, entry_id, topic_term)
    fe.description(entry.html)
    if entry.pdf_url:
        fe.enclosure(entry.pdf_url, 0, PDF_TYPE)
    dc = fe.dc
    for name in entry.authors:
        dc.dc_creator(name)
    if entry.doi:
        dc.dc_identifier(entry.doi)


def add_atom_entry(fg: Any, entry: Entry, entry_id: str, topic_term: str) -> None:
    fe = _base_entry(fg, entry, entry_id, topic_term)
    # No dc extension here: feedparser would list every author twice.
    for name in entry.authors:
        fe.author(name=name)
    if entry.summary:
        fe.summary(entry.summary)
    fe.content(entry.html, type="html")
    if entry.pdf_url:
        fe.register_extension("pdf", _AtomEnclosure, atom=True, rss=False)
        fe.pdf.href = entry.pdf_url


def render_rss(spec: FeedSpec, papers: Sequence[StoredPaper]) -> bytes:
    """RSS 2.0 for one topic; ``papers`` are newest first and stay in that order."""
    entries = [_prepared(p) for p in papers]
    fg = rss_feed(spec, feed_updated(e.updated for e in entries))
    for entry in entries:
        add_rss_entry(fg, entry, _tag(spec, entry.key), clean(spec.slug))
    data: bytes = fg.rss_str(pretty=True)
    return data


def render_atom(spec: FeedSpec, papers: Sequence[StoredPaper]) -> bytes:
    """Atom 1.0 for one topic; ``papers`` are newest first and stay in that order."""
    entries = [_prepared(p) for p in papers]
    fg = atom_feed(spec, feed_updated(e.updated for e in entries))
    for entry in entries:
        add_atom_entry(fg, entry, _tag(spec, entry.key), clean(spec.slug))
    data: bytes = fg.atom_str(pretty=True)
    return data


def render_opml(specs: Sequence[FeedSpec], *, title: str, base_url: str) -> bytes:
    """OPML 2.0 listing every topic once, by its RSS URL.

    One outline per topic, not two: importing both the RSS and the Atom URL would
    subscribe readers to every paper twice. ``type="rss"`` is what OPML uses for any feed;
    the Atom URLs are on the index page. ``base_url`` gives ``ownerId``, the page that
    describes these feeds. No ``dateCreated``: it would change the bytes on every run.
    """
    from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs

    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = clean(title) or GENERATOR
    etree.SubElement(head, "docs").text = OPML_DOCS
    if owner := http_url(str(base_url).rstrip("/") + "/index.html"):
        etree.SubElement(head, "ownerId").text = owner
    body = etree.SubElement(root, "body")
    for spec in specs:
        name = clean(spec.title) or clean(spec.slug)
        outline = etree.SubElement(body, "outline")
        outline.set("type", "rss")
        outline.set("text", name)
        outline.set("title", name)
        if description := clean(spec.description):
            outline.set("description", description)
        outline.set("xmlUrl", xml_safe(spec.rss_url))
        outline.set("htmlUrl", xml_safe(spec.page_url))
    data: bytes = etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True)
    return data
