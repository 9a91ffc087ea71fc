"""The least programs under scenarios 2 and 3, timed like feedsync's own runs.

Each does only what any implementation built on the project's chosen libraries must do
for that scenario, and nothing of feedsync's. Measured as a multiple of
``feedsync --version``, a least program over a target shows that no change inside
feedsync can meet it while it keeps those libraries.
"""

from __future__ import annotations

# What a run must import before it does anything: the CLI (click, as --version), the HTTP
# client with the transport it loads for its first request, and for a run that renders,
# the feed libraries.
IDLE_IMPORTS = "import click, httpx, httpcore"
RENDER_IMPORTS = IDLE_IMPORTS + ", feedgen.feed, lxml.etree"

# An idle check: read the config, read the stored validators of the refetched days, and
# ask for each day once, conditionally. argv: config, store, number of days.
LEAST_IDLE_CHECK = """
import sqlite3, sys, tomllib
import click, httpx
with open(sys.argv[1], "rb") as f:
    tomllib.load(f)
db = sqlite3.connect(sys.argv[2])
rows = db.execute(
    "SELECT url, etag FROM fetches ORDER BY day DESC LIMIT ?", (int(sys.argv[3]),)
).fetchall()
db.close()
with httpx.Client() as client:
    for url, etag in rows:
        assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
"""

# New papers: only the imports and rendering each new paper's entry once through feedgen,
# as RSS and as Atom; no fetching, parsing, storing, matching or writing. argv: papers.
LEAST_NEW_PAPERS_RENDER = """
import sys
import click, httpx, httpcore, lxml.etree
from feedgen.feed import FeedGenerator
words = "sparse adaptive token routing across mixture experts under noisy labels".split()
abstract = " ".join(words[i % len(words)] for i in range(180))
feed = FeedGenerator()
feed.id("http://127.0.0.1:8080/topic.atom")
feed.title("A topic")
feed.link(href="http://127.0.0.1:8080/topic.atom", rel="self")
feed.description("Papers of a topic")
for n in range(int(sys.argv[1])):
    entry = feed.add_entry()
    entry.id(f"https://arxiv.org/abs/2611.{n:05d}")
    entry.guid(f"https://arxiv.org/abs/2611.{n:05d}", permalink=True)
    entry.title(" ".join(words[n % 5 : n % 5 + 8]).capitalize())
    entry.link(href=f"https://arxiv.org/abs/2611.{n:05d}")
    entry.description(abstract)
    entry.content(f"<p>{abstract}</p>", type="CDATA")
    entry.author([{"name": f"Author {n} {k}"} for k in range(5)])
    entry.published("2026-11-27T00:00:00+00:00")
    for word in words[:5]:
        entry.category(term=word)
feed.rss_str()
feed.atom_str()
"""
