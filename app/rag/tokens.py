"""Token counting for the prompt budget.

With the served model's tokenizer when it is on this machine (a local model folder, the
Hugging Face cache, or a local GGUF file's own vocabulary read by llama.cpp; never downloaded
here), else a conservative estimate: one token per 3 characters (English BPE averages ~4) plus
a per-message allowance for the chat template.
"""

from __future__ import annotations

import atexit
import logging
import math
from functools import lru_cache
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

MESSAGE_OVERHEAD = 8  # role markers and separators of a chat template, per message
CHARS_PER_TOKEN = 3.0


class TokenCounter(Protocol):
    exact: bool

    def count(self, text: str) -> int: ...

    def truncate(self, text: str, tokens: int) -> str: ...


class EstimateCounter:
    exact = False

    def count(self, text: str) -> int:
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def truncate(self, text: str, tokens: int) -> str:
        return text[: max(0, int(tokens * CHARS_PER_TOKEN))]


class TokenizerCounter:
    exact = True

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def truncate(self, text: str, tokens: int) -> str:
        ids = self.tokenizer.encode(text, add_special_tokens=False)[: max(0, tokens)]
        return self.tokenizer.decode(ids)


class GGUFCounter:
    """The GGUF's own tokenizer: llama.cpp loads its vocabulary only (~0.3 s, no weights)."""

    exact = True

    def __init__(self, path: Path) -> None:
        import llama_cpp

        self.llama = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
        # Freed before the interpreter tears llama_cpp's module down: freed by the garbage
        # collector after that, it prints an ignored TypeError at exit.
        atexit.register(self.llama.close)

    def _ids(self, text: str) -> list[int]:
        return self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False) if text else []

    def count(self, text: str) -> int:
        return len(self._ids(text))

    def truncate(self, text: str, tokens: int) -> str:
        return self.llama.detokenize(self._ids(text)[: max(0, tokens)]).decode("utf-8", errors="ignore")


@lru_cache(maxsize=8)
def token_counter(*candidates: str | None) -> TokenCounter:
    """The first candidate (model path or name) whose tokenizer loads offline, else the estimate."""
    for name in candidates:
        if not name:
            continue
        path = Path(name).expanduser()
        if path.is_file():
            # A file is never a tokenizer folder: transformers spent ~4 s per candidate failing
            # on a .gguf path, before every first answer.
            if path.suffix == ".gguf":
                try:
                    return GGUFCounter(path)
                except Exception as exc:  # llama-cpp-python not installed, or not a GGUF it reads
                    log.debug("no llama.cpp vocabulary from %s: %s", name, exc)
            continue
        try:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(name, local_files_only=True)
            return TokenizerCounter(tok)
        except Exception as exc:  # not local / not a HF model: try the next one
            log.debug("no local tokenizer for %s: %s", name, exc)
    return EstimateCounter()


def count_messages(counter: TokenCounter, messages: list[dict]) -> int:
    return sum(counter.count(m["content"]) + MESSAGE_OVERHEAD for m in messages)


def counted_usage(counter: TokenCounter, prompt: list[dict], completion: str = "") -> dict:
    """Usage as an OpenAI server reports it, counted here with `counter` (the served model's
    tokenizer, or an estimate when it is not on this machine: `usage_counted_by` says which)."""
    return {"prompt_tokens": count_messages(counter, prompt), "completion_tokens": counter.count(completion),
            "usage_counted_by": "tokenizer" if counter.exact else "estimate"}
