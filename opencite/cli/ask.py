"""`opencite ask "question"`: one cited answer in the terminal, streamed as it is written."""

from __future__ import annotations

import json

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markdown import Markdown
from rich.text import Text

from opencite.cli.errors import fail
from opencite.cli.kb import kb_option, settings_for_kb
from opencite.settings import Settings

VERDICT_STYLE = {"supported": "green", "repointed": "green", "added": "green", "unsupported": "yellow"}


def register(app: typer.Typer) -> None:
    @app.command()
    def ask(
        question: str = typer.Argument(..., help="The question, in quotes."),
        kb: str = kb_option(),
        as_json: bool = typer.Option(False, "--json", help="Print the API's non-streamed response body instead."),
        timings: bool = typer.Option(False, "--timings",
                                     help="Also print retrieval, first token, last token and attribution times."),
    ) -> None:
        """Answer one question from the knowledge base, with its sources, quotes and verdicts."""
        if not question.strip():
            fail('the question is empty — ask something, e.g. opencite ask "How do I load a model in 4-bit?"')
        settings = settings_for_kb(kb)
        _check_llm(settings)
        _check_index(settings, kb)
        from opencite.app.rag.chain import RagChain

        chain = RagChain(settings)
        messages = [{"role": "user", "content": question}]
        out = Console(highlight=False)
        if as_json:
            from opencite.app.launch import completion_json

            answer = chain.invoke(messages)
            _fail_on_error(answer)
            model = settings.api.model_id if kb == "default" else f"{settings.api.model_id}/{kb}"
            typer.echo(json.dumps(completion_json(answer, model), indent=2, ensure_ascii=False))
        else:
            answer = _stream(chain, messages, out)
            _fail_on_error(answer)
            _print_sources(answer, out)
        if timings:
            _print_timings(answer, Console(stderr=True, highlight=False))


def _check_llm(settings: Settings) -> None:
    from opencite.serving.endpoint import resolve_llm

    endpoint = resolve_llm(settings)
    found = endpoint.probe(timeout=5)
    if not found.ok:
        fix = ("start one: `opencite serve` (or `opencite up`)" if settings.llm.base_url is None
               else "check OPENCITE_LLM__BASE_URL, or start that server")
        fail(f"no LLM engine answers: {found.message} — {fix}")


def _check_index(settings: Settings, kb: str) -> None:
    from opencite.store.index import chroma_client, find_collection

    collection = find_collection(chroma_client(settings), settings.chroma.collection)
    if collection is None or collection.count() == 0:
        fail(f"knowledge base {kb!r} is empty — ingest pages first: opencite ingest --kb {kb} URL ...")


def _stream(chain, messages: list[dict], out: Console):
    from opencite.app.answer import DoneEvent, ErrorEvent, TokenEvent

    written, answer = "", None
    with Live(Text("…"), console=out, refresh_per_second=8, transient=True) as live:
        for event in chain.stream(messages):
            if isinstance(event, TokenEvent):
                written += event.text
                live.update(Markdown(written))
            elif isinstance(event, ErrorEvent):
                fail(f"{event.kind}: {event.message}", code=1)
            elif isinstance(event, DoneEvent):
                answer = event.answer
    # The checked answer may differ from what streamed (repaired markers): it is what stays on screen.
    out.print(Markdown(answer.answer if answer is not None else written))
    return answer


def _fail_on_error(answer) -> None:
    if answer is None:
        fail("the answer ended without a result — see the engine's log", code=1)
    if answer.error:
        fail(f"{answer.error_kind}: {answer.error}", code=1)


def _print_sources(answer, out: Console) -> None:
    quotes = _quotes(answer)
    cited = {s.n for s in answer.cited}
    if not answer.sources:
        return
    out.print()
    out.print(Text("Sources", style="bold"))
    for source in answer.sources:
        if source.n not in cited:
            continue
        out.print(Text.assemble((f"[{source.n}] ", "bold"), source.title or source.url))
        out.print(Text(f"    {source.url}", style="cyan"))
        for quote, verdict in quotes.get(source.n, []):
            out.print(Text.assemble("    “", (quote, "italic"), "” ", (verdict, VERDICT_STYLE.get(verdict, "red"))))
    unsupported = [s for s in (answer.attribution.sentences if answer.attribution else [])
                   if s.outcome == "unsupported"]
    for sentence in unsupported:
        out.print(Text.assemble(("⚠ not supported by the sources: ", "yellow"), sentence.text))


def _quotes(answer) -> dict[int, list[tuple[str, str]]]:
    """Each cited source's supporting quotes with the verdict of the sentence they back."""
    found: dict[int, list[tuple[str, str]]] = {}
    for sentence in answer.attribution.sentences if answer.attribution else []:
        for n in sentence.markers:
            evidence = sentence.quote_for(n)
            if evidence is not None and evidence.quote:
                found.setdefault(n, []).append((evidence.quote, sentence.outcome))
    return found


def _print_timings(answer, err: Console) -> None:
    t = answer.timings or {}

    def seconds(key: str) -> str:
        return f"{t[key]:.2f} s" if key in t else "–"

    usage = answer.usage or {}

    def tokens(key: str) -> str:
        return f"{usage[key]}" if usage.get(key) is not None else "–"

    # The prompt's size sets the time to the first token on a CPU engine, so it is shown beside it.
    err.print(Group(Text("timings", style="bold"),
                    Text(f"  retrieval        {seconds('retrieve_s')}"),
                    Text(f"  first token      {seconds('first_token_s')}"),
                    Text(f"  last token       {seconds('total_s')}"),
                    Text(f"  attribution      {seconds('attribution_s')}"),
                    Text(f"  prompt tokens    {tokens('prompt_tokens')}"),
                    Text(f"  answer tokens    {tokens('completion_tokens')}")))
