"""A synthetic Daily Papers archive and topic set, in the real API shape, for the benchmark.

Deterministic for a seed. Sizes follow the real digest: titles of 6-16 words, abstracts of
120-260 words over a Zipf-distributed vocabulary, 2-12 authors from a large pool, five HF
keywords, an organization on a third of the papers, 0-100 papers per weekday and none on
weekends, and about one paper in a hundred featured again on a later day.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from tests.fakes.hf_data import entry

SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ren",
    "to",
    "va",
    "shi",
    "qu",
    "el",
    "dor",
    "ban",
    "tes",
    "pil",
    "mar",
    "co",
    "nu",
    "fe",
    "ra",
    "zen",
    "gal",
    "hex",
    "ion",
    "ly",
]


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


@dataclass
class Archive:
    days: dict[date, list[dict[str, Any]]]
    vocabulary: list[str]
    authors: list[str]
    organizations: list[str]
    keywords: list[str]

    @property
    def papers(self) -> int:
        return sum(len(v) for v in self.days.values())


class Words:
    """Zipf-like sampling: a few words are everywhere, most are rare, as in real abstracts."""

    def __init__(self, rng: random.Random, vocabulary: list[str]) -> None:
        self.rng = rng
        self.vocabulary = vocabulary
        self.weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(vocabulary))))

    def take(self, n: int) -> list[str]:
        return self.rng.choices(self.vocabulary, cum_weights=self.weights, k=n)


def weekdays_until(last: date, count: int) -> list[date]:
    days: list[date] = []
    day = last
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return sorted(days)


def build_archive(*, papers: int, days: int, last_day: date, seed: int = 7) -> Archive:
    rng = random.Random(seed)
    vocabulary = _vocabulary(rng, 5000)
    words = Words(rng, vocabulary)
    authors = [
        f"{rng.choice(vocabulary).title()} {rng.choice(vocabulary).title()}" for _ in range(20000)
    ]
    organizations = [f"{rng.choice(vocabulary).title()} Lab" for _ in range(200)]
    keywords = [" ".join(words.take(rng.randint(1, 2))) for _ in range(2000)]
    featured = weekdays_until(last_day, days)
    # 0-100 papers a day, scaled so the total is exactly `papers`.
    raw = [rng.randint(0, 100) for _ in featured]
    scale = papers / max(1, sum(raw))
    counts = [min(100, round(c * scale)) for c in raw]
    while sum(counts) != papers:
        i = rng.randrange(len(counts))
        if sum(counts) < papers and counts[i] < 100:
            counts[i] += 1
        elif sum(counts) > papers and counts[i] > 0:
            counts[i] -= 1
    out: dict[date, list[dict[str, Any]]] = {}
    serial = 0
    for day, count in zip(featured, counts, strict=True):
        today = []
        for _ in range(count):
            serial += 1
            title = " ".join(words.take(rng.randint(6, 16))).capitalize()
            abstract = " ".join(words.take(rng.randint(120, 260))).capitalize() + "."
            today.append(
                entry(
                    f"{day:%y%m}.{serial % 100000:05d}",
                    title,
                    day,
                    abstract=abstract,
                    authors=tuple(rng.sample(authors, rng.randint(2, 12))),
                    upvotes=int(rng.paretovariate(1.2)) - 1,
                    comments=rng.randint(0, 4),
                    organization=rng.choice(organizations) if rng.random() < 0.33 else None,
                    keywords=tuple(rng.sample(keywords, 5)),
                )
            )
        out[day] = today
    # About 1% of papers are featured again on the next day (the real archive has repeats).
    for earlier, later in itertools.pairwise(featured):
        repeats = [e for e in out[earlier] if rng.random() < 0.01]
        if repeats and len(out[later]) < 100:
            out[later].extend(repeats[: 100 - len(out[later])])
    return Archive(out, vocabulary, authors, organizations, keywords)


def topic_queries(archive: Archive, count: int, seed: int = 11) -> list[str]:
    """Realistic topic queries: terms, phrases, fields, wildcards, NOT, a few regexes."""
    rng = random.Random(seed)
    # Mid-frequency words make topics that catch some papers, not all or none.
    # (the vocabulary's order is its frequency rank: skip the very common head)
    common = archive.vocabulary[30:1500]

    def w() -> str:
        return rng.choice(common)

    templates = [
        lambda: f'"{w()} {w()}" OR {w()}',
        lambda: f"title:{w()} AND ({w()} OR {w()}) -{w()}",
        lambda: f'{w()[:4]}* AND keyword:"{rng.choice(archive.keywords)}"',
        lambda: f"({w()} OR {w()} OR {w()}) AND NOT abstract:{w()}",
        lambda: (
            f'author:"{rng.choice(archive.authors)}" OR org:"{rng.choice(archive.organizations)}"'
        ),
        lambda: f"abstract:{w()} {w()} OR title:{w()[:3]}*",
        lambda: f"{w()} AND upvotes:>=5",
        lambda: f'keyword:{w()} OR "{w()} {w()} {w()}"',
    ]
    queries = [rng.choice(templates)() for _ in range(count)]
    for i in range(0, count, 25):  # a few regexes
        queries[i] = f"/\\b{w()}[- ]?{w()[:3]}/ OR title:{w()}"
    return queries


def topics_toml(queries: list[str]) -> str:
    lines = []
    for n, query in enumerate(queries):
        lines.append(f"[topics.topic-{n:03d}]")
        lines.append(f'title = "Topic {n}"')
        lines.append("query = '" + query.replace("'", "") + "'")
        lines.append("")
    return "\n".join(lines)
