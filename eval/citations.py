"""`opencite eval citations FILE`: attribute answers written elsewhere (another system, an older
model, people) against what the product retrieves for their questions.

Each line `{id, question, answer, sources?}` (other keys ignored; `sources` as in `eval run`):
the question goes through the chain's own retrieval (default mode and k) and prompt (the passages
that fill the sources' token budget: what the chain's answer would have stood on), the answer
through the chain's attribution (settings.attribution; mode `off` is read as `flag`, since
checking is the point). Writes `<out>/results.jsonl` (one line per answer: id and its sentences with text,
outcome, verdict, cited URLs, support score, quote and the words that differ when contradicted),
`summary.json` and `report.md`: page-level citation precision and recall against `sources`, the
outcome and verdict counts, and the contradicted and unverified sentences.
"""

from __future__ import annotations

import json
from pathlib import Path


from opencite.eval import metrics as M
from opencite.eval.progress import Silent, StepProgress
from opencite.eval.questions import QuestionsError, load_questions, normalize_url
from opencite.store.embedder_choice import resolve_embedder
from opencite.settings import Settings


def load_answers(path: Path) -> dict[str, str]:
    answers: dict[str, str] = {}
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            obj = json.loads(line)
            if not isinstance(obj.get("answer"), str):
                raise QuestionsError(f"{path} line {line_no}: needs an 'answer' string (the answer to check).")
            answers[str(obj["id"])] = obj["answer"]
    return answers


def run_citations(settings: Settings, path: Path, *, out: Path | None = None, base_url: str | None = None,
                  chain=None, progress: StepProgress | None = None) -> dict:
    from opencite.app.rag.chain import RagAnswer, RagChain
    from opencite.eval.run import RetrievalOnly, open_before_threads

    questions = load_questions(path, base_url)  # ids, questions and sources checked with file and line
    answers = load_answers(path)
    if settings.attribution.mode == "off":
        settings = settings.model_copy(update={"attribution": settings.attribution.model_copy(update={"mode": "flag"})})
    chain = chain or RagChain(settings)
    retriever = RetrievalOnly(chain, settings, prompt=True)
    open_before_threads(retriever)
    out = Path(out or settings.data_dir / "eval-runs" / f"citations-{Path(path).stem}")
    out.mkdir(parents=True, exist_ok=True)
    k, mode = settings.retrieval.k, settings.retrieval.mode
    records = []
    progress = progress or Silent()
    progress.start("attributing", len(questions))
    with open(out / "results.jsonl", "w", encoding="utf-8") as sink:
        for q in questions:
            retrieved = retriever.invoke([{"role": "user", "content": q.question}], k=k, retrieval_mode=mode)
            given = RagAnswer(q.question, q.question, answers[q.id], retrieved.sources, [], 0)
            attributed = chain.attribute(given)
            # the prompt's sources and any the chain found after them (a sentence may cite those)
            urls = {s.n: normalize_url(s.url) for s in attributed.sources}
            sentences = M.sentence_records(attributed.attribution, urls)
            record = {"id": q.id, "question": q.question, "prompt_tokens": retrieved.usage["prompt_tokens"],
                      "answer": answers[q.id],
                      "attributed_answer": attributed.answer, "relevant": q.sources, "sentences": sentences,
                      "citations": M.attribution_stats(sentences, set(q.sources) if q.sources else None)}
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            records.append(record)
            progress.advance()
    summary = M.summarise_attribution([r["citations"] for r in records])
    config = {"answers": str(Path(path).resolve()), "k": k, "retrieval_mode": mode,
              "source_tokens": chain.source_tokens(),
              "attribution": settings.attribution.model_dump(mode="json"),
              "embedding_model": resolve_embedder(settings.embedding).model}
    (out / "summary.json").write_text(json.dumps({"config": config, "summary": summary}, indent=2), encoding="utf-8")
    (out / "report.md").write_text(report(config, summary, records), encoding="utf-8")
    return {"config": config, "summary": summary, "records": records,
            "paths": {"results": str(out / "results.jsonl"), "report": str(out / "report.md")}}


def report(config: dict, summary: dict, records: list[dict]) -> str:
    def f(x):
        return "–" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))

    lines = [f"# Citation check of {Path(config['answers']).name}", "",
             f"retrieval: {config['retrieval_mode']}, k={config['k']}, sources' budget "
             f"{config.get('source_tokens')} tokens; attribution mode "
             f"{config['attribution']['mode']}, scorer {config['attribution']['scorer']}, "
             f"threshold {config['attribution']['threshold']}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {f(v)} |" for k, v in summary.items()]
    lines += ["", "## Contradicted sentences", "", "The source states something else in its place.", ""]
    lines += [f"- `{r['id']}`: {s['text']} — source: "
              + "; ".join(f"“{d['source']}” (not “{d['claim']}”)" for d in s.get("differs") or [])
              for r in records for s in r["sentences"] if s.get("verdict") == "contradicted"]
    lines += ["", "## Unverified sentences", "", "No source states them (markers kept).", ""]
    lines += [f"- `{r['id']}`: {s['text']}" for r in records for s in r["sentences"]
              if s["outcome"] == "unsupported" and s.get("verdict") != "contradicted"]
    return "\n".join(lines) + "\n"
