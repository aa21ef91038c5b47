"""`opencite ask "question"`: one cited answer in the terminal, streamed as it is written.

It answers through a running opencite API when one reads the same index (warm: the first token
waits only for the engine), else in this process; both give a `Reply`, shown the same way."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markdown import Markdown
from rich.text import Text

from opencite.cli.clock import STARTED
from opencite.cli.errors import fail
from opencite.cli.kb import kb_option, settings_for_kb
from opencite.settings import Settings, get_settings

VERDICT_STYLE = {"supported": "green", "repointed": "green", "added": "green", "unsupported": "yellow"}


@dataclass
class Reply:
    """An answer as `ask` shows it: the API's response fields, from either path."""

    content: str
    body: dict  # citations, sources, attributions, usage: as in the API's response
    timings: dict  # the chain's own seconds (retrieve_s, attribution_s, …)
    via: str
    first_token: float | None = None  # seconds after the command started
    last_token: float | None = None
    notes: list[str] = field(default_factory=list)


def register(app: typer.Typer) -> None:
    @app.command()
    def ask(
        question: str = typer.Argument(..., help="The question, in quotes."),
        kb: str = kb_option(),
        as_json: bool = typer.Option(False, "--json", help="Print the API's non-streamed response body instead."),
        timings: bool = typer.Option(False, "--timings",
                                     help="Also print retrieval, first token, last token and attribution times."),
        local: bool = typer.Option(False, "--local",
                                   help="Answer in this process even when an opencite API reads the same index."),
    ) -> None:
        """Answer one question from the knowledge base, with its sources, quotes and verdicts.
        A running `opencite api` (started by `opencite up`) answers it when it reads the same index."""
        if not question.strip():
            fail('the question is empty — ask something, e.g. opencite ask "How do I load a model in 4-bit?"')
        settings = settings_for_kb(kb)
        model = settings.api.model_id if kb == "default" else f"{settings.api.model_id}/{kb}"
        out, err = Console(highlight=False), Console(stderr=True, highlight=False)
        api = None if local else _api(get_settings())
        if as_json:
            body = _api_body(api, model, question) if api else None
            if body is None:
                body = _local_body(settings, kb, model, question)
            typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
            return
        reply = _shown(_api_reply(api, model, question), out) if api else None
        if reply is None:
            reply = _shown(_local_reply(_local_chain(settings, kb), model, question), out)
        _print_sources(reply, out)
        if timings:
            _print_timings(reply, err)


# -- the two ways to answer ----------------------------------------------------------------
def _api(settings: Settings):
    from opencite.cli.api_client import running_api

    return running_api(settings)


def _falls_back(exc) -> bool:
    """A key the API wants, or a KB it does not serve: this process can still answer."""
    return exc.status in (401, 403, 404)


def _api_reply(api, model: str, question: str) -> Iterator[str | Reply | None]:
    from opencite.cli.api_client import ApiRefused

    final: dict = {}
    try:
        for item in api.stream(model, question):
            if isinstance(item, str):
                yield item
            else:
                final = item
    except ApiRefused as exc:
        if _falls_back(exc):
            yield None
            return
        fail(f"{exc.code or exc.status}: {exc} (the opencite API at {api.url})", code=1)
    extension = final.get("opencite") or {}
    yield Reply(extension.get("content", ""), final, extension.get("timings") or {}, f"the opencite API at {api.url}")


def _api_body(api, model: str, question: str) -> dict | None:
    from opencite.cli.api_client import ApiRefused

    try:
        return api.complete(model, question)
    except ApiRefused as exc:
        if _falls_back(exc):
            return None
        fail(f"{exc.code or exc.status}: {exc} (the opencite API at {api.url})", code=1)


def _local_chain(settings: Settings, kb: str):
    _check_llm(settings)
    _check_index(settings, kb)
    from opencite.app.rag.chain import RagChain

    return RagChain(settings)


def _local_reply(chain, model: str, question: str) -> Iterator[str | Reply]:
    from opencite.app.answer import DoneEvent, ErrorEvent, TokenEvent
    from opencite.app.launch import completion_json

    answer = None
    for event in chain.stream([{"role": "user", "content": question}]):
        if isinstance(event, TokenEvent):
            yield event.text
        elif isinstance(event, ErrorEvent):
            fail(f"{event.kind}: {event.message}", code=1)
        elif isinstance(event, DoneEvent):
            answer = event.answer
    _fail_on_error(answer)
    body = completion_json(answer, model)
    yield Reply(answer.answer, body, answer.timings or {}, "this process")


def _local_body(settings: Settings, kb: str, model: str, question: str) -> dict:
    from opencite.app.launch import completion_json

    answer = _local_chain(settings, kb).invoke([{"role": "user", "content": question}])
    _fail_on_error(answer)
    return completion_json(answer, model)


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


def _fail_on_error(answer) -> None:
    if answer is None:
        fail("the answer ended without a result — see the engine's log", code=1)
    if answer.error:
        fail(f"{answer.error_kind}: {answer.error}", code=1)


# -- showing it ----------------------------------------------------------------------------
def _shown(pieces: Iterator[str | Reply | None], out: Console) -> Reply | None:
    """Streams the text as rendered markdown, then leaves the checked answer on screen (it may
    differ from what streamed: repaired markers). None when the API handed the question back."""
    written, first, last, reply = "", None, None, None
    with Live(Text("…"), console=out, refresh_per_second=8, transient=True) as live:
        for piece in pieces:
            if isinstance(piece, str):
                last = time.perf_counter() - STARTED
                first = last if first is None else first
                written += piece
                live.update(Markdown(written))
            else:
                reply = piece
    if reply is None:
        return None
    reply.first_token, reply.last_token = first, last
    out.print(Markdown(reply.content or written))
    return reply


def _print_sources(reply: Reply, out: Console) -> None:
    sources = reply.body.get("sources") or []
    cited = {c["n"] for c in reply.body.get("citations") or []}
    sentences = (reply.body.get("attributions") or {}).get("sentences") or []
    if not sources:
        return
    quotes: dict[int, list[tuple[str, str]]] = {}
    for sentence in sentences:  # each cited source's supporting quotes, with the verdict of the sentence they back
        for n in sentence["markers"]:
            evidence = next((e for e in sentence["evidence"] if e["n"] == n and e["supports"]), None)
            if evidence is not None and evidence.get("quote"):
                quotes.setdefault(n, []).append((evidence["quote"], sentence["outcome"]))
    out.print()
    out.print(Text("Sources", style="bold"))
    for source in sources:
        if source["n"] not in cited:
            continue
        out.print(Text.assemble((f"[{source['n']}] ", "bold"), source.get("title") or source["url"]))
        out.print(Text(f"    {source['url']}", style="cyan"))
        for quote, verdict in quotes.get(source["n"], []):
            out.print(Text.assemble("    “", (quote, "italic"), "” ", (verdict, VERDICT_STYLE.get(verdict, "red"))))
    for sentence in sentences:
        if sentence["outcome"] == "unsupported":
            out.print(Text.assemble(("⚠ not supported by the sources: ", "yellow"), sentence["text"]))


def _print_timings(reply: Reply, err: Console) -> None:
    t, usage = reply.timings, reply.body.get("usage") or {}

    def seconds(value: float | None, after_start: bool = False) -> str:
        if value is None:
            return "–"
        return f"{value:.2f} s" + (" after the command started" if after_start else "")

    def tokens(key: str) -> str:
        return f"{usage[key]}" if usage.get(key) is not None else "–"

    # The prompt's size sets the time to the first token on a CPU engine, so it is shown beside it.
    err.print(Group(Text("timings", style="bold"),
                    Text(f"  answered by      {reply.via}"),
                    Text(f"  retrieval        {seconds(t.get('retrieve_s'))}"),
                    Text(f"  first token      {seconds(reply.first_token, True)}"),
                    Text(f"  last token       {seconds(reply.last_token, True)}"),
                    Text(f"  attribution      {seconds(t.get('attribution_s'))}"),
                    Text(f"  prompt tokens    {tokens('prompt_tokens')}"),
                    Text(f"  answer tokens    {tokens('completion_tokens')}")))
