"""How the chain's steps do their I/O, written once for both paths (see `RagChain._steps`).

`AsyncIO` awaits the LLM and runs blocking work (embedding, Chroma) in a thread; `BlockingIO`
makes the same calls blocking, in coroutines that never suspend, so `drive_blocking` can run the
very same steps without an event loop for `RagChain.stream`.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Iterator

from opencite.app.answer import Event


class AsyncIO:
    """The chain's I/O on the event loop."""

    @staticmethod
    async def invoke(llm, messages, step: str):
        return await llm.ainvoke(messages, config={"run_name": step})

    @staticmethod
    def stream(llm, messages, step: str):
        return llm.astream(messages, config={"run_name": step})

    @staticmethod
    async def blocking(work):
        return await asyncio.to_thread(work)


class BlockingIO:
    """The same I/O as blocking calls: its coroutines finish without ever suspending, so
    `drive_blocking` runs the steps with no event loop (and the sync LLM client)."""

    @staticmethod
    async def invoke(llm, messages, step: str):
        return llm.invoke(messages, config={"run_name": step})

    @staticmethod
    async def stream(llm, messages, step: str):
        chunks = llm.stream(messages, config={"run_name": step})
        try:
            for chunk in chunks:
                yield chunk
        finally:
            chunks.close()  # an early stop closes the LLM request

    @staticmethod
    async def blocking(work):
        return work()


def drive_blocking(steps: AsyncIterator[Event]) -> Iterator[Event]:
    """Iterate an async generator whose awaits never suspend (`BlockingIO`), without a loop."""

    def step(awaitable):
        try:
            awaitable.send(None)
        except StopIteration as done:
            return done.value
        awaitable.close()
        raise RuntimeError("a blocking chain step suspended: it awaited real async I/O")

    try:
        while True:
            try:
                event = step(steps.__anext__())
            except StopAsyncIteration:
                return
            yield event
    finally:
        step(steps.aclose())
