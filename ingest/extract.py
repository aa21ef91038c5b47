"""From a fetched answer to the article as markdown, with its metadata.

HTML goes through `html_article` (ingest/html_article.py); text, markdown and PDF are read as
they are. Anything that is not an article (binary, JSON, wrong type, empty, script-only) raises
ExtractionError with a one-line reason."""

from __future__ import annotations

import io
import re
from urllib.parse import urljoin, urlsplit

from opencite.ingest.charset import decode_text, looks_binary
from opencite.ingest.documents import ExtractionError, Fetched, SourceDocument
from opencite.ingest.html_article import DEFAULT_STRATEGY, html_to_article

HTML_TYPES = ("text/html", "application/xhtml+xml")
# A document whose root element is a sitemap's (after a UTF-8 byte-order mark, an XML declaration,
# comments, a stylesheet)
SITEMAP_ROOT = re.compile(rb"(\xef\xbb\xbf)?\s*(<\?.*?\?>\s*|<!--.*?-->\s*)*<(urlset|sitemapindex)\b", re.S)
MARKDOWN_TYPES = ("text/markdown", "text/x-markdown")
TEXT_TYPES = ("text/plain",)
PDF_TYPES = ("application/pdf", "application/x-pdf")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)
_TAGLIKE = re.compile(r"<[^>]{0,200}>")


def _media_type(fetched: Fetched) -> str:
    return fetched.content_type.split(";", 1)[0].strip().lower()


def clean_title(title: str) -> str:
    """Plain one-line text: titles are shown in the UI and prompts, so no markup survives."""
    return re.sub(r"\s+", " ", _TAGLIKE.sub(" ", title or "")).strip()[:300]


def _same_site(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return pa.scheme in ("http", "https") and pa.netloc == pb.netloc


def _markdown_doc(text: str) -> tuple[str, str, str]:
    """(title, description, body) of a markdown file: YAML front matter title, else the first '#'."""
    title = description = ""
    match = _FRONT_MATTER.match(text)
    if match:
        for line in match.group(1).splitlines():
            key, _, value = line.partition(":")
            value = value.strip().strip("\"'")
            if key.strip() == "title" and value:
                title = value
            elif key.strip() == "description" and value:
                description = value
        text = text[match.end():]
    if not title:
        heading = re.search(r"^#\s+(.+?)\s*#*\s*$", text, re.M)
        title = heading.group(1) if heading else ""
    return title, description, text.strip()


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _pdf(body: bytes) -> tuple[str, str]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(body))
        if reader.is_encrypted:
            raise ExtractionError("PDF is encrypted — give an unencrypted copy")
        text = "\n\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()
        title = str((reader.metadata or {}).get("/Title") or "")
    except ExtractionError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ExtractionError(f"unreadable PDF ({exc.__class__.__name__}: {str(exc)[:120]})") from None
    if not text:
        raise ExtractionError("PDF has no text layer (a scanned image?) — nothing to index")
    return title, text


def extract(fetched: Fetched, *, fetched_at: str, strategy: str = DEFAULT_STRATEGY) -> SourceDocument:
    """The article of one fetched source. Raises ExtractionError("one-line reason")."""
    if fetched.error:
        raise ExtractionError(fetched.error)
    body = fetched.body
    media = _media_type(fetched)
    final_url = fetched.final_url or fetched.url
    if not body.strip():
        raise ExtractionError("empty body: the source has no content")
    if SITEMAP_ROOT.match(body[:4096]):
        raise ExtractionError(
            "this is a sitemap, not an article — list it as `sitemap URL` in the sources file, or pass --sitemap URL")
    if media == "application/json" or media.endswith("+json"):
        raise ExtractionError(f"{media} is data, not an article — give an HTML, text, markdown or PDF source")
    if media in PDF_TYPES or (not media and body.startswith(b"%PDF-")):
        title, text = _pdf(body)
        doc = SourceDocument(url=final_url, title=clean_title(title) or _first_line(text)[:120], text=text)
    elif media in HTML_TYPES or media in MARKDOWN_TYPES or media in TEXT_TYPES or not media:
        if looks_binary(body):
            raise ExtractionError(f"binary content labelled {media or 'with no type'} — not a text document")
        text = decode_text(body, declared=fetched.encoding, html=media in HTML_TYPES or not media)
        if media in HTML_TYPES or (not media and re.search(r"<(html|body|p|div)\b", text[:4096], re.I)):
            doc = _html_document(text, final_url, strategy)
        elif media in MARKDOWN_TYPES or final_url.lower().endswith((".md", ".markdown")):
            title, description, body_text = _markdown_doc(text)
            doc = SourceDocument(url=final_url, title=clean_title(title) or _first_line(body_text)[:120],
                                 text=body_text, description=description)
        else:
            text = text.strip()
            doc = SourceDocument(url=final_url, title=clean_title(_first_line(text))[:120], text=text)
    else:
        raise ExtractionError(
            f"served as {media}, not a document type opencite indexes (HTML, text, markdown or PDF)")
    if not doc.text.strip():
        raise ExtractionError("no text to index")
    doc.fetched_at = fetched_at
    doc.etag, doc.last_modified = fetched.etag, fetched.last_modified
    doc.requested_url = fetched.url
    return doc


def _html_document(text: str, final_url: str, strategy: str) -> SourceDocument:
    article = html_to_article(text, final_url, strategy=strategy)
    url = final_url
    if article.canonical:
        canonical = urljoin(final_url, article.canonical).split("#", 1)[0]
        if _same_site(canonical, final_url):  # another site's canonical could hijack its pages' ids
            url = canonical
    title = clean_title(article.title) or _first_line(article.markdown).lstrip("# ")[:120]
    return SourceDocument(url=url, title=title, text=article.markdown, description=article.description,
                          language=article.language, extra={"final_url": final_url} if url != final_url else {})
