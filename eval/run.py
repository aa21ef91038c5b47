"""`opencite eval run`: every question through the chat's RagChain, then metrics and a report.

Each finished question is appended to `<out>/results.jsonl` at once (one JSON line, flushed),
so an interrupted run loses at most the questions in flight; a re-run with the same --out
skips every question already there without an error. `<out>/run.json` records what the run
measures (questions, k, retrieval mode, models); resuming with different settings is refused
because the results would mix two configurations.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path


from opencite.eval import metrics as M
from opencite.eval.judge import Judge, judge_endpoint
from opencite.eval.questions import Question, load_questions, normalize_url
from opencite.eval.progress import Silent, StepProgress
from opencite.eval.report import write_report
from opencite.store.embedder_choice import resolve_embedder
from opencite.settings import Settings

RESULTS = "results.jsonl"
RUN_CONFIG = "run.json"
# Keys of run.json that must match for a resumed run to be one experiment.
PINNED = ("questions", "base_url", "k", "retrieval_mode", "embedding_model", "collection", "llm_model", "judge_model",
          "retrieval_only")


class RunConfigError(ValueError):
    pass


def run_eval(settings: Settings, questions_path: Path, *, out: Path | None = None, k: int | None = None,
             concurrency: int | None = None, retrieval_mode: str | None = None, base_url: str | None = None,
             judge: bool = True, retrieval_only: bool = False, chain=None, progress: StepProgress | None = None) -> dict:
    from opencite.app.rag.chain import RagChain
    from opencite.app.rag.retrieval import MODES

    questions = load_questions(questions_path, base_url)
    k = k or settings.retrieval.k
    mode = retrieval_mode or settings.retrieval.mode
    if mode not in MODES:
        raise ValueError(f"--retrieval-mode {mode!r} is unknown; use one of {', '.join(MODES)}")
    concurrency = concurrency or settings.eval.concurrency
    if concurrency < 1:
        raise ValueError("--concurrency must be at least 1")
    out = Path(out or settings.data_dir / "eval-runs" / Path(questions_path).stem)
    out.mkdir(parents=True, exist_ok=True)

    chain = chain or RagChain(settings)
    if retrieval_only:  # no LLM at all: the chain's own retrieval, sources as the chat would show
        chain, judge = RetrievalOnly(chain, settings), False
    grader = Judge(judge_endpoint(settings), timeout=settings.llm.timeout) if judge else None
    open_before_threads(chain)
    config = {
        "questions": str(Path(questions_path).resolve()),
        "base_url": normalize_url(base_url) if base_url else None,
        "k": k,
        "retrieval_mode": mode,
        "embedding_model": resolve_embedder(settings.embedding).model,
        "collection": settings.chroma.collection,
        "llm_model": _llm_model(chain),
        "judge_model": grader.endpoint.model if grader else None,
        "retrieval_only": retrieval_only,
    }
    _check_config(out / RUN_CONFIG, config)

    finished = {i: r for i, r in load_results(out / RESULTS).items() if not r.get("error")}
    todo = [q for q in questions if q.id not in finished]
    _run_questions(chain, grader, todo, k, mode, concurrency, out / RESULTS, progress or Silent(),
                   skipped=len(questions) - len(todo))

    records = load_results(out / RESULTS)
    ordered = [records[q.id] for q in questions if q.id in records]
    summary = summarise(ordered, k)
    if retrieval_only:  # no answers were generated: answer-side figures would be noise
        summary.update(answers={}, citations={}, not_covered={}, attribution={})
    config["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    paths = write_report(out, config, summary, ordered)
    return {"config": config, "summary": summary, "questions": ordered, "paths": paths}


class RetrievalOnly:
    """Stands in for the chain when no LLM is wanted: the chain's own retrieval, its hits numbered
    as the chain numbers sources, and an empty answer. `prompt=True`: the sources of the prompt
    the chain would send instead (`RagChain.prompt_for`: the passages that fill the sources'
    budget), what an answer of the chain is checked against."""

    def __init__(self, chain, settings: Settings, prompt: bool = False) -> None:
        self.chain, self.settings, self.prompt = chain, settings, prompt
        self.endpoint = None

    def invoke(self, messages: list[dict], k: int, retrieval_mode: str):
        from opencite.app.rag.chain import RagAnswer
        from opencite.app.rag.chain_run import numbered_sources
        from opencite.app.rag.retrieval import retrieve_spans
        from opencite.app.rag.tokens import counted_usage

        question = messages[-1]["content"]
        t0 = time.perf_counter()
        hits = retrieve_spans(self.chain.index, question, k, self.settings, retrieval_mode)
        timings = {"retrieve_s": time.perf_counter() - t0}
        if not self.prompt:
            return RagAnswer(question, question, "", numbered_sources([(d, s) for d, s, _ in hits]), [], 0,
                             timings=timings)
        fitted = self.chain.prompt_for(question, hits)
        return RagAnswer(question, question, "", fitted.sources, [], 0,
                         usage=counted_usage(self.chain.counter(), fitted.prompt), timings=timings)


def open_before_threads(chain) -> None:
    """The chain opens its parts lazily; open them once here rather than racing in the workers,
    and refuse an empty index up front instead of failing every question."""
    inner = chain.chain if isinstance(chain, RetrievalOnly) else chain
    index = getattr(inner, "index", None)
    if index is not None and index.count() == 0:
        raise ValueError(
            f"the index (collection {index.settings.chroma.collection!r} in {index.settings.chroma_path}) "
            "is empty. Fix: run `opencite ingest ...` first, or point OPENCITE_DATA_DIR at a built index.")
    if not isinstance(chain, RetrievalOnly):
        getattr(chain, "llm", None)


def _llm_model(chain) -> str | None:
    try:
        return chain.endpoint.model if chain.endpoint else None
    except Exception:
        return None


def _check_config(path: Path, config: dict) -> None:
    if path.exists():
        before = json.loads(path.read_text(encoding="utf-8"))
        changed = [k for k in PINNED if before.get(k) != config.get(k)]
        if changed:
            diff = ", ".join(f"{k}: {before.get(k)!r} -> {config.get(k)!r}" for k in changed)
            raise RunConfigError(
                f"{path.parent} holds a run with other settings ({diff}). Fix: pass another --out "
                "for the new configuration (then `opencite eval compare` the two), or delete the folder.")
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")


def load_results(path: Path) -> dict[str, dict]:
    """id -> last record; a torn last line (killed mid-write) is ignored."""
    records: dict[str, dict] = {}
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "id" in rec:
            records[str(rec["id"])] = rec
    return records


def _run_questions(chain, grader, todo, k, mode, concurrency, results_path, progress: StepProgress, skipped):
    lock = threading.Lock()
    progress.start(f"eval ({skipped} already done)", len(todo))
    with ThreadPoolExecutor(max_workers=concurrency) as pool, open(results_path, "a", encoding="utf-8") as sink:
        futures = [pool.submit(evaluate_question, chain, grader, q, k, mode) for q in todo]
        for future in as_completed(futures):
            record = future.result()
            with lock:
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                sink.flush()
            progress.advance()


def evaluate_question(chain, grader: Judge | None, q: Question, k: int, mode: str) -> dict:
    record = {"id": q.id, "question": q.question, "reference": q.reference, "relevant": q.sources}
    try:
        ans = chain.invoke([{"role": "user", "content": q.question}], k=k, retrieval_mode=mode)
    except Exception as exc:  # the chain raises only for bad input or a broken index
        record.update(error=f"{type(exc).__name__}: {exc}", error_kind="chain_error")
        return record
    urls = {s.n: normalize_url(s.url) for s in ans.sources}
    relevant = set(q.sources) if q.sources is not None else None
    record.update(
        answer=ans.answer,
        error=ans.error,
        error_kind=ans.error_kind,
        sources=[{"n": s.n, "url": urls[s.n], "title": s.title, "score": s.score, "chunk_id": s.chunk_id,
                  "found_after": s.found_after} for s in ans.sources],
        cited=[s.n for s in ans.cited],
        # Retrieval is what reached the prompt: sources found after the answer are attribution's.
        page_run=M.page_run((urls[s.n], s.score) for s in ans.sources if not s.found_after),
        citations=M.citation_stats(ans.answer, ans.dropped_markers, urls, relevant),
        says_not_covered=M.says_not_covered(ans.answer),
        sentences=M.sentence_records(ans.attribution, urls),
        timings=ans.timings or {},
        usage=ans.usage,
    )
    record["attribution"] = M.attribution_stats(record["sentences"], relevant)
    if grader is not None and not ans.error:
        context = "\n\n".join(f"[{s.n}] {s.title} ({s.url})\n{s.snippet}" for s in ans.sources)
        verdicts = grader.grade_answer(q.question, ans.answer, context, q.reference, q.answerable)
        record["judge"] = {name: v.to_dict() for name, v in verdicts.items()}
    return record


def summarise(records: list[dict], k: int) -> dict:
    ok = [r for r in records if not r.get("error")]
    # Retrieval: questions whose relevant pages are known and non-empty.
    qrels = {r["id"]: {u: 1 for u in r["relevant"]} for r in records if r.get("relevant")}
    run = {r["id"]: r.get("page_run") or {} for r in records}
    per_q = M.retrieval_metrics(qrels, run, k)
    for r in records:
        if r["id"] in per_q:
            r["retrieval"] = per_q[r["id"]]
    retrieval = {"questions": len(per_q), **M.mean_metrics(per_q)}

    answers: dict = {}
    for crit in ("faithfulness", "relevance", "correctness"):
        scores = [r["judge"][crit]["score"] for r in ok if crit in (r.get("judge") or {})]
        read = [s for s in scores if s is not None]
        answers[crit] = sum(read) / len(read) if read else None
        answers[f"{crit}_n"] = len(read)
        answers[f"{crit}_unreadable"] = len(scores) - len(read)

    answerable = [r for r in ok if r.get("relevant") != []]
    known = [r for r in answerable if r.get("relevant")]
    cites = [r["citations"] for r in answerable]
    citations = {
        "answers_with_citations": M.share(c["has_citation"] for c in cites),
        "to_retrieved": M.ratio((c["to_retrieved"] for c in cites), (c["citations"] for c in cites)),
        "to_relevant": M.ratio((r["citations"]["to_relevant"] for r in known),
                               (r["citations"]["citations"] for r in known)),
    }
    unanswerable = [r for r in ok if r.get("relevant") == []]
    judged = [r["judge"]["abstention"]["score"] for r in unanswerable if "abstention" in (r.get("judge") or {})]
    judged = [s for s in judged if s is not None]
    not_covered = {
        "questions": len(unanswerable),
        "says_not_covered_phrase": M.share(r["says_not_covered"] for r in unanswerable),
        "says_not_covered_judge": (sum(judged) / len(judged)) if judged else None,
        "cites_anyway": M.share(r["citations"]["has_citation"] for r in unanswerable),
    }
    first = M.percentiles(r.get("timings", {}).get("first_token_s") for r in ok)
    total = M.percentiles(r.get("timings", {}).get("total_s") for r in ok)
    retrieve_s = M.percentiles(r.get("timings", {}).get("retrieve_s") for r in ok)
    latency = {"first_token_p50_s": first["p50"], "first_token_p95_s": first["p95"],
               "total_p50_s": total["p50"], "total_p95_s": total["p95"],
               "retrieve_p50_s": retrieve_s["p50"], "retrieve_p95_s": retrieve_s["p95"]}
    attributed = [r["attribution"] for r in ok if r.get("relevant") != [] and r.get("sentences")]
    return {
        "questions": len(records),
        "errors": len(records) - len(ok),
        "attribution": M.summarise_attribution(attributed) if attributed else {},
        "retrieval": retrieval,
        "answers": answers,
        "citations": citations,
        "not_covered": not_covered,
        "latency": latency,
    }
