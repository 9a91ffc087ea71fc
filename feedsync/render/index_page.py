"""Render the human-facing ``index.html``: pure, deterministic, self-contained.

Autodiscovery ``<link rel="alternate">`` tags in the head let browsers and readers find
every topic's feeds from the page URL alone.

One page lists every topic with its query, its subscribe links and its newest papers.
Rules, in order:

1. Everything that comes from input (titles, authors, queries, slugs, URLs) passes through
   ``html.escape(..., quote=True)``; the markup is ours alone. A Content-Security-Policy
   that forbids scripts backs this up.
2. Only http(s) URLs become links; anything else is shown as text or dropped.
3. No JavaScript, no external assets: inline CSS only, light and dark via
   ``prefers-color-scheme``, one column that fits a phone. The markup is polyglot
   (void elements closed, no raw "<" or "&" in the CSS), so it also parses as XML, which
   is how the tests prove that no input can break it.
4. No clock: the date shown is ``generated`` when the caller passes one, else the newest
   featured day in the data, so identical input gives identical bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from html import escape

from feedsync.models import Paper, StoredPaper
from feedsync.render.feeds import UNTITLED, FeedSpec, clean, featured_day, http_url, paper_link

LATEST = 10  # papers listed per topic
SHOWN_AUTHORS = 3

Section = tuple[FeedSpec, str, Sequence[StoredPaper]]

_CSS = """
:root { color-scheme: light dark; --fg: #1d1f23; --muted: #5b616b; --bg: #fdfdfc;
  --card: #f3f4f6; --line: #dfe2e6; --link: #0b57d0; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e7ea; --muted: #a3a8b1; --bg: #15171a; --card: #1f2226;
    --line: #30343a; --link: #8ab4f8; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 46rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 0 0 .5rem; }
h2 { font-size: 1.25rem; margin: 0 0 .4rem; }
h2 a { color: inherit; text-decoration: none; }
a { color: var(--link); }
p { margin: .4rem 0; }
.muted, .meta { color: var(--muted); }
.meta { font-size: .9rem; }
nav ul { padding-left: 1.2rem; }
section { background: var(--card); border: 1px solid var(--line); border-radius: .6rem;
  padding: 1rem 1.1rem; margin: 1.2rem 0; }
code { font: .9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  overflow-wrap: anywhere; }
.subscribe a { display: inline-block; margin-right: .8rem; font-weight: 600; }
ol { padding-left: 1.3rem; margin: .6rem 0 0; }
li { margin: .5rem 0; overflow-wrap: anywhere; }
footer { margin-top: 2rem; font-size: .85rem; color: var(--muted); }
""".strip()

# Defence in depth behind the escaping: no script can run, nothing external can load.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'"


def _a(url: str | None, label: str) -> str:
    """A link when ``url`` is http(s), else the escaped label alone."""
    text = escape(label, quote=True)
    if (safe := http_url(url)) is None:
        return text
    return f'<a href="{escape(safe, quote=True)}">{text}</a>'


def short_authors(paper: Paper) -> str:
    """At most three names, then "et al." when the paper has more."""
    names = [n for n in (clean(a) for a in paper.authors) if n]
    total = max(len(names), paper.author_count or 0)
    if not names:
        return clean(paper.organization)
    shown = ", ".join(names[:SHOWN_AUTHORS])
    return f"{shown} et al." if total > SHOWN_AUTHORS or total > len(names) else shown


def _paper_item(stored: StoredPaper) -> str:
    paper = stored.paper
    day = featured_day(stored).isoformat()
    meta = [f'<time datetime="{day}">{day}</time>']
    if authors := short_authors(paper):
        meta.insert(0, escape(authors, quote=True))
    title = clean(paper.title) or UNTITLED
    return (
        f'<li>{_a(paper_link(paper), title)}<br /><span class="meta">{" · ".join(meta)}</span></li>'
    )


def _section(
    spec: FeedSpec,
    query: str,
    papers: Sequence[StoredPaper],
    opml_url: str,
    items: dict[StoredPaper, str],
) -> str:
    slug = escape(clean(spec.slug), quote=True)
    title = escape(clean(spec.title) or clean(spec.slug), quote=True)
    lines = [
        f'<section id="{slug}">',
        f'<h2><a href="#{slug}">{title}</a></h2>',
    ]
    if text := clean(query):
        lines.append(f"<p>Query: <code>{escape(text, quote=True)}</code></p>")
    lines.append(
        '<p class="subscribe">'
        + " ".join([_a(spec.rss_url, "RSS"), _a(spec.atom_url, "Atom"), _a(opml_url, "OPML")])
        + "</p>"
    )
    if papers:
        lines.append("<ol>")
        for paper in papers[:LATEST]:
            # Topics share papers: each is made into an item once per page.
            if paper not in items:
                items[paper] = _paper_item(paper)
            lines.append(items[paper])
        lines.append("</ol>")
        if len(papers) > LATEST:
            lines.append(f'<p class="muted">…and {len(papers) - LATEST} more in the feed.</p>')
    else:
        lines.append('<p class="muted">No papers yet.</p>')
    lines.append("</section>")
    return "\n".join(lines)


def _as_of(sections: Sequence[Section], generated: datetime | None) -> str:
    if generated is not None:
        moment = generated if generated.tzinfo else generated.replace(tzinfo=UTC)
        return f"Updated {moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC."
    days: list[date] = [featured_day(p) for _, _, papers in sections for p in papers]
    return f"Newest paper featured on {max(days).isoformat()}." if days else ""


def _autodiscovery(spec: FeedSpec) -> str:
    title = escape(clean(spec.title) or clean(spec.slug), quote=True)
    feeds = (
        (spec.rss_url, "application/rss+xml", "RSS"),
        (spec.atom_url, "application/atom+xml", "Atom"),
    )
    return "\n".join(
        f'<link rel="alternate" type="{mime}" title="{title} ({label})" '
        f'href="{escape(safe, quote=True)}" />'
        for url, mime, label in feeds
        if (safe := http_url(url))
    )


def render_index(
    sections: Sequence[Section], *, title: str, opml_url: str, generated: datetime | None
) -> bytes:
    """The index page; each section is (feed, the topic's query text, papers newest first)."""
    page_title = escape(clean(title) or "feedsync", quote=True)
    toc = "\n".join(
        f'<li><a href="#{escape(clean(spec.slug), quote=True)}">'
        f"{escape(clean(spec.title) or clean(spec.slug), quote=True)}</a></li>"
        for spec, _, _ in sections
    )
    as_of = _as_of(sections, generated)
    items: dict[StoredPaper, str] = {}
    parts = [
        "<!DOCTYPE html>",
        '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">',
        "<head>",
        '<meta charset="utf-8" />',
        '<meta name="viewport" content="width=device-width, initial-scale=1" />',
        '<meta name="color-scheme" content="light dark" />',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}" />',
        f"<title>{page_title}</title>",
        *(_autodiscovery(spec) for spec, _, _ in sections),
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        "<main>",
        "<header>",
        f"<h1>{page_title}</h1>",
        "<p>Hugging Face Daily Papers, filtered into one feed per topic. Subscribe to a "
        "topic's RSS or Atom feed in any feed reader, or import every topic at once "
        f"with the {_a(opml_url, 'OPML file')}.</p>",
        f'<p class="muted">{as_of}</p>' if as_of else "",
        "</header>",
        f"<nav>\n<ul>\n{toc}\n</ul>\n</nav>" if sections else '<p class="muted">No topics.</p>',
        *(_section(spec, query, papers, opml_url, items) for spec, query, papers in sections),
        "<footer>Generated by feedsync from the Hugging Face Daily Papers digest.</footer>",
        "</main>",
        "</body>",
        "</html>",
    ]
    return ("\n".join(p for p in parts if p) + "\n").encode("utf-8")
