"""extract(): the article as markdown without chrome, its metadata, and clear refusals."""

from __future__ import annotations

import io

import pytest

from opencite.ingest.documents import ExtractionError, Fetched
from opencite.ingest.extract import extract

URL = "http://blog.test/posts/a?x=1"

PAGE = """<!doctype html><html lang="en-GB"><head><meta charset="utf-8">
<title>Serving LLMs</title><meta name="description" content="How we serve models.">
<link rel="canonical" href="/posts/a"><style>.x{color:red}</style>
<script>window.analytics=1</script></head><body>
<div class="cookie-banner" id="cookie">We use cookies. <button>Accept all</button></div>
<header><a class="logo">Brand</a><nav><a href="/pricing">Pricing</a><a href="/login">Log In</a></nav></header>
<main><article><a class="back" href="/blog">Back to Articles</a>
<h1>Serving LLMs</h1><p>Intro with <code>inline</code> and <a href="/x">a link</a>.</p>
<h2>Setup</h2><pre><code class="language-python">import torch
print(torch.__version__)  <span class="hljs-comment"># keep me</span></code></pre>
<h3>Details</h3><ul><li>one</li><li>two</li></ul>
<div class="share">Share this post: <a href="#">X</a></div></article>
<aside class="sidebar"><h2>More articles from our blog</h2></aside></main>
<footer>Brand assets · Terms</footer><script>track()</script></body></html>"""


def fetched(body, content_type="text/html; charset=utf-8", url=URL, **kw) -> Fetched:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return Fetched(url=url, final_url=url, status=200, content_type=content_type, body=data, **kw)


def test_html_article_without_chrome_with_headings_and_fenced_code():
    doc = extract(fetched(PAGE, etag='"e1"', last_modified="Mon, 01 Jan 2024 00:00:00 GMT"), fetched_at="2026-01-01T00:00:00Z")
    text = doc.text
    for chrome in ("We use cookies", "Accept all", "Pricing", "Log In", "Back to Articles", "Share this post",
                   "More articles", "Brand assets", "analytics", "track()", "color:red"):
        assert chrome not in text, chrome
    assert text.startswith("# Serving LLMs")
    assert "\n## Setup\n" in text and "\n### Details\n" in text
    assert "```python\nimport torch\nprint(torch.__version__)  # keep me\n```" in text
    assert "`inline`" in text and "a link" in text and "- one" in text
    assert doc.title == "Serving LLMs" and doc.description == "How we serve models." and doc.language == "en-GB"
    assert doc.url == "http://blog.test/posts/a"  # the canonical, same site
    assert doc.requested_url == URL and doc.fetched_at == "2026-01-01T00:00:00Z"
    assert doc.etag == '"e1"' and doc.last_modified.startswith("Mon")
    assert len(doc.content_hash) == 64


def test_canonical_on_another_site_is_ignored():
    page = PAGE.replace('href="/posts/a"', 'href="https://elsewhere.test/a"')
    assert extract(fetched(page), fetched_at="").url == URL


def test_title_is_plain_text():
    page = PAGE.replace("<title>Serving LLMs</title>", "<title>&lt;script&gt;alert(1)&lt;/script&gt; Hi</title>")
    assert extract(fetched(page), fetched_at="").title == "alert(1) Hi"


@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [
        ("<p>caf\xe9 \u2013 \u20ac</p>".encode("cp1252"), "text/html", "café – €"),
        ("<p>caf\xe9 \u2013</p>".encode("cp1252"), "text/html; charset=iso-8859-1", "café –"),
        ('<meta charset="iso-8859-15"><p>\u20ac caf\xe9</p>'.encode("iso-8859-15"), "text/html", "€ café"),
        ("<p>caf\xe9 \u20ac</p>".encode("utf-8"), "text/html", "café €"),
    ],
)
def test_charsets(body, content_type, text):
    assert text in extract(fetched(body, content_type, encoding=None), fetched_at="").text


def test_plain_text_and_markdown_sources():
    plain = extract(fetched("First line title\n\nBody.", "text/plain"), fetched_at="")
    assert plain.title == "First line title" and plain.text.endswith("Body.")
    md = "---\ntitle: \"From front matter\"\n---\n# Heading\n\nSome **markdown**.\n"
    doc = extract(fetched(md, "text/markdown", url="file:///tmp/x.md"), fetched_at="")
    assert doc.title == "From front matter" and doc.text.startswith("# Heading") and "---" not in doc.text


def test_pdf_text_is_extracted():
    pypdf = pytest.importorskip("pypdf")
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = pypdf.PdfWriter()
    page = writer.add_blank_page(300, 200)
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})})
    stream = DecodedStreamObject()
    stream.set_data(b"BT /F1 12 Tf 20 100 Td (Vector search in a PDF) Tj ET")
    page[NameObject("/Contents")] = writer._add_object(stream)
    writer.add_metadata({"/Title": "A PDF paper"})
    out = io.BytesIO()
    writer.write(out)
    doc = extract(fetched(out.getvalue(), "application/pdf"), fetched_at="")
    assert "Vector search in a PDF" in doc.text and doc.title == "A PDF paper"


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"", "text/html", "empty"),
        (b"   \n", "text/plain", "empty"),
        (bytes(range(256)), "application/octet-stream", "application/octet-stream"),
        (b"\x00\x01\x02binary" * 50, "text/html", "binary"),
        (b'{"a": 1}', "application/json", "application/json"),
        (PAGE.encode(), "image/png", "image/png"),
        (b"%PDF-1.4 garbage", "application/pdf", "unreadable PDF"),
        (b"<html><body><div id=app></div><script>render()</script></body></html>", "text/html", "scripts"),
        (b"<html><body><nav>Pricing</nav></body></html>", "text/html", "no article text"),
        (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>'
         b"https://a/</loc></url></urlset>", "application/xml", "sitemap URL"),  # a sitemap given as a page
        (b'<?xml version="1.0"?>\n<?xml-stylesheet href="s.xsl"?>\n<!-- generator -->\n<sitemapindex>'
         b"</sitemapindex>", "text/xml", "sitemap URL"),
        (b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?><urlset></urlset>', "text/xml", "sitemap URL"),  # BOM
    ],
)
def test_refusals_have_a_one_line_reason(body, content_type, reason):
    with pytest.raises(ExtractionError, match=reason) as info:
        extract(fetched(body, content_type), fetched_at="")
    assert "\n" not in str(info.value)


def test_fetch_error_is_passed_on_as_extraction_error():
    with pytest.raises(ExtractionError, match="HTTP 404"):
        extract(Fetched(url=URL, error="HTTP 404 Not Found"), fetched_at="")


def test_page_without_article_element_loses_its_chrome_by_role_and_class():
    page = """<html lang="de"><head><title>Docs page</title></head><body>
    <div role="banner">Site banner</div><div class="site-sidebar">Sidebar links</div>
    <div id="content"><h1>Install</h1><p>Run the installer with care.</p>
    <div class="social-share">Tweet this</div></div>
    <div role="contentinfo">Imprint</div><div class="gdpr-consent">Allow tracking?</div></body></html>"""
    doc = extract(fetched(page), fetched_at="")
    assert doc.text == "# Install\n\nRun the installer with care."
    assert doc.language == "de" and doc.url == URL


HIDDEN_TRICKS = {
    "display": '<div style="display: none">HIDDEN-display</div>',
    "visibility": '<p style="visibility:hidden">HIDDEN-visibility</p>',
    "attribute": "<p hidden>HIDDEN-attribute</p>",
    "aria": '<span aria-hidden="true">HIDDEN-aria</span>',
    "template": "<template><p>HIDDEN-template</p></template>",
    "noscript": "<noscript><p>HIDDEN-noscript</p></noscript>",
    "comment": "<!-- HIDDEN-comment -->",
    "offscreen": '<div style="position:absolute;left:-9999px">HIDDEN-offscreen</div>',
    "indent": '<p style="text-indent:-10000px">HIDDEN-indent</p>',
    "fontsize": '<span style="font-size:0">HIDDEN-fontsize</span>',
    "zerobox": '<div style="height:0;overflow:hidden">HIDDEN-zerobox</div>',
    "opacity": '<div style="opacity: 0.0">HIDDEN-opacity</div>',
    "clip": '<span style="position:absolute;clip:rect(0 0 0 0)">HIDDEN-clip</span>',
    "in-code": '<pre><code>x = 1<span style="display:none">HIDDEN-in-code</span></code></pre>',
}


def test_text_no_reader_sees_never_reaches_the_index(site):
    """Served by a real local site, fetched and extracted as ingest does: every hiding trick is
    dropped, visible text around it (and styles that do not hide) is kept."""
    import asyncio

    from opencite.ingest.fetch import fetch_many
    from opencite.settings import FetchSettings

    tricks = "".join(f"<p>visible-{name}</p>{html}" for name, html in HIDDEN_TRICKS.items())
    shown = ('<p style="opacity:0.9;font-size:0.9em">SHOWN-styled</p>'
             '<div style="height:0">SHOWN-zero-height-overflowing</div>'
             '<p style="margin-left:-10px">SHOWN-small-offset</p>')
    url = site.put("/injection", f"<html><body><article><h1>Post</h1>{tricks}{shown}</article></body></html>")
    page = asyncio.run(fetch_many([url], FetchSettings()))[0]
    text = extract(page, fetched_at="now").text
    assert "HIDDEN" not in text
    for name in HIDDEN_TRICKS:
        assert f"visible-{name}" in text
    assert "SHOWN-styled" in text and "SHOWN-zero-height-overflowing" in text and "SHOWN-small-offset" in text


@pytest.mark.parametrize("style, hidden", [
    ("display:none", True), ("DISPLAY : NONE !important", True), ("visibility: collapse", True),
    ("opacity:0", True), ("opacity:.5", False), ("font-size:0px", True), ("font-size:0.8em", False),
    ("position:fixed; top:-5000px", True), ("left:-20px", False), ("width:0;overflow:hidden", True),
    ("max-height:0px; overflow: clip", True), ("height:0", False), ("color:red", False), ("", False),
])
def test_hidden_by_style(style, hidden):
    from opencite.ingest.html_article import hidden_by_style

    assert hidden_by_style(style) is hidden


def test_a_markdown_post_about_sitemaps_is_still_an_article():
    post = "# Sitemaps\n\nA sitemap looks like this:\n\n```xml\n<urlset>\n  <url><loc>https://a/</loc></url>\n</urlset>\n```\n"
    doc = extract(fetched(post, "text/markdown"), fetched_at="")
    assert "<urlset>" in doc.text and doc.title == "Sitemaps"
