"""The RAG chain: condense a follow-up, retrieve top-k, fit a fenced prompt into the model's
context window, stream the answer through the citation filter.

Like the notebook's chain it returns context (sources), question and answer together
(`RagAnswer`). LLM failures never raise: they become an `ErrorEvent` / `RagAnswer.error`
with the retrieved sources still filled. See docs in the README "Chat and chain" section.
"""

from __future__ import annotations

import dataclasses
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import AsyncIterator, Iterator

import openai
from langchain_core.language_models import BaseChatModel

from opencite.app.citations import attribution
from opencite.app.rag import prompts
from opencite.app.answer import (  # noqa: F401  (re-exported: the contract)
    DoneEvent, ErrorEvent, Event, RagAnswer, Source, SourcesEvent, TokenEvent)
from opencite.app.rag.chain_io import AsyncIO, BlockingIO, drive_blocking
from opencite.app.rag.chain_run import ChainRun, llm_failure, numbered_sources
from opencite.app.citations.markers import CitationFilter
from opencite.app.rag.llm import chat_model
from opencite.app.rag import passages
from opencite.app.rag.checking import Groundwork, check_answer
from opencite.app.rag.retrieval import retrieve_spans
from opencite.app.citations.sentences import markers_in, split_sentences
from opencite.app.rag.budget import FittedPrompt, fit_prompt, local_cpu_engine, room_for_sources, source_budget
from opencite.app.rag.tokens import counted_usage, token_counter
from opencite.serving.endpoint import LLMEndpoint, resolve_llm
from opencite.store.index import OpenIndex, open_index
from opencite.settings import Settings

INGEST_HINT = "opencite ingest --from data/sources.txt"
LLM_OPTIONS = ("temperature", "top_p", "max_tokens", "seed", "stop", "frequency_penalty",
               "presence_penalty", "user")
CHAIN_OPTIONS = ("k", "retrieval_mode", "condense")
_SENTENCE_END = re.compile(r"[.!?\n]")  # a token that may end a sentence: attribution warms it


class RagChain:
    def __init__(self, settings: Settings, index: OpenIndex | None = None,
                 llm: BaseChatModel | None = None) -> None:
        self.settings = settings
        self._index = index
        self._llm = llm
        self._endpoint: LLMEndpoint | None = None
        self._scorer = None
        self._warmer: ThreadPoolExecutor | None = None

    # -- parts, opened lazily so a UI can start before the LLM server does -------------------
    @property
    def index(self) -> OpenIndex:
        if self._index is None:
            self._index = open_index(self.settings)
        return self._index

    @property
    def endpoint(self) -> LLMEndpoint:
        if self._endpoint is None:
            self._endpoint = resolve_llm(self.settings)
        return self._endpoint

    @property
    def llm(self) -> BaseChatModel:
        if self._llm is None:
            self._llm = chat_model(self.settings, self.endpoint)
        return self._llm

    @property
    def scorer(self) -> attribution.Scorer:
        if self._scorer is None:
            cfg = self.settings.attribution
            self._scorer = attribution.default_scorer(cfg, self.index.embeddings,
                                                      self.llm if cfg.scorer == "llm" else None)
        return self._scorer

    def warm_attribution(self, sources: list[Source], written: str = "",
                         groundwork: Groundwork | None = None) -> Future | None:
        """Starts attribution's work on the sources (splitting, embedding their sentences) and on
        the sentences `written` so far in the background, so that after generation about one
        sentence remains to embed. With `groundwork`, when `checks_ahead`, the complete sentences
        are checked too, KB lookup included (`checking`), and what that finds is kept there for
        `attribute`. Queued in order, one at a time."""
        if self.settings.attribution.mode == "off" or not sources:
            return None
        if self._warmer is None:
            self._warmer = ThreadPoolExecutor(1, thread_name_prefix="opencite-attribution")
        return self._warmer.submit(self._warm, sources, written, groundwork)

    def checks_ahead(self) -> bool:
        """Whether `warm_attribution` checks the written sentences (`attribution.ahead`). A costly
        scorer (an LLM judge, a cross-encoder) is never run on text that may still change."""
        ahead = self.settings.attribution.ahead
        if ahead == "auto":
            ahead = "embed" if local_cpu_engine(self.settings) else "check"
        return ahead == "check" and hasattr(self.scorer, "warm")

    def _warm(self, sources: list[Source], written: str, groundwork: Groundwork | None) -> None:
        attribution.warm(sources, self.scorer, self.settings.attribution, written)
        if groundwork is not None and self.checks_ahead():
            complete = split_sentences(written)[:-1]
            text = written[:complete[-1].end] if complete else ""
            if text and text != groundwork.checked:
                check_answer(text, sources, self.scorer, self.settings, self.index, groundwork)
                groundwork.checked = text

    def attribute(self, answer: RagAnswer, warming: Future | None = None,
                  groundwork: Groundwork | None = None) -> RagAnswer:
        """Every sentence checked against the sources (settings.attribution); the answer's text
        and cited sources follow the mode. Failed or empty answers are left as they are.
        `warming` (from `warm_attribution`) is waited for; if it failed, scoring does its work.
        Sentences the prompt's sources do not support are looked up in the index (`lookup`):
        passages found there join as found-after sources and may be cited. `groundwork`: what
        `warm_attribution` kept for this answer."""
        cfg = self.settings.attribution
        if cfg.mode == "off" or answer.error or not answer.answer or not answer.sources:
            return answer
        if warming is not None:
            wait([warming])
        checked = check_answer(answer.answer, answer.sources, self.scorer, self.settings, self.index,
                               groundwork or Groundwork())
        result, sources = checked.attribution, checked.sources
        timings = dict(answer.timings or {})
        if checked.lookup_s is not None:
            timings["lookup_s"] = checked.lookup_s
        cited = set(markers_in(result.text))
        timings["attribution_s"] = result.seconds
        return dataclasses.replace(answer, answer=result.text, attribution=result, timings=timings,
                                   sources=sources, cited=[s for s in sources if s.n in cited])

    def context_window(self) -> int:
        return self.settings.llm.context_window or self.endpoint.context_window

    def counter(self):
        return token_counter(self.settings.serve.model, self.endpoint.model)

    # -- public API ------------------------------------------------------------------------
    def invoke(self, messages: list[dict], **options) -> RagAnswer:
        for event in self.stream(messages, **options):
            if isinstance(event, DoneEvent):
                return event.answer
        raise RuntimeError("the chain ended without an answer")  # unreachable

    async def ainvoke(self, messages: list[dict], **options) -> RagAnswer:
        async for event in self.astream(messages, **options):
            if isinstance(event, DoneEvent):
                return event.answer
        raise RuntimeError("the chain ended without an answer")  # unreachable

    def stream(self, messages: list[dict], **options) -> Iterator[Event]:
        return drive_blocking(self._steps(self._start(messages, options), BlockingIO()))

    def astream(self, messages: list[dict], **options) -> AsyncIterator[Event]:
        return self._steps(self._start(messages, options), AsyncIO())

    async def _steps(self, run: ChainRun, io: BlockingIO | AsyncIO) -> AsyncIterator[Event]:
        """The chain's steps, written once: condense → retrieve + prompt → generate → done.

        `io` performs the LLM calls and the blocking retrieval: natively async for `astream`,
        plain blocking calls (that never suspend) for `stream`. The last line is the single place
        the final answer and its sources are made (`run.done()`, then `attribute`)."""
        if run.history and run.options.get("condense", True):
            condense = prompts.condense_messages(run.history, run.question)
            try:
                reply = await io.invoke(self._bound(run, streaming=False), condense, "condense")
                run.standalone = prompts.parse_condensed(reply.content, run.question)
            except openai.APIError:  # the answer call then reports the LLM failure, with sources
                run.standalone = run.question
        # Embedding + Chroma are blocking: the async path keeps them off the event loop.
        for event in await io.blocking(lambda: list(self._retrieve_and_prompt(run))):
            yield event
        if run.finished:
            return
        groundwork = Groundwork()
        run.warming = self.warm_attribution(run.sources, "", groundwork)
        try:
            async for chunk in io.stream(self._bound(run), run.prompt, "generate"):
                for event in run.tokens(chunk):
                    if run.warming is not None and _SENTENCE_END.search(event.text):
                        run.warming = self.warm_attribution(run.sources, "".join(run.parts), groundwork)
                    yield event
            for event in run.flush():
                yield event
            self._check_complete(run)
            run.usage = run.usage or self._counted_usage(run)
        except Exception as exc:  # any LLM failure becomes an ErrorEvent, sources kept
            for event in run.flush():
                yield event
            where = f"{self.endpoint.base_url} (model {self.endpoint.model})" if self._endpoint else "the LLM"
            yield llm_failure(run, exc, where)
        # The final answer with its sources, attributed (scoring embeds sentences: blocking).
        yield DoneEvent(await io.blocking(lambda: self.attribute(run.done().answer, run.warming, groundwork)))

    def prepare(self, messages: list[dict], **options) -> tuple[list[Source], list[dict]]:
        """What would be sent to the LLM for a question (no condense, no LLM call): the
        numbered sources and the prompt messages. Used by the latency benchmark and for
        debugging prompts."""
        run = self._start(messages, options)
        for _ in self._retrieve_and_prompt(run):
            pass
        return run.sources, run.prompt

    # -- steps -----------------------------------------------------------------------------
    def _start(self, messages: list[dict], options: dict) -> ChainRun:
        unknown = set(options) - set(LLM_OPTIONS) - set(CHAIN_OPTIONS)
        if unknown:
            raise ValueError(f"unknown chain option(s): {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(CHAIN_OPTIONS + LLM_OPTIONS)}")
        if not messages or not isinstance(messages, list):
            raise ValueError("messages must be a non-empty list of {'role', 'content'} dicts")
        turns = [m for m in messages if m.get("role") in ("user", "assistant")]
        if not turns or turns[-1].get("role") != "user":
            raise ValueError("the last message must be the user's question (role 'user')")
        question = str(turns[-1].get("content") or "").strip()
        if not question:
            raise ValueError("the question (last user message) is empty")
        history = [{"role": m["role"], "content": str(m.get("content") or "")} for m in turns[:-1]]
        llm_options = {k: v for k, v in options.items() if k in LLM_OPTIONS and v is not None}
        return ChainRun(question=question, history=history, options=options, llm_options=llm_options,
                    standalone=question)

    def _bound(self, run: ChainRun, streaming: bool = True):
        opts = dict(run.llm_options)
        if not streaming:  # the condense step: short, deterministic
            opts = {"temperature": 0.0, "max_tokens": 128}
        return self.llm.bind(**opts) if opts else self.llm

    def _retrieve_and_prompt(self, run: ChainRun) -> Iterator[Event]:
        k = int(run.options.get("k") or self.settings.retrieval.k)
        if k < 1:
            raise ValueError(f"k must be at least 1 (got {k})")
        t = time.perf_counter()
        index = self.index
        hits = retrieve_spans(index, run.standalone, k, self.settings, run.options.get("retrieval_mode"))
        # count() scans the collection: ask it only when retrieval found nothing.
        if not hits and index.count() == 0:
            run.filter = CitationFilter(0)
            yield SourcesEvent([])
            yield run.fail("empty_index", (
                "The index is empty: nothing has been ingested yet. Ingest the default sources "
                f"with `{INGEST_HINT}` (or your own list of URLs), then ask again."))
            yield run.done()
            run.finished = True
            return
        run.timings["retrieve_s"] = time.perf_counter() - t
        overflow = self._fit_prompt(run, hits)
        run.timings["prompt_ready_s"] = time.perf_counter() - run.t0
        run.filter = CitationFilter(len(run.sources))
        yield SourcesEvent(list(run.sources))
        if overflow:
            yield run.fail("context_overflow", overflow)
            yield run.done()
            run.finished = True

    def source_tokens(self) -> int:
        """The sources' token budget for this chain's engine and window (`budget.source_budget`)."""
        return source_budget(self.settings, self.context_window())

    def _fit_prompt(self, run: ChainRun, hits) -> str | None:
        max_tokens = int(run.llm_options.get("max_tokens") or self.settings.llm.max_tokens)
        fitted = self.prompt_for(run.standalone, hits, max_tokens)
        run.sources, run.prompt = fitted.sources, fitted.prompt
        return fitted.overflow

    def prompt_for(self, question: str, hits, max_tokens: int | None = None) -> FittedPrompt:
        """The prompt this chain sends for `hits` (`retrieve_spans`): windows around the hits'
        best sentences filling the sources' token budget (`passages.select`), then fitted into
        the window (`fit_prompt`), which also makes sure the budget holds. `opencite eval
        citations` checks answers against these sources, as the chain does."""
        max_tokens = max_tokens or self.settings.llm.max_tokens
        counter, window = self.counter(), self.context_window()
        budget = room_for_sources(question, counter, window, max_tokens, self.source_tokens())
        ranked = numbered_sources([(doc, score) for doc, score, _ in hits])
        if budget <= 0:  # the question alone does not fit: fit_prompt says so, sources kept
            return fit_prompt(question, ranked, counter, window, max_tokens)
        chosen = passages.select(question, passages.candidates(hits, ranked), counter, budget)
        if not chosen and ranked:  # not one window fits: the best hit's own chunk, shortened
            doc, _, (start, end) = hits[0]
            chosen = [dataclasses.replace(ranked[0], snippet=doc.page_content[start:end])]
        return fit_prompt(question, chosen, counter, window, max_tokens, self.source_tokens())

    def _counted_usage(self, run: ChainRun) -> dict:
        """Usage for a server that reports none (no `stream_options.include_usage`): the answer
        and the prompt messages counted with the served model's tokenizer (an estimate when it
        is not on this machine; the prompt adds a per-message allowance for the chat template)."""
        return counted_usage(self.counter(), run.prompt, "".join(run.generated))

    def _check_complete(self, run: ChainRun) -> None:
        # An OpenAI-compatible stream ends with a finish_reason; a dropped connection does not.
        from langchain_openai.chat_models.base import BaseChatOpenAI

        if isinstance(self.llm, BaseChatOpenAI) and run.finish_reason is None:
            raise _StreamCut("the answer stream ended before the LLM finished (connection dropped)")


class _StreamCut(RuntimeError):
    pass
