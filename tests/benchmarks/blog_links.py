"""A known-item retrieval set built at run time from the shared blog's own cross-links.

When a post links to another post of the corpus ("... as shown in [our earlier blog post](
https://huggingface.co/blog/open-source-llms-as-agents) ..."), the sentence around the link is a
description of the linked post written by another author, for another purpose. Each such sentence,
as plain text (link targets dropped), is a query; the linked post is its one relevant page.

Neither of the other sets has a hand in it: no person chose or phrased the queries for this
project (unlike data/eval/blog-questions.jsonl), and the texts are blog posts, not SciFact's
claims and abstracts. The linking post holds the query verbatim, so it is left out of that query's
ranking (it would otherwise take rank 1 in every mode); everything else is ranked as retrieved.
Nothing of ../shared is stored in the project: the set is read from the corpus on every run.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from opencite.app.rag.retrieval import retrieve
from opencite.app.citations.sentences import Sentence, split_sentences
from opencite.eval import metrics as M
from opencite.eval.questions import normalize_url
from opencite.store import constants as C

# A markdown link to a post of the Hugging Face blog: [text](https://huggingface.co/blog/<slug>...)
BLOG_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/blog/"
                       r"([A-Za-z0-9_.-]+?)/?(?:[#?][^)\s]*)?\s*\)")
MIN_WORDS = 4  # "Llama 2" alone says nothing about which post is meant


@dataclass(frozen=True)
class LinkQuery:
    id: str
    text: str
    source: str  # the linking post's slug (left out of the ranking)
    target: str  # the linked post's slug (the relevant page)


def link_queries(posts_dir: Path) -> list[LinkQuery]:
    """One query per (linking post, linked post) pair of the folder: the first sentence that
    links them, as plain text (the sentences the link spans, when its text ends in a full stop)."""
    posts = {p.stem: p for p in sorted(Path(posts_dir).glob("*.md"))}
    out: list[LinkQuery] = []
    for slug, path in posts.items():
        body = _body(path.read_text(encoding="utf-8", errors="replace"))
        sentences = split_sentences(body)
        seen: set[str] = set()
        for link in BLOG_LINK.finditer(body):
            target = link.group(1)
            spanned = [s for s in sentences if s.start < link.end() and s.end > link.start()]
            if target == slug or target not in posts or target in seen or not spanned:
                continue
            start, end = spanned[0].start, spanned[-1].end
            text = Sentence(start, end, body[start:end], ()).claim
            if len(text.split()) >= MIN_WORDS:
                seen.add(target)
                out.append(LinkQuery(f"{slug}->{target}", text, slug, target))
    return out


def _body(text: str) -> str:
    """The post without its '---' front matter."""
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4:]
    return text


def page_url(base: str, slug: str) -> str:
    return normalize_url(f"{base}/blog/{slug}")


def measure(index, settings, queries: list[LinkQuery], base: str, mode: str, chunks: int = 50) -> dict:
    """Page-level hit@1/5/10, MRR@10 and nDCG@10 of one mode over the queries, through
    `retrieve()` as the chat calls it, `chunks` hits deep (enough for ten distinct pages), plus
    retrieve()'s p50/p95 latency at the settings' k."""
    run: M.Run = {}
    for q in queries:
        hits = retrieve(index, q.text, chunks, settings, mode)
        pages = M.page_run((normalize_url(str(d.metadata.get(C.SOURCE) or "")), s) for d, s in hits)
        pages.pop(page_url(base, q.source), None)
        run[q.id] = M.top(pages, 10)
    qrels = {q.id: {page_url(base, q.target): 1} for q in queries}
    figures: dict[str, float] = {}
    for k in (1, 5, 10):
        per_query = M.retrieval_metrics(qrels, run, k)
        figures.update(M.mean_metrics(per_query))
    figures = {n: figures[n] for n in ("hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10")}
    seconds = []
    for q in queries:
        t = time.perf_counter()
        retrieve(index, q.text, settings.retrieval.k, settings, mode)
        seconds.append(time.perf_counter() - t)
    lat = M.percentiles(seconds)
    return {"queries": len(queries), **figures, "p50_ms": 1000 * lat["p50"], "p95_ms": 1000 * lat["p95"]}
