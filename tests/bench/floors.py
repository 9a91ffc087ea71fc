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

# Fetching the refetched days as a run does: read the config and the stored validators, and
# ask for each day conditionally; a day that changed is read page by page. argv: config,
# store, number of days.
_FETCH = """
import json, sqlite3, sys, tomllib
import click, httpx
with open(sys.argv[1], "rb") as f:
    api = tomllib.load(f)["source"]["api_url"].rstrip("/")
db = sqlite3.connect(sys.argv[2])
days = [d for (d,) in db.execute(
    "SELECT DISTINCT day FROM fetches ORDER BY day DESC LIMIT ?", (int(sys.argv[3]),))]
papers = []
# As feedsync does, the CA bundle is loaded only for an https source (not the bench's).
with httpx.Client(verify=api.startswith("https:")) as client:
    for day in days:
        for page in range(100):
            url = f"{api}/api/daily_papers?date={day}&limit=100" + (f"&p={page}" if page else "")
            row = db.execute("SELECT etag FROM fetches WHERE url = ?", (url,)).fetchone()
            answer = client.get(url, headers={"If-None-Match": row[0]} if row and row[0] else {})
            if answer.status_code == 304:
                break
            batch = json.loads(answer.content)
            papers += batch
            if len(batch) < 100:
                break
db.close()
"""

# An idle check: every day answers 304, one request each.
LEAST_IDLE_CHECK = _FETCH

# A run with new papers: the fetch, then the feed libraries render each new paper's entry
# once, as RSS and as Atom, and as many files as the run wrote are written and renamed
# into place (no fsync). No parsing into records, storing, matching or splicing. argv:
# config, store, number of days, new papers, files, output directory.
LEAST_NEW_PAPERS_RUN = (
    _FETCH
    + """
import os
import lxml.etree
from feedgen.feed import FeedGenerator
words = "sparse adaptive token routing across mixture experts under noisy labels".split()
abstract = " ".join(words[i % len(words)] for i in range(180))
feed = FeedGenerator()
feed.id("http://127.0.0.1:8080/topic.atom")
feed.title("A topic")
feed.link(href="http://127.0.0.1:8080/topic.atom", rel="self")
feed.description("Papers of a topic")
for n in range(int(sys.argv[4])):
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
rendered = [feed.rss_str(), feed.atom_str()]
for n in range(int(sys.argv[5])):
    path = os.path.join(sys.argv[6], f"feed-{n}.xml")
    with open(path + ".tmp", "wb") as f:
        f.write(rendered[n % 2])
    os.replace(path + ".tmp", path)
"""
)

# The same uploads as a bucket run's, with obstore alone: one client, one PUT per file with
# its two headers, nothing decided, rendered or recorded. argv: endpoint, bucket, prefix,
# access key, secret key, the folder holding the files, then their names.
LEAST_BUCKET_UPLOAD = """
import os, sys
import obstore
from obstore.store import S3Store
endpoint, bucket, prefix, key, secret, folder = sys.argv[1:7]
store = S3Store(bucket, prefix=prefix, endpoint=endpoint, region="us-east-1",
    virtual_hosted_style_request=False, client_options={"allow_http": True},
    credential_provider=lambda: {"access_key_id": key, "secret_access_key": secret,
                                 "token": None, "expires_at": None})
types = {".rss": "application/rss+xml; charset=utf-8", ".atom": "application/atom+xml; charset=utf-8",
         ".opml": "text/x-opml; charset=utf-8", ".html": "text/html; charset=utf-8"}
for name in sys.argv[7:]:
    with open(os.path.join(folder, name), "rb") as f:
        data = f.read()
    headers = {"Content-Type": types[os.path.splitext(name)[1]], "Cache-Control": "public, max-age=3600"}
    obstore.put(store, name, data, attributes=headers, use_multipart=False)
"""
