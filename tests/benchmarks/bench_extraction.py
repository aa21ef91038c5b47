"""Which HTML extractor leaves no page chrome and keeps the post? Measured on the shared blog corpus.

Serves ../shared/corpus with serve_blog.py, fetches every post once, extracts each with every
candidate in ingest/html_article.py, and prints per candidate:
- chrome: share of documents containing any chrome string (cookie banner, nav, footer, sidebar,
  share bar, back link) that the post's own markdown does not contain — target 0;
- kept: share of the markdown source's prose lines, headings and code blocks found in the output;
- time: extraction time relative to the fastest candidate.
The notebook's WebBaseLoader text (BeautifulSoup get_text) is printed as a reference row.

    python tests/benchmarks/bench_extraction.py [--corpus ../shared/corpus]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

from opencite.ingest.documents import ExtractionError
from opencite.ingest.extract import extract
from opencite.ingest.fetch import fetch_many
from opencite.ingest.html_article import STRATEGIES
from opencite.settings import FetchSettings

CHROME = ["We use cookies", "Accept all", "Pricing", "Log In", "Brand assets", "Terms of service",
          "More articles from our blog", "Share this post", "Back to Articles", "analytics("]


BASELINE = "notebook"  # WebBaseLoader's way: BeautifulSoup(page).get_text(), for reference


def _notebook_text(body: bytes) -> str:
    from bs4 import BeautifulSoup

    return BeautifulSoup(body, "html.parser").get_text()


def _norm(text: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images: their text
    text = re.sub(r"</?[a-zA-Z][^<>]*>", " ", text)
    text = re.sub(r"[#*_`>\[\]()|\\~-]", " ", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def source_parts(md: str) -> tuple[list[str], list[str], list[str]]:
    """(prose lines, headings, first lines of code blocks) of a markdown post, normalised."""
    if md.startswith("---"):
        end = md.find("\n---", 3)
        md = md[end + 4:] if end != -1 else md
    prose, headings, code = [], [], []
    in_code, first = False, False
    for line in md.splitlines():
        if line.strip().startswith("```"):
            in_code, first = not in_code, not in_code
            continue
        if in_code:
            if first and line.strip():
                code.append(re.sub(r"\s+", " ", line.strip()).lower())
                first = False
            continue
        if line.lstrip().startswith("<"):
            continue  # raw HTML in the post source: rendered as text or dropped, not comparable
        n = _norm(line)
        if re.match(r"\s*#{1,6}\s", line):
            if n:
                headings.append(n)
        elif len(n) >= 30:
            prose.append(n)
    return prose, headings, code


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "corpus")
    args = ap.parse_args()
    posts = sorted((args.corpus / "hf-blog").glob("*.md"))
    server = subprocess.Popen([sys.executable, str(args.corpus / "serve_blog.py"), "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        base = server.stdout.readline().strip()
        urls = [f"{base}/blog/{p.stem}" for p in posts]
        fetched = asyncio.run(fetch_many(urls, FetchSettings(concurrency=8)))
        print(f"corpus: {len(posts)} posts from {base}; fetch errors: {sum(1 for f in fetched if f.error)}")
        rows = {}
        for strategy in (*STRATEGIES, BASELINE):
            chrome_docs, failures, kept = 0, 0, {"prose": [0, 0], "headings": [0, 0], "code": [0, 0]}
            chrome_hits: dict[str, int] = {}
            start = time.perf_counter()
            for post, f in zip(posts, fetched):
                try:
                    text = (_notebook_text(f.body) if strategy == BASELINE
                            else extract(f, fetched_at="", strategy=strategy).text)
                except ExtractionError:
                    failures += 1
                    continue
                source = post.read_text(encoding="utf-8")
                # A chrome string the post itself contains (e.g. a "Pricing" section) is not chrome.
                hits = [c for c in CHROME if c in text and c not in source]
                chrome_docs += bool(hits)
                for c in hits:
                    chrome_hits[c] = chrome_hits.get(c, 0) + 1
                norm = _norm(text)
                code_text = re.sub(r"\s+", " ", text).lower()
                for key, parts in zip(("prose", "headings", "code"), source_parts(source)):
                    haystack = code_text if key == "code" else norm
                    kept[key][0] += sum(1 for p in parts if p in haystack)
                    kept[key][1] += len(parts)
            elapsed = time.perf_counter() - start
            rows[strategy] = (chrome_docs, failures, kept, elapsed, chrome_hits)
        fastest = min(r[3] for r in rows.values())
        print(f"{'candidate':12} {'chrome docs':>12} {'failed':>7} {'prose kept':>11} {'headings':>9} {'code':>7} {'time':>7} {'ms/doc':>7}")
        for strategy, (chrome_docs, failures, kept, elapsed, hits) in rows.items():
            share = {k: (a / b if b else 1.0) for k, (a, b) in kept.items()}
            print(f"{strategy:12} {chrome_docs / len(posts):>11.1%} {failures:>7} {share['prose']:>11.1%} "
                  f"{share['headings']:>9.1%} {share['code']:>7.1%} {elapsed / fastest:>6.2f}x {1000 * elapsed / len(posts):>7.1f}")
            if hits:
                print(f"{'':12} chrome strings: {hits}")
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
