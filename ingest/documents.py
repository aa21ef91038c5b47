"""What flows through an ingest: a fetched answer, then the clean document extracted from it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum


class Outcome(str, Enum):
    """How one source ended, as reported per source at the end of an ingest."""

    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"  # e.g. robots.txt forbids it, or not modified since last run
    FAILED = "failed"
    PRUNED = "pruned"


@dataclass
class Fetched:
    """One source as fetched (HTTP) or read (local file)."""

    url: str  # as requested: http(s) URL or file:// URI
    final_url: str | None = None  # after redirects
    status: int | None = None  # HTTP status; None for local files and transport failures
    content_type: str = ""
    body: bytes = b""
    encoding: str | None = None  # charset declared by the server, if any
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False  # a 304 to our conditional request
    skipped_reason: str | None = None  # robots.txt etc.: not an error
    error: str | None = None  # a clear one-line reason; body is empty then


@dataclass
class SourceDocument:
    """The article extracted from one source: markdown text, headings as '#', code fenced."""

    url: str  # the source key in the index: canonical URL when declared, else the final URL
    title: str
    text: str
    description: str = ""
    language: str = ""
    fetched_at: str = ""  # ISO-8601 UTC
    etag: str | None = None
    last_modified: str | None = None
    requested_url: str = ""  # the URL as listed by the user (kept to match re-runs)
    sitemap_lastmod: str | None = None  # what its sitemap said when this version was fetched
    extra: dict = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


class ExtractionError(ValueError):
    """The source has no article text we can index; the message says why in one line."""
