"""Verified citations on the shared blog: how well attribution repairs citations, and what it costs.

Serves ../shared/corpus/hf-blog with serve_blog.py, ingests it with MiniLM (as bench_eval_blog.py
does), then takes data/eval/blog-questions.jsonl's reference answers (questions with known pages)
as "the LLM's answers" over the chain's own retrieved sources (default k and neighbours), in
three variants:

1. the references with no markers: what attribution adds;
2. every sentence marked with a random retrieved source (a weak model): what it repoints;
3. every sentence marked with its gold page's source, one figure or name changed in one sentence
   (e.g. 32k -> 64k, Llama -> Falcon): share of altered sentences flagged `unsupported` against
   the share of untouched sentences flagged.

Page-level citation precision (markers pointing at a gold page) and recall (checked sentences
citing at least one gold page) with the default scorer, next to the markers as given (the
baseline), for a grid of thresholds and embedding weights (the default row is marked), then the
sentences variant 1 leaves without a gold citation. Latency: attribution of a ~120-word answer
over the 4 sources, p50, as a ratio to retrieval (question -> prompt ready) measured in the same
run: added after the answer (the chain's warm steps ran during generation), the warm steps, and
cold (everything after the answer).

    python tests/benchmarks/bench_attribution.py [--data DIR --port 8792] [--model PATH]

Keep --port fixed when re-using --data: the pages' URLs carry it.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import time

from blog_site import blog_arguments, ingested_blog

NAMES = ["Falcon", "Mistral", "Gemma", "Llama", "Qwen", "Phi", "BLOOM", "GPT-4"]


def main() -> None:
    ap = blog_arguments(__doc__)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--thresholds", default="0.4,0.45,0.5,0.55,0.6")
    ap.add_argument("--weights", default="0.3,0.5,0.7")
    ap.set_defaults(k=None)  # the product's own k (settings.retrieval.k), as the issue measures
    args = ap.parse_args()

    with ingested_blog(args.corpus, args.port, args.data, args.model, "opencite-bench-attribution-",
                       OPENCITE_LLM__BASE_URL="http://127.0.0.1:9/v1", OPENCITE_LLM__MODEL="none",
                       OPENCITE_LLM__CONTEXT_WINDOW="32768") as (base, _):
        run(args, base)


def run(args, base: str) -> None:
    from opencite.app.citations.attribution import attribute
    from opencite.app.rag.chain import RagChain
    from opencite.app.citations.sentences import split_sentences
    from opencite.app.citations.support import EmbeddingLexicalScorer
    from opencite.app.rag.tokens import count_messages
    from opencite.eval.questions import load_questions, normalize_url
    from opencite.settings import Settings

    settings = Settings()
    args.k = args.k or settings.retrieval.k
    chain = RagChain(settings)
    rng = random.Random(args.seed)
    questions = [q for q in load_questions(args.questions, base) if q.sources and q.reference]
    cases, retrieval_s, prompt_tokens = [], [], []
    chain.prepare([{"role": "user", "content": "warm up"}], k=args.k)
    for q in questions:
        t = time.perf_counter()
        sources, prompt = chain.prepare([{"role": "user", "content": q.question}], k=args.k)
        retrieval_s.append(time.perf_counter() - t)
        prompt_tokens.append(count_messages(chain.counter(), prompt))
        gold = {s.n for s in sources if normalize_url(s.url) in set(q.sources)}
        cases.append((q, sources, gold))

    embeddings = CachedEmbeddings(chain.index.embeddings)
    variants = {"1 no markers": [], "2 random markers": [], "3 one fact altered": []}
    altered_at = []
    for q, sources, gold in cases:
        sentences = [s.text for s in split_sentences(q.reference)]
        variants["1 no markers"].append((q.reference, sources, gold))
        randomised = " ".join(_mark(s, [rng.choice(sources).n]) for s in sentences)
        variants["2 random markers"].append((randomised, sources, gold))
        i, changed = _alter_one(sentences, rng)
        marked = [_mark(s, sorted(gold)[:1]) for s in sentences]
        if changed is not None:
            marked[i] = _mark(changed, sorted(gold)[:1])
        variants["3 one fact altered"].append((" ".join(marked), sources, gold))
        altered_at.append(i if changed is not None else None)

    from opencite.settings import AttributionSettings

    print(f"\n{len(cases)} questions with known pages and a reference; k={args.k}; "
          f"gold page among the sources for {sum(1 for *_, g in cases if g)}; neighbours="
          f"{settings.retrieval.neighbours}, mode {settings.retrieval.mode}; prompt tokens p50 "
          f"{statistics.median(prompt_tokens):.0f} ({'counted' if chain.counter().exact else 'estimated'})")
    print(f"{'variant':22}{'weight':>7}{'thresh':>7}{'P':>7}{'R':>7}{'P base':>8}{'R base':>8}"
          f"{'altered flagged':>17}{'true flagged':>14}{'checked':>9}")
    default = AttributionSettings()
    for weight in [float(x) for x in args.weights.split(",")]:
        scorer = EmbeddingLexicalScorer(embeddings, weight)
        for threshold in [float(x) for x in args.thresholds.split(",")]:
            cfg = AttributionSettings(threshold=threshold, embedding_weight=weight)
            mark = " *" if (threshold, weight) == (default.threshold, default.embedding_weight) else ""
            for name, items in variants.items():
                row = _score(name, items, scorer, cfg, altered_at, attribute)
                print(f"{name:22}{weight:7.2f}{threshold:7.2f}{_f(row['p']):>7}{_f(row['r']):>7}"
                      f"{_f(row['p_base']):>8}{_f(row['r_base']):>8}{_f(row.get('altered')):>17}"
                      f"{_f(row.get('true')):>14}{row['checked']:>9}{mark}")

    _misses(variants["1 no markers"], [q.id for q, *_ in cases],
            EmbeddingLexicalScorer(embeddings, default.embedding_weight), default, attribute)

    # Latency: a ~120-word answer over the 4 sources, default settings, a new scorer per answer
    # (nothing cached from other answers). "cold": attribution does all its work after the
    # answer; "warmed": the chain's warm steps (splitting the sources, embedding their sentences,
    # then each answer sentence as it ends) ran while the LLM wrote, so the added latency is
    # attribution after them.
    from opencite.app.citations import attribution as attribution_module
    from opencite.app.citations import windows as windows_module

    cold, warm_s, added, words = [], [], [], []
    for q, sources, gold in cases:
        answer = _long_answer(q.reference, sources, 120)
        words.append(len(answer.split()))
        windows_module._snippet_windows.cache_clear()  # benchmark only: really cold
        scorer = EmbeddingLexicalScorer(chain.index.embeddings, default.embedding_weight)
        t = time.perf_counter()
        attribute(answer, sources, scorer, default)
        cold.append(time.perf_counter() - t)
        windows_module._snippet_windows.cache_clear()
        scorer = EmbeddingLexicalScorer(chain.index.embeddings, default.embedding_weight)
        t = time.perf_counter()
        attribution_module.warm(sources, scorer, default)
        for sentence in split_sentences(answer):  # as the chain does at each sentence's end
            attribution_module.warm(sources, scorer, default, answer[:sentence.end])
        warm_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        attribute(answer, sources, scorer, default)
        added.append(time.perf_counter() - t)
    r50 = statistics.median(retrieval_s)
    print(f"\nlatency over {len(cases)} answers ({statistics.median(words):.0f} words p50, {args.k} sources); "
          f"retrieval (question -> prompt ready) p50 {1000 * r50:.1f} ms")
    for name, xs in (("added after the answer (warmed)", added), ("warm steps, during generation", warm_s),
                     ("cold (no warm step)", cold)):
        p50 = statistics.median(xs)
        print(f"  {name:34} p50 {1000 * p50:7.1f} ms  p95 {1000 * _p95(xs):7.1f} ms  "
              f"ratio to retrieval {p50 / r50:.2f}x")
    print("load average (1, 5, 15 min):", " ".join(f"{x:.2f}" for x in os.getloadavg()))


def _score(name, items, scorer, cfg, altered_at, attribute) -> dict:
    from opencite.app.citations.sentences import split_sentences

    cited = to_gold = sentences_n = recall_hits = 0
    base_cited = base_gold = base_recall = 0
    altered_flagged = altered_n = true_flagged = true_n = 0
    for idx, (answer, sources, gold) in enumerate(items):
        result = attribute(answer, sources, scorer, cfg)
        checked = {(s.written_start, s.written_end): s for s in result.sentences}
        for j, sentence in enumerate(split_sentences(answer)):
            s = checked.get((sentence.start, sentence.end))
            if s is None:
                continue
            sentences_n += 1
            cited += len(s.markers)
            to_gold += sum(1 for n in s.markers if n in gold)
            recall_hits += any(n in gold for n in s.markers)
            base_cited += len(s.original_markers)
            base_gold += sum(1 for n in s.original_markers if n in gold)
            base_recall += any(n in gold for n in s.original_markers)
            if name.startswith("3"):
                if altered_at[idx] == j:
                    altered_n += 1
                    altered_flagged += s.outcome == "unsupported"
                else:
                    true_n += 1
                    true_flagged += s.outcome == "unsupported"
    row = {"p": to_gold / cited if cited else None, "r": recall_hits / sentences_n if sentences_n else None,
           "p_base": base_gold / base_cited if base_cited else None,
           "r_base": base_recall / sentences_n if sentences_n else None, "checked": sentences_n}
    if name.startswith("3"):
        row.update(altered=altered_flagged / altered_n if altered_n else None,
                   true=true_flagged / true_n if true_n else None)
    return row


class CachedEmbeddings:
    """The index's embedder with a text -> vector cache, so the grid re-scores without re-embedding."""

    def __init__(self, inner) -> None:
        self.inner, self.cache = inner, {}

    def embed_documents(self, texts):
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if todo:
            self.cache.update(zip(todo, self.inner.embed_documents(todo)))
        return [self.cache[t] for t in texts]


def _misses(items, ids, scorer, cfg, attribute) -> None:
    """Variant 1 at the default settings: the sentences left without a gold citation, with each
    retrieved source's best support, so a miss can be told from a retrieval gap."""
    print("\nvariant 1, default settings: sentences without a gold citation")
    for qid, (answer, sources, gold) in zip(ids, items):
        for s in attribute(answer, sources, scorer, cfg).sentences:
            if not set(s.markers) & gold:
                print(f"  {qid}: {s.outcome}, best {s.score:.3f}, gold sources {sorted(gold) or 'none retrieved'}: "
                      f"{s.text[:90]!r}")


def _mark(sentence: str, numbers: list[int]) -> str:
    if not numbers:
        return sentence
    tag = "".join(f"[{n}]" for n in numbers)
    m = re.search(r"([.!?]+)$", sentence)
    return f"{sentence[:m.start()]} {tag}{m.group(1)}" if m else f"{sentence} {tag}"


def _alter_one(sentences: list[str], rng: random.Random) -> tuple[int, str | None]:
    """One figure (changed digits) or one name (another model's) in one sentence."""
    order = list(range(len(sentences)))
    rng.shuffle(order)
    for i in order:
        s = sentences[i]
        numbers = list(re.finditer(r"\d+", s))
        if numbers:
            m = rng.choice(numbers)
            value = int(m.group())
            new = str(value * 2 if value > 1 else value + 3)
            return i, s[:m.start()] + new + s[m.end():]
        names = [m for m in re.finditer(r"\b[A-Z][a-zA-Z]+\b", s) if m.start() > 0]
        if names:
            m = rng.choice(names)
            other = rng.choice([n for n in NAMES if n.lower() != m.group().lower()])
            return i, s[:m.start()] + other + s[m.end():]
    return 0, None


def _long_answer(reference: str, sources, words: int) -> str:
    from opencite.app.citations.sentences import split_sentences

    parts = [reference]
    for s in sources:
        for sentence in split_sentences(s.snippet):
            if len(" ".join(parts).split()) >= words:
                return " ".join(parts)
            parts.append(_mark(sentence.claim, [s.n]))
    return " ".join(parts)


def _p95(xs):
    return sorted(xs)[min(len(xs) - 1, int(0.95 * len(xs)))]


def _f(x) -> str:
    return "–" if x is None else f"{x:.3f}"


if __name__ == "__main__":
    main()
