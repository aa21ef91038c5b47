"""`opencite eval run | beir | compare`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from opencite.cli.errors import exits_on, fail
from opencite.cli.kb import kb_option, settings_for_kb
from opencite.cli.progress import RichSteps

console = Console()


def register(app: typer.Typer) -> None:
    register_feedback(app)
    ev = typer.Typer(help="Evaluate retrieval, answers, citations and latency.", no_args_is_help=True)
    app.add_typer(ev, name="eval")

    @ev.command("run")
    def run_cmd(
        questions: Path = typer.Argument(..., help="Questions, one JSON object per line (see README 'Evaluation')."),
        base_url: str = typer.Option(None, "--base-url", help="Site that path-only sources (/blog/x) live on."),
        k: int = typer.Option(None, "--k", help="Sources retrieved per question (default: settings.retrieval.k)."),
        concurrency: int = typer.Option(None, "--concurrency", help="Questions in flight (default: settings.eval.concurrency)."),
        out: Path = typer.Option(None, "--out", help="Run folder (default: data/eval-runs/<questions name>)."),
        retrieval_mode: str = typer.Option(None, "--retrieval-mode", help="dense | bm25 | hybrid."),
        judge: bool = typer.Option(True, "--judge/--no-judge", help="Score answers with the LLM judge."),
        retrieval_only: bool = typer.Option(False, "--retrieval-only",
                                            help="Retrieve only (no LLM, no judge): page-level retrieval metrics."),
        kb: str = kb_option(),
    ) -> None:
        """Run every question through the chat's chain; write results JSON and a report.
        A re-run with the same --out skips the questions already finished."""
        from opencite.eval.questions import QuestionsError
        from opencite.eval.run import RunConfigError, run_eval

        with exits_on(QuestionsError, RunConfigError, ValueError), RichSteps(Console(stderr=True)) as steps:
            result = run_eval(settings_for_kb(kb), questions, out=out, k=k, concurrency=concurrency,
                              retrieval_mode=retrieval_mode, base_url=base_url, judge=judge,
                              retrieval_only=retrieval_only, progress=steps)
        _print_result(result, results_key="json")

    @ev.command("citations")
    def citations_cmd(
        answers: Path = typer.Argument(..., help="Answers to check, one JSON object per line: id, question, answer, sources?"),
        out: Path = typer.Option(None, "--out", help="Folder (default: data/eval-runs/citations-<file name>)."),
        base_url: str = typer.Option(None, "--base-url", help="Site that path-only sources (/blog/x) live on."),
        kb: str = kb_option(),
    ) -> None:
        """Check every sentence of given answers against what the product retrieves for their
        questions (from the knowledge base --kb): outcomes, citation precision and recall
        against the gold pages."""
        from opencite.eval.citations import run_citations
        from opencite.eval.questions import QuestionsError

        if not answers.is_file():
            fail(f"{answers} does not exist. Fix: give a .jsonl file of {{id, question, answer, sources?}} lines.")
        settings = settings_for_kb(kb)
        with exits_on(QuestionsError, ValueError), RichSteps(Console(stderr=True)) as steps:
            result = run_citations(settings, answers, out=out, base_url=base_url, progress=steps)
        _print_result(result, results_key="results")

    @ev.command("beir")
    def beir_cmd(
        directory: Path = typer.Argument(..., help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv."),
        model: str = typer.Option(None, "--model", help="Embedding model (name or local path); default: settings."),
        out: Path = typer.Option(None, "--out", help="Folder for beir-results.json (default: data/eval-runs/beir-<name>)."),
        cache: Path = typer.Option(None, "--cache", help="Where the built collection is kept (default: data/beir)."),
        retrieval_mode: str = typer.Option(None, "--retrieval-mode",
                                           help="dense | bm25 | hybrid (default: settings.retrieval.mode; hybrid fuses as settings.retrieval says)."),
    ) -> None:
        """Retrieval alone on a BEIR dataset: nDCG@10, recall@10/100, MRR@10 (pytrec_eval)."""
        from opencite.eval.beir import BeirFormatError, run_beir
        from opencite.settings import get_settings

        settings = get_settings()
        if model:
            settings = settings.model_copy(update={"embedding": settings.embedding.model_copy(update={"model": model})})
        with exits_on(BeirFormatError, ValueError), RichSteps(Console(stderr=True), transient=True) as steps:
            result = run_beir(settings, directory, mode=retrieval_mode, cache_dir=cache, progress=steps)
        out_dir = out or settings.data_dir / "eval-runs" / f"beir-{Path(directory).resolve().name}"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "beir-results.json"
        path.write_text(json.dumps(result, indent=2), encoding="utf-8")
        table = Table("metric", "value", title=f"{Path(directory).name} · {result['mode']} · {Path(result['model']).name}")
        for name, value in result["metrics"].items():
            table.add_row(name, f"{value:.2f}")
        console.print(table)
        console.print(f"{result['documents']} documents ({result['embedded_now']} embedded now), "
                      f"{result['queries']} queries · results: {path}")

    @ev.command("compare")
    def compare_cmd(
        a: Path = typer.Argument(..., help="results.json of run A (eval run or eval beir)."),
        b: Path = typer.Argument(..., help="results.json of run B."),
    ) -> None:
        """Side-by-side table of two runs' summaries with the differences (B - A)."""
        from opencite.eval.compare import CompareError, compare_table

        with exits_on(CompareError):
            console.print(compare_table(a, b))


def register_feedback(app: typer.Typer) -> None:
    fb = typer.Typer(help="The web chat's 👍/👎 feedback.", no_args_is_help=True)
    app.add_typer(fb, name="feedback")

    @fb.command("export")
    def export_cmd(
        out: Path = typer.Option(None, "--out", help="Questions file to write (default: <data_dir>/eval/feedback-questions.jsonl)."),
        rating: str = typer.Option("all", "--rating", help="down | up | all."),
        kb: str = typer.Option(None, "--kb", help="Only answers from this knowledge base (default: all)."),
        feedback: Path = typer.Option(None, "--feedback", help="Feedback file (default: <data_dir>/runtime/feedback.jsonl)."),
    ) -> None:
        """Turn rated answers into an eval questions file for `opencite eval run` (see README 'Feedback')."""
        from opencite.eval.feedback import RATINGS, FeedbackError, export_questions
        from opencite.settings import get_settings

        settings = get_settings()
        if rating not in (*RATINGS, "all"):
            fail(f"--rating {rating!r} is not one of down, up, all.")
        path = out or settings.data_dir / "eval" / "feedback-questions.jsonl"
        with exits_on(FeedbackError):
            questions = export_questions(feedback or settings.feedback_path, path,
                                         ratings=RATINGS if rating == "all" else (rating,), kb=kb)
        down = sum(q["rating"] == "down" for q in questions)
        console.print(f"{len(questions)} questions ({len(questions) - down} 👍, {down} 👎) → {path}\n"
                      f"run them: opencite eval run {path}", highlight=False)


def _print_result(result: dict, results_key: str) -> None:
    """The summary table of a run, then where its results and report were written."""
    _print_summary(result["summary"])
    console.print(f"results: {result['paths'][results_key]}\nreport:  {result['paths']['report']}")


def _print_summary(summary: dict) -> None:
    from opencite.eval.compare import flatten_numbers

    table = Table("metric", "value", title="eval summary")
    for key, value in flatten_numbers(summary):
        table.add_row(key, "–" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value)))
    console.print(table)

