"""The project's eval set over the shared blog, end to end through `opencite eval run`.

Serves ../shared/corpus/hf-blog with serve_blog.py, ingests it from the sitemap with
`opencite ingest` into a data folder of its own, then runs data/eval/blog-questions.jsonl:

- retrieval only (no LLM) for each retrieval mode; dense is the baseline measured in the same
  run and the other modes print as ratios of it;
- with --llm-base-url, the full chain + judge once (dense), against that OpenAI-compatible server.

    python tests/benchmarks/bench_eval_blog.py [--model PATH] [--data DIR --port 8791] [--k 4]
        [--modes dense,bm25,hybrid] [--llm-base-url http://127.0.0.1:8000/v1]

Re-using --data needs the same --port (the index stores the served URLs).
"""

from __future__ import annotations

import os

from blog_site import blog_arguments, ingested_blog



def main() -> None:
    ap = blog_arguments(__doc__)
    ap.add_argument("--modes", default="dense,bm25,hybrid")
    ap.add_argument("--llm-base-url", default=None)
    args = ap.parse_args()

    with ingested_blog(args.corpus, args.port, args.data, args.model, "opencite-bench-eval-") as (base, data):
        from opencite.eval.run import run_eval
        from opencite.settings import Settings

        settings = Settings()
        rows = {}
        for mode in args.modes.split(","):
            res = run_eval(settings, args.questions, out=data / "eval-runs" / f"retrieval-{mode}-k{args.k}",
                           k=args.k, retrieval_mode=mode, base_url=base, retrieval_only=True)
            rows[mode] = res["summary"]
        names = [f"hit@{args.k}", f"recall@{args.k}", "mrr@10", "ndcg@10"]
        base_row = rows.get("dense") or next(iter(rows.values()))
        print(f"\nretrieval over {base_row['retrieval']['questions']} questions with known pages (k={args.k})")
        print(f"{'mode':8}" + "".join(f"{n:>12}" for n in names) + f"{'p50 ms':>10}" + "   ratio ndcg@10 vs dense")
        for mode, s in rows.items():
            r = s["retrieval"]
            ratio = r["ndcg@10"] / base_row["retrieval"]["ndcg@10"] if base_row["retrieval"]["ndcg@10"] else float("nan")
            print(f"{mode:8}" + "".join(f"{r[n]:12.3f}" for n in names)
                  + f"{1000 * s['latency']['retrieve_p50_s']:10.1f}   {ratio:.3f}")

        if args.llm_base_url:
            os.environ["OPENCITE_LLM__BASE_URL"] = args.llm_base_url
            res = run_eval(Settings(), args.questions, out=data / "eval-runs" / f"chain-dense-k{args.k}", k=args.k,
                           retrieval_mode="dense", base_url=base)
            print(f"\nfull chain report: {res['paths']['report']}")
            for section in ("answers", "citations", "not_covered", "latency"):
                print(section, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in res["summary"][section].items()})


if __name__ == "__main__":
    main()
