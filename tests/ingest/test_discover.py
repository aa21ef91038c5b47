"""discover(): URLs, local files and folders, --from lists, sitemaps (and indexes), same-site crawl."""

from __future__ import annotations

import asyncio

import pytest

from opencite.ingest.discover import SourceListError, discover
from opencite.settings import FetchSettings

CFG = FetchSettings(timeout=5, retries=0)


def run(*args, **kw):
    return asyncio.run(discover(*args, cfg=CFG, **kw))


def test_urls_are_normalised_deduplicated_in_order():
    urls = run(["https://Example.COM/a#top", "https://example.com/b", "https://example.com/a", "http://x.test"])
    assert urls == ["https://example.com/a", "https://example.com/b", "http://x.test/"]


def test_local_files_folders_and_from_lists(tmp_path):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    for name in ("a.md", "b.html", "sub/c.txt", "sub/d.pdf", "skip.png"):
        (docs / name).write_bytes(b"x")
    listing = tmp_path / "sources.txt"
    listing.write_text("# my sources\nhttps://example.com/post  # a comment\n\ndocs/a.md\n", encoding="utf-8")
    urls = run([str(docs)], from_files=[listing])
    assert urls == [(docs / n).resolve().as_uri() for n in ("a.md", "b.html", "sub/c.txt", "sub/d.pdf")] + [
        "https://example.com/post"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"urls": ["ftp://example.com/x"]}, r"source: 'ftp://example.com/x' is not an http\(s\) URL"),
        ({"urls": ["no-such-file.md"]}, r"not an http\(s\) URL or an existing local file"),
        ({"urls": ["{tmp}/image.png"]}, "unsupported type .png"),
        ({"urls": ["{tmp}/empty"]}, "holds no"),
        ({"from_files": ["{tmp}/missing.txt"]}, "--from .*missing.txt: file not found"),
        ({"from_files": ["{tmp}/list.txt"]}, r"list.txt:2: 'not a url'"),
        ({"max_pages": 0, "crawl": ["http://x.test/"]}, "--max-pages 0"),
    ],
)
def test_bad_sources_name_the_input_and_the_fix(tmp_path, kw, message):
    (tmp_path / "image.png").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "list.txt").write_text("https://ok.test/\nnot a url\n", encoding="utf-8")
    kw = {k: ([str(v).format(tmp=tmp_path) for v in vals] if isinstance(vals, list) else vals) for k, vals in kw.items()}
    with pytest.raises(SourceListError, match=message):
        run(**kw)


def test_sitemap_and_sitemap_index(site):
    site.put("/sitemap-posts.xml", '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             f"<url><loc>{site.url('/p1')}</loc></url><url><loc>{site.url('/p2')}#x</loc></url></urlset>",
             content_type="application/xml")
    site.put("/sitemap.xml", '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             f"<sitemap><loc>{site.url('/sitemap-posts.xml')}</loc></sitemap></sitemapindex>",
             content_type="application/xml")
    assert run(sitemaps=[site.url("/sitemap.xml")]) == [site.url("/p1"), site.url("/p2")]
    site.put("/broken.xml", "<html>not xml", content_type="application/xml")
    with pytest.raises(SourceListError, match="not a valid sitemap"):
        run(sitemaps=[site.url("/broken.xml")])
    with pytest.raises(SourceListError, match="HTTP 404"):
        run(sitemaps=[site.url("/missing.xml")])


def test_crawl_stays_on_site_respects_robots_and_max_pages(site):
    site.put("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    site.put("/", "<a href='/a'>a</a><a href='/b#frag'>b</a><a href='https://other.test/x'>o</a>"
                  "<a href='/private/p'>p</a><a href='/logo.png'>i</a><a href='mailto:x@y'>m</a>")
    site.put("/a", "<a href='/c'>c</a><a href='/'>home</a>")
    site.put("/b", "<p>b</p>")
    site.put("/c", "<p>c</p>")
    site.put("/private/p", "<p>secret</p>")
    assert run(crawl=[site.url("/")], max_pages=10) == [site.url(p) for p in ("/", "/a", "/b", "/c")]
    assert site.requests_for("/private/p") == [] and site.requests_for("/logo.png") == []
    assert run(crawl=[site.url("/")], max_pages=2) == [site.url("/"), site.url("/a")]


def test_gzipped_sitemap(site):
    import gzip

    xml = ('<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
           f"<url><loc>{site.url('/gz')}</loc></url></urlset>").encode()
    site.put("/sitemap.xml.gz", gzip.compress(xml), content_type="application/gzip")
    assert run(sitemaps=[site.url("/sitemap.xml.gz")]) == [site.url("/gz")]
