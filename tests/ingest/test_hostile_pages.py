"""Every hostile page of the shared blog (serve_blog.py --list-bad), recreated on the `site` fixture:
each ends as one clear line — a document, or a fetch/extraction error — never a crash or a hang."""

from __future__ import annotations

import asyncio

import pytest

from opencite.ingest.documents import ExtractionError
from opencite.ingest.extract import extract
from opencite.ingest.fetch import fetch_many
from opencite.settings import FetchSettings

CHROME = "<nav><a href='/pricing'>Pricing</a></nav><div class='cookie'>We use cookies</div>"


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body>{CHROME}<article><h1>{title}</h1>{body}</article><footer>Brand assets</footer></body></html>")


def outcome(f) -> tuple[str, str]:
    """('doc'|'error'|'skipped', one line) as an ingest report would show it."""
    if f.error:
        return "error", f.error
    if f.skipped_reason:
        return "skipped", f.skipped_reason
    try:
        return "doc", extract(f, fetched_at="2026-01-01T00:00:00Z").text
    except ExtractionError as exc:
        return "error", str(exc)


@pytest.fixture
def hostile(site):
    site.put("/post", page("Real post", "<p>The real post about retrieval.</p>"))
    site.put("/bad/404", "<h1>Not found</h1>", status=404)
    site.put("/bad/500", "<h1>Internal error</h1>", status=500)
    site.put("/bad/slow", page("Slow", "<p>late</p>"), delay=10.0)
    site.put("/bad/redirect-loop", b"", status=302, headers={"Location": "/bad/redirect-loop"})
    site.put("/bad/redirect-ok", b"", status=301, headers={"Location": "/bad/redirect-ok-2"})
    site.put("/bad/redirect-ok-2", b"", status=302, headers={"Location": "/post"})
    site.put("/bad/binary", bytes(range(256)) * 64, content_type="application/octet-stream")
    site.put("/bad/pdf-bytes", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 16, content_type="application/pdf")
    site.put("/bad/huge", page("Huge", "<p>filler text</p>" * 40_000))
    site.put("/bad/latin1", page("Café résumé", "<p>déjà vu, garçon, œuvre à Zürich.</p>").encode("cp1252"),
             content_type="text/html; charset=iso-8859-1")
    site.put("/bad/cp1252-undeclared", "<html><head><title>Smart</title></head><body><p>\u201cQuoted\u201d \u2013 \u20ac 5</p></body></html>".encode("cp1252"),
             content_type="text/html")
    site.put("/bad/empty", b"")
    site.put("/bad/script-only", "<html><head><title>App</title></head><body><div id=root></div><script>var x='js only';</script></body></html>")
    site.put("/bad/xss", page('<script>alert("t")</script>', "<p>Body &lt;script&gt;alert(2)&lt;/script&gt; <a href='javascript:alert(3)'>click</a> <img src=x onerror=alert(4)></p><script>alert(5)</script>"))
    site.put("/bad/malformed", "<html><head><title>Broken</head><body><div><p>Unclosed paragraph <b>bold <i>italic</b> text</i><table><tr><td>cell</div></p>tail text")
    site.put("/bad/deep", "<html><body>" + "<div>" * 20_000 + "deep text" + "</div>" * 20_000 + "</body></html>")
    site.put("/bad/plain", "A plain text document.\n\nIt has two paragraphs.", content_type="text/plain; charset=utf-8")
    site.put("/bad/json", '{"title": "not a page"}', content_type="application/json")
    site.put("/bad/wrong-type", page("Mislabelled", "<p>HTML as an image.</p>"), content_type="image/png")
    # The timeout leaves headroom for a loaded CI machine: only /bad/slow (10 s) may reach it.
    cfg = FetchSettings(timeout=4.0, retries=1, max_bytes=300_000, concurrency=8)
    paths = [p for p in site.pages if p.startswith("/bad/") and p != "/bad/redirect-ok-2"]
    fetched = asyncio.run(fetch_many([site.url(p) for p in paths], cfg))
    return {p: outcome(f) for p, f in zip(paths, fetched)}


EXPECTED_ERRORS = {
    "/bad/404": "HTTP 404",
    "/bad/500": "HTTP 500",
    "/bad/slow": "timed out",
    "/bad/redirect-loop": "redirect loop",
    "/bad/binary": "application/octet-stream",
    "/bad/pdf-bytes": "PDF",
    "/bad/huge": "MAX_BYTES",
    "/bad/empty": "empty",
    "/bad/script-only": "scripts",
    "/bad/json": "application/json",
    "/bad/wrong-type": "image/png",
}


@pytest.mark.slow  # waits out real timeouts or delays: the full suite runs it
def test_every_hostile_page_ends_as_one_clear_line(hostile):
    for path, needle in EXPECTED_ERRORS.items():
        kind, line = hostile[path]
        assert kind == "error", (path, kind, line[:100])
        assert needle in line and "\n" not in line, (path, line)
    for path in ("/bad/redirect-ok", "/bad/latin1", "/bad/cp1252-undeclared", "/bad/xss", "/bad/malformed",
                 "/bad/deep", "/bad/plain"):
        assert hostile[path][0] == "doc", (path, hostile[path])


@pytest.mark.slow  # waits out real timeouts or delays: the full suite runs it
def test_hostile_documents_keep_their_text_and_drop_scripts(hostile):
    assert "real post about retrieval" in hostile["/bad/redirect-ok"][1]
    assert "déjà vu, garçon, œuvre à Zürich" in hostile["/bad/latin1"][1]
    assert "\u201cQuoted\u201d \u2013 \u20ac 5" in hostile["/bad/cp1252-undeclared"][1]
    assert "Unclosed paragraph" in hostile["/bad/malformed"][1] and "tail text" in hostile["/bad/malformed"][1]
    assert "</head>" not in hostile["/bad/malformed"][1]
    assert "deep text" in hostile["/bad/deep"][1]
    xss = hostile["/bad/xss"][1]
    assert "alert(5)" not in xss and "onerror" not in xss and "javascript:" not in xss
    for text in (hostile["/bad/latin1"][1], hostile["/bad/redirect-ok"][1]):
        assert "We use cookies" not in text and "Pricing" not in text and "Brand assets" not in text
