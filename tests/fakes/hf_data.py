"""Made-up Daily Papers entries in the exact API shape (2026 style), for tests and benchmarks."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

WORDS = [
    "sparse",
    "lattice",
    "planner",
    "routing",
    "token",
    "diffusion",
    "transformer",
    "agent",
    "reward",
    "policy",
    "robot",
    "grasping",
    "locomotion",
    "quantization",
    "distillation",
    "speculative",
    "decoding",
    "cache",
    "memory",
    "retrieval",
    "benchmark",
    "dataset",
    "vision",
    "language",
    "model",
    "reasoning",
    "chain",
    "thought",
    "proof",
    "mathematics",
    "code",
    "synthesis",
    "video",
    "audio",
    "speech",
    "graph",
    "kernel",
    "attention",
    "mixture",
    "experts",
    "scaling",
    "law",
    "curriculum",
    "feedback",
    "preference",
    "alignment",
    "safety",
    "evaluation",
    "latent",
    "manifold",
    "sampling",
    "denoising",
]


def entry(
    arxiv_id: str,
    title: str,
    day: date,
    *,
    abstract: str = "We study a made-up problem with a made-up method.",
    authors: tuple[str, ...] = ("Ana Ruiz", "Bo Chen"),
    upvotes: int = 3,
    comments: int = 0,
    organization: str | None = None,
    keywords: tuple[str, ...] = (),
    published: date | None = None,
) -> dict[str, Any]:
    published = published or day - timedelta(days=2)
    paper: dict[str, Any] = {
        "id": arxiv_id,
        "authors": [
            {"_id": f"{i:024x}", "name": a, "hidden": False} for i, a in enumerate(authors)
        ],
        "publishedAt": f"{published.isoformat()}T17:59:02.000Z",
        "submittedOnDailyAt": f"{day.isoformat()}T02:14:40.512Z",
        "title": title,
        "summary": abstract,
        "upvotes": upvotes,
        "discussionId": f"{abs(hash(arxiv_id)) % 16**24:024x}",
        "ai_summary": f"A summary of {title.lower()}.",
        "ai_keywords": list(keywords),
    }
    top: dict[str, Any] = {
        "paper": paper,
        "publishedAt": f"{published.isoformat()}T12:59:02.000Z",
        "title": " ".join(title.split()),
        "summary": abstract,
        "thumbnail": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{arxiv_id}.png",
        "numComments": comments,
        "submittedBy": {"name": "curator", "fullname": "Curator", "type": "user"},
        "isAuthorParticipating": False,
    }
    if organization:
        org = {"name": organization.lower().replace(" ", "-"), "fullname": organization}
        paper["organization"] = org
        top["organization"] = org
    return top


def random_day(rng: random.Random, day: date, count: int, start: int) -> list[dict[str, Any]]:
    """``count`` entries with ids from ``start``, plausible sizes, for ``day``."""
    out = []
    for n in range(count):
        title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).title()
        abstract = " ".join(rng.choice(WORDS) for _ in range(rng.randint(120, 250)))
        authors = tuple(
            f"Author{rng.randint(1, 5000)} Name{rng.randint(1, 900)}"
            for _ in range(rng.randint(2, 10))
        )
        keywords = tuple(rng.sample(WORDS, 5))
        arxiv_id = f"{day:%y%m}.{start + n:05d}"
        out.append(
            entry(
                arxiv_id,
                title,
                day,
                abstract=abstract,
                authors=authors,
                upvotes=rng.randint(0, 60),
                comments=rng.randint(0, 5),
                keywords=keywords,
            )
        )
    return out
