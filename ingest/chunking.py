"""Markdown article → chunks sized in the embedder's own tokens, each with its heading path.

Two steps: split by headings (so each chunk knows its "H1 > H2" path), then split each section
with LangChain's RecursiveCharacterTextSplitter measured by the embedder's tokenizer, with
markdown separators that prefer code-fence, paragraph and line boundaries over cutting inside
a code block.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from langchain_core.documents import Document
from langchain_text_splitters import Language, RecursiveCharacterTextSplitter
from markdown_it import MarkdownIt

from opencite.store import constants as C
from opencite.ingest.documents import SourceDocument
from opencite.settings import ChunkingSettings

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_TABLES = MarkdownIt("commonmark").enable("table")
# Tokens the model adds around every input ([CLS]/[SEP], <s></s>): a chunk plus these must fit.
_SPECIAL_TOKENS = 2


@dataclass
class Section:
    heading_path: str
    text: str


def split_sections(markdown: str) -> list[Section]:
    """Sections of a markdown text by ATX headings, outside code fences.

    Written here rather than LangChain's MarkdownHeaderTextSplitter because that one strips
    every line, which destroys code indentation."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    fence: str | None = None

    def flush(final: bool = False) -> None:
        text = "\n".join(lines).strip("\n")
        if not final and all(_HEADING.match(line) for line in lines if line.strip()):
            return  # headings with no text yet (e.g. "# Title" then "## First"): they open the next section
        if text.strip():
            sections.append(Section(" > ".join(t for _, t in path), text))
        lines.clear()

    for line in markdown.splitlines():
        fence_match = _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            fence = None if fence == marker else (fence or marker)
        heading = None if fence else _HEADING.match(line)
        if heading and not fence_match:
            flush()
            level = len(heading.group(1))
            path = [(lv, t) for lv, t in path if lv < level] + [(level, heading.group(2).strip())]
        lines.append(line)
    flush(final=True)
    return sections


def _blocks(text: str) -> list[str]:
    """Paragraphs (blank-line separated) with each fenced code block kept whole as one block."""
    blocks: list[str] = []
    current: list[str] = []
    fence: str | None = None

    def flush() -> None:
        if any(line.strip() for line in current):
            blocks.append("\n".join(current).strip("\n"))
        current.clear()

    for line in text.splitlines():
        fence_match = _FENCE.match(line)
        if fence_match and fence is None:
            flush()
            fence = fence_match.group(1)
            current.append(line)
            continue
        current.append(line)
        if fence is not None:
            if fence_match and fence_match.group(1) == fence:
                fence = None
                flush()
        elif not line.strip():
            flush()
    flush()
    return blocks


def _heading_with_next(blocks: list[str]) -> list[str]:
    """A heading line alone is no chunk: it travels with the paragraph after it."""
    out: list[str] = []
    for block in blocks:
        if out and _HEADING.match(out[-1]) and "\n" not in out[-1]:
            out[-1] = out[-1] + "\n\n" + block
        else:
            out.append(block)
    return out


def token_counter(tokenizer) -> Callable[[str], int]:
    """`len(tokenizer.tokenize(text))`, LangChain's `from_huggingface_tokenizer` measure.

    The splitter measures every piece it tries, thousands per page, so a fast tokenizer is asked
    directly (same tokens, without transformers' per-call overhead). Its own copy,
    with truncation and padding off, so the count is never capped at the model's length."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow (pure Python) tokenizer
        return lambda text: len(tokenizer.tokenize(text))
    backend = copy.deepcopy(backend)
    backend.no_truncation()
    backend.no_padding()

    # The merge measures each paragraph again after split_text sized it: remember recent ones.
    @lru_cache(maxsize=4096)
    def count(text: str) -> int:
        return len(backend.encode(text, add_special_tokens=False).ids)

    return count


def merge_blocks(blocks: list[str], separator: str, length: Callable[[str], int], size: int,
                 overlap: int) -> list[str]:
    """Blocks joined by `separator` into chunks of at most `size` tokens; each chunk starts with
    the last blocks of the one before, up to `overlap` tokens.

    The same greedy merge as LangChain's splitters (kept here because theirs is private API):
    a block larger than `size` becomes a chunk of its own."""
    sep_len = length(separator)
    chunks: list[str] = []
    current: list[str] = []
    total = 0

    def joined_len(extra: int) -> int:
        return total + extra + (sep_len if current else 0)

    for block in blocks:
        block_len = length(block)
        if joined_len(block_len) > size and current:
            if text := separator.join(current).strip():
                chunks.append(text)
            # Drop leading blocks until what is left fits the overlap and leaves room for this block.
            while total > overlap or (joined_len(block_len) > size and total > 0):
                total -= length(current[0]) + (sep_len if len(current) > 1 else 0)
                current = current[1:]
        current.append(block)
        total += block_len + (sep_len if len(current) > 1 else 0)
    if text := separator.join(current).strip():
        chunks.append(text)
    return chunks


class Chunker:
    """Chunks SourceDocuments with a splitter measured in `tokenizer`'s tokens."""

    def __init__(self, tokenizer, cfg: ChunkingSettings, max_seq_length: int | None = None) -> None:
        size = cfg.chunk_tokens
        if max_seq_length:  # the model truncates past this: a longer chunk would be embedded only in part
            size = min(size, max_seq_length - _SPECIAL_TOKENS)
        overlap = min(cfg.overlap_tokens, size // 2)
        self.chunk_tokens, self.overlap_tokens = size, overlap
        self.count_tokens = token_counter(tokenizer)
        self.splitter = RecursiveCharacterTextSplitter(
            length_function=self.count_tokens,
            chunk_size=size,
            chunk_overlap=overlap,
            separators=RecursiveCharacterTextSplitter.get_separators_for_language(Language.MARKDOWN),
            is_separator_regex=True,
            keep_separator="start",
        )

    @classmethod
    def for_embeddings(cls, embeddings, cfg: ChunkingSettings) -> "Chunker":
        """The chunker for a langchain HuggingFaceEmbeddings (its SentenceTransformer's tokenizer)."""
        model = embeddings._client
        return cls(model.tokenizer, cfg, getattr(model, "max_seq_length", None))

    def split_text(self, text: str) -> list[str]:
        """Paragraphs and whole code blocks merged up to the size (with overlap); only a block
        larger than a chunk is split inside (by LangChain's splitter, recursively, markdown-aware)."""
        blocks: list[str] = []
        for block in _heading_with_next(_blocks(text)):
            if self.count_tokens(block) <= self.chunk_tokens:
                blocks.append(block)
            else:
                blocks.extend(self.splitter.split_text(block))
        merged = merge_blocks(blocks, "\n\n", self.count_tokens, self.chunk_tokens, self.overlap_tokens)
        # A heading cut off its oversized paragraph still travels with the paragraph's first piece.
        return _heading_with_next(merged)

    def chunk(self, doc: SourceDocument) -> list[Document]:
        content_hash = doc.content_hash
        base = {
            C.SOURCE: doc.url,
            C.TITLE: doc.title or "",
            C.DESCRIPTION: doc.description or "",
            C.LANGUAGE: doc.language or "",
            C.CONTENT_HASH: content_hash,
            C.FETCHED_AT: doc.fetched_at or "",
        }
        chunks: list[Document] = []
        for section in split_sections(doc.text):
            headers = table_headers(section.text)
            for piece in self.split_text(section.text):
                if not piece.strip():
                    continue
                meta = dict(base, **{C.HEADING_PATH: section.heading_path, C.CHUNK_INDEX: len(chunks)})
                header = headers.get(piece.strip("\n").split("\n", 1)[0].strip())
                if header:
                    meta[C.TABLE_HEADER] = header
                chunks.append(Document(page_content=piece.strip("\n"), metadata=meta))
        return chunks


def table_headers(text: str) -> dict[str, str]:
    """Each body row of the tables in `text` (the line, stripped) -> its table's header and
    delimiter lines: a chunk that starts with that row starts inside the table. A row repeated
    in two tables keeps the first table's header."""
    out: dict[str, str] = {}
    if "|" not in text:  # no table: most sections, not parsed
        return out
    lines = text.split("\n")
    header = ""
    for tok in _TABLES.parse(text):
        if tok.type == "thead_open" and tok.map:
            header = "\n".join(line.strip() for line in lines[tok.map[0]:tok.map[0] + 2])
        elif tok.type == "tbody_open" and tok.map and header:
            for line in lines[tok.map[0]:tok.map[1]]:
                out.setdefault(line.strip(), header)
    return out


def chunk_id(doc: Document) -> str:
    """A stable id: the same page content gives the same ids on every run, a changed page new ones.

    Derived from the source, the page's content hash, the chunk's position and text — not from
    fetched_at, so re-fetching an unchanged page never re-embeds it."""
    import hashlib

    m = doc.metadata
    key = "\x1f".join([m[C.SOURCE], m[C.CONTENT_HASH], str(m[C.CHUNK_INDEX]), doc.page_content])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class LazyChunker:
    """A Chunker built on first use (building one loads the embedder's tokenizer and model)."""

    def __init__(self, build: Callable[[], Chunker]):
        self._build = build
        self._chunker: Chunker | None = None

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("_build", "_chunker"):
            raise AttributeError(name)
        if self._chunker is None:
            self._chunker = self._build()
        return getattr(self._chunker, name)
