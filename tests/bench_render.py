"""Time rendering 100 topics x (RSS + Atom) x 50 entries; target: 2 s or less.

Run it directly (pytest does not collect it): ``.venv/bin/python tests/bench_render.py``

Every topic gets its own 50 papers, the worst case: in a real run topics share papers and
the renderer prepares a shared paper only once.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

from feedsync.models import Paper, StoredPaper
from feedsync.render.feeds import FeedSpec, render_atom, render_rss

TOPICS = 100
ENTRIES = 50
BUDGET_SECONDS = 2.0


def papers(topic: int, count: int) -> list[StoredPaper]:
    seen = datetime(2026, 3, 6, 8, 0, tzinfo=UTC)
    out = []
    for i in range(count):
        arxiv_id = f"26{topic:02d}.{i:05d}"
        paper = Paper(
            key=arxiv_id,
            arxiv_id=arxiv_id,
            title=f"A Made-Up Study of Sparse Planning, Part {topic}-{i}",
            # About the length of a real abstract, hard-wrapped like arXiv's.
            abstract="\n".join(["We study a made-up planner on a lattice of sketches."] * 20),
            authors=tuple(f"Author {i}-{j}" for j in range(8)),
            author_count=8,
            organization="Example Lab",
            published=seen - timedelta(days=2),
            featured=date(2026, 3, 6) - timedelta(days=i // 10),
            ai_summary="A planner sketched on a lattice.",
            ai_keywords=("planning", "sparse rewards", "lattices"),
            github_repo=f"https://github.com/example/repo-{i}",
            project_page="https://example.org/project",
        )
        out.append(StoredPaper(paper, i, seen, seen, seen))
    return out


def main() -> None:
    topics = [
        (
            FeedSpec(f"topic-{n}", f"Topic {n}", f"Papers matching: t{n}", "https://f.example", 60),
            papers(n, ENTRIES),
        )
        for n in range(TOPICS)
    ]
    start = time.perf_counter()
    size = 0
    for spec, items in topics:
        size += len(render_rss(spec, items)) + len(render_atom(spec, items))
    elapsed = time.perf_counter() - start
    verdict = "OK" if elapsed <= BUDGET_SECONDS else "OVER BUDGET"
    print(
        f"{TOPICS} topics x (RSS + Atom) x {ENTRIES} entries: {elapsed:.2f} s, "
        f"{size / 1e6:.1f} MB, {elapsed / (TOPICS * 2 * ENTRIES) * 1e6:.0f} us/entry [{verdict}]"
    )


if __name__ == "__main__":
    main()
