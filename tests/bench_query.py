"""Benchmark: re-match 50,000 synthetic papers against 100 topic queries.

Run it by hand (pytest does not collect it): ``.venv/bin/python tests/bench_query.py``.
The target is 100 ``Query.select`` calls over a ``MemoryIndex`` of 50k papers in at most
1 s; building the documents and the index is timed separately. ``--papers`` and
``--seed`` change the corpus; the run also checks ``select`` against ``matches`` on a sample.
"""

from __future__ import annotations

import argparse
import itertools
import random
import resource
import string
import time
from collections.abc import Callable
from typing import Any, TypeVar

from feedsync.models import Paper
from feedsync.query import Document, MemoryIndex, Query, compile_query, document

T = TypeVar("T")

# The head of the vocabulary, most frequent first, so that queries hit realistic frequencies;
# synthetic words fill the long tail up to VOCABULARY.
_HEAD = """
the of and to a in we for is on that with by as this our are from an models model language large
learning data performance training which be can tasks results it methods task approach these
such show their propose method based using state across both while than also existing however
new can through more into has between reasoning benchmark benchmarks evaluation framework
multimodal vision generation video image diffusion agents agent reinforcement policy reward
inference efficient efficiency scaling fine tuning pretraining pretrained dataset datasets text
visual understanding instruction llms llm transformer attention tokens token context retrieval
generative quality human alignment safety robust robustness code math mathematical reasoner
reasons reasoned planning tool tools embodied robot robotic robotics control 3d scene scenes
speech audio music detection segmentation editing synthesis motion prompt prompts prompting
chain thought thoughts step steps long short memory sparse experts mixture routing quantization
compression distillation teacher student latent space representation representations contrastive
self supervised unsupervised graph graphs knowledge medical clinical biology protein molecular
chemistry physics weather time series forecasting recommendation search web browser gui
interface mobile multilingual translation low resource languages evaluation judge preference
optimization rlhf dpo ppo grpo verifier verifiable rewards hallucination factuality calibration
uncertainty interpretability mechanistic circuits neurons features probing steering jailbreak
adversarial attack attacks defense privacy federated decentralized hardware gpu kernel kernels
throughput latency serving cache speculative decoding parallel distributed theory theoretical
analysis empirical study survey world
"""
HEAD = _HEAD.split()

_FIRST = "Ana Wei Yann Li Jun Maria Ahmed Sara Chen Ivan Olga Kenji Priya Tomas Lea Omar"
_LAST = "Ruiz Zhang LeCun Wang Liu Garcia Khan Smith Müller Sato Gupta Novak Dubois Kim"
FIRST, LAST = _FIRST.split(), _LAST.split()
ORGS = [
    "Google DeepMind",
    "Meta AI",
    "Microsoft Research",
    "Tsinghua University",
    "Peking University",
    "Alibaba Qwen",
    "NVIDIA",
    "Stanford University",
    "MIT CSAIL",
    "ByteDance Seed",
    "Hugging Face",
    "Shanghai AI Laboratory",
    "Carnegie Mellon University",
    "Allen Institute for AI",
    "Apple",
    "Mistral AI",
]
INSERTS = [
    "large language models",
    "reinforcement learning",
    "chain-of-thought",
    "mixture-of-experts",
    "diffusion models",
    "vision-language models",
    "in-context learning",
    "retrieval-augmented generation",
    "state-of-the-art",
    "GPT-4o",
    "text-to-video",
    "image-to-3D",
    "(RL)",
    "≥ 2× faster",
    "naïve baselines",
]

VOCABULARY = 5000
PAPERS = 50_000


def vocabulary(rng: random.Random) -> list[str]:
    words = list(dict.fromkeys(HEAD))
    seen = set(words)
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    while len(words) < VOCABULARY:
        word = "".join(rng.choices(syllables, k=rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def zipf(rng: random.Random, items: list[T], s: float = 1.05) -> Callable[[int], list[T]]:
    """A sampler of k items with a Zipfian distribution over ``items`` (first = commonest)."""
    cumulative = list(itertools.accumulate(1 / (rank**s) for rank in range(1, len(items) + 1)))
    return lambda k: rng.choices(items, cum_weights=cumulative, k=k)


def sentences(rng: random.Random, words: list[str], inserts: Callable[[int], list[str]]) -> str:
    """Words cut into sentences, with about one stock phrase (hyphenated compounds, non-ASCII
    bits; the first ones commonest) per 150 words."""
    out: list[str] = []
    for i, word in enumerate(words):
        if rng.random() < 1 / 150:
            out.extend(inserts(1))
        out.append(word)
        if i % 17 == 16:
            out[-1] += rng.choice(".,;")
    return " ".join(out).capitalize() + "."


def papers(n: int, seed: int, vocab: list[str]) -> list[Paper]:
    rng = random.Random(seed)
    draw = zipf(rng, vocab)
    content = zipf(rng, vocab[40:])  # titles and keywords skip the function words
    names = [f"{f} {m}. {last}" for f in FIRST for m in string.ascii_uppercase for last in LAST]
    author = zipf(rng, rng.sample(names, len(names)), s=0.8)
    keywords = [" ".join(content(rng.randint(1, 3))) for _ in range(3000)]
    keyword = zipf(rng, keywords, s=0.9)
    inserts = zipf(rng, INSERTS, s=1.0)
    result = []
    for i in range(n):
        title = sentences(rng, content(rng.randint(8, 16)), inserts).rstrip(".").title()
        result.append(
            Paper(
                key=f"25{i // 10000:02d}.{i % 10000:05d}",
                title=title,
                abstract=sentences(rng, draw(rng.randint(150, 250)), inserts),
                authors=tuple(dict.fromkeys(author(rng.randint(5, 10)))),
                organization=rng.choice(ORGS) if rng.random() < 0.6 else None,
                upvotes=None if rng.random() < 0.1 else int(rng.paretovariate(1.2)) - 1,
                ai_keywords=tuple(keyword(5)),
            )
        )
    return result


HANDWRITTEN = [
    'LLM OR llms OR "large language models"',
    "reinforcement learning reasoning",
    '"chain of thought" OR chain-of-thought OR cot',
    "title:diffusion -video",
    "(agent OR agents OR agentic) AND (tool OR tools OR planning)",
    "reason* AND (math OR mathematical)",
    'author:"yann lecun" OR org:meta',
    'keyword:"mixture of experts" OR mixture-of-experts OR moe',
    "title:/diffus(ion|er)/",
    "upvotes:>=50 (robot* OR embodied)",
    "(video OR motion) generation -survey",
    "speculative decoding OR (kv cache)",
    "quantiz* OR compression OR distillation",
    "rlhf OR dpo OR grpo OR ppo OR (preference optimization)",
    "hallucination OR factuality OR calibration",
    "interpretability OR mechanistic OR circuits OR (sparse features)",
    "jailbreak* OR adversarial attack OR (safety alignment)",
    'retrieval-augmented OR RAG OR "retrieval augmented generation"',
    "(medical OR clinical) AND (llm OR model*) upvotes:>5",
    "protein OR molecular OR chemistry OR biology",
    "time series forecasting OR weather",
    "gui OR browser OR web agent*",
    "multilingual OR translation OR (low resource languages)",
    "text-to-video OR image-to-3d OR (3d scene*)",
    "speech OR audio OR music -video",
    "title:survey OR title:benchmark*",
    'org:("google deepmind" OR "meta ai" OR nvidia) upvotes:>=20',
    "author:(zhang OR wang) title:reason*",
    "/\\bRLHF\\b/ OR /\\b\\d+(\\.\\d+)?× faster/",
    "abstract:/(text|image)-to-(video|3d)/ -keyword:survey",
    "title:/^(towards|on|rethinking)\\b/",
    "/\\bgpt-?4o?\\b/ NOT org:openai",
    "keyword:(verifier OR verifiable) rewards",
    "in-context learning OR icl",
    "vision-language OR (vision language model*) OR vlm*",
]


def generated_queries(rng: random.Random, n: int, vocab: list[str]) -> list[str]:
    """Topic-like queries from templates over mid-frequency words."""
    mid = vocab[60:1500]
    templates = [
        "{a} OR {b} OR {c}",
        "({a} OR {b}) AND {c}",
        '"{a} {b}" OR {c}',
        "title:{a} OR keyword:{b}",
        "{a}* -{b}",
        "({a} OR {b} OR {c}) -title:{d}",
        'title:("{a} {b}" OR {c}) upvotes:>=3',
        "{a} {b} NOT ({c} OR {d})",
        'keyword:{a}* OR abstract:"{b} {c}"',
        "{a} OR {b} OR {c} OR {d}",
    ]
    out = []
    for i in range(n):
        a, b, c, d = rng.sample(mid, 4)
        out.append(templates[i % len(templates)].format(a=a, b=b, c=c, d=d))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=PAPERS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    parser.add_argument("--check", type=int, default=2000, help="docs checked with matches()")
    args = parser.parse_args()

    started = time.perf_counter()
    vocab = vocabulary(random.Random(args.seed))
    corpus = papers(args.papers, args.seed, vocab)
    print(f"generated {len(corpus)} papers in {time.perf_counter() - started:.2f} s")
    generated = generated_queries(random.Random(args.seed), 100 - len(HANDWRITTEN), vocab)
    texts = HANDWRITTEN + generated
    started = time.perf_counter()
    queries = [compile_query(text) for text in texts]
    print(f"compiled {len(queries)} queries in {1000 * (time.perf_counter() - started):.1f} ms")

    # The machine may be shared: every figure is the best of --repeat runs, each of which
    # builds everything afresh (so "cold" includes the first scan of every regex).
    runs = [run(corpus, queries) for _ in range(args.repeat)]
    best = {key: min(r[key] for r in runs) for key in runs[0] if key != "results"}
    print(
        f"build: documents {best['documents']:.2f} s + index {best['index']:.2f} s"
        f" (best total {min(r['documents'] + r['index'] for r in runs):.2f} s)"
    )
    results = runs[-1]["results"]
    hits = sum(map(len, results))
    print(f"select x{len(queries)}: cold {best['cold']:.3f} s, warm {best['warm']:.3f} s")
    print(f"  ({hits} matches in all; all runs, cold: {[round(r['cold'], 3) for r in runs]})")
    check(queries, results, [document(p) for p in corpus[: args.check]])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB (papers, documents and index of one run alive at once)")


def run(corpus: list[Paper], queries: list[Query]) -> dict[str, Any]:
    started = time.perf_counter()
    docs = [document(p) for p in corpus]
    built_docs = time.perf_counter()
    index = MemoryIndex(enumerate(docs))
    built = time.perf_counter()
    results = [q.select(index) for q in queries]
    cold = time.perf_counter()
    for q in queries:
        q.select(index)
    warm = time.perf_counter()
    return {
        "documents": built_docs - started,
        "index": built - built_docs,
        "cold": cold - built,
        "warm": warm - cold,
        "results": results,
    }


def check(queries: list[Query], results: list[set[int]], docs: list[Document]) -> None:
    started = time.perf_counter()
    for query, ids in zip(queries, results, strict=True):
        expected = {i for i, doc in enumerate(docs) if query.matches(doc)}
        assert expected == {i for i in ids if i < len(docs)}, query.text
    elapsed = time.perf_counter() - started
    print(f"matches() agrees with select() on {len(docs)} docs ({elapsed:.2f} s)")


if __name__ == "__main__":
    main()
