"""discover(): URLs, local files and folders, --from lists, sitemaps (and indexes) with <lastmod>."""

from __future__ import annotations

import asyncio

import pytest

from opencite.ingest.discover import SourceListError, discover
from opencite.settings import FetchSettings

CFG = FetchSettings(timeout=5, retries=0)


def run(*args, **kw):
    return asyncio.run(discover(*args, cfg=CFG, **kw)).urls


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


def test_gzipped_sitemap(site):
    import gzip

    xml = ('<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
           f"<url><loc>{site.url('/gz')}</loc></url></urlset>").encode()
    site.put("/sitemap.xml.gz", gzip.compress(xml), content_type="application/gzip")
    assert run(sitemaps=[site.url("/sitemap.xml.gz")]) == [site.url("/gz")]


def test_sitemap_lastmod_is_kept_per_url_as_utc(site):
    site.put("/sitemap.xml", '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             f"<url><loc>{site.url('/a')}</loc><lastmod>2026-11-01</lastmod></url>"
             f"<url><loc>{site.url('/b')}</loc><lastmod>2026-11-02T10:00:00+02:00</lastmod></url>"
             f"<url><loc>{site.url('/c')}</loc><lastmod>yesterday</lastmod></url>"
             f"<url><loc>{site.url('/d')}</loc></url></urlset>", content_type="application/xml")
    found = asyncio.run(discover(sitemaps=[site.url("/sitemap.xml")], cfg=CFG))
    assert found.urls == [site.url(p) for p in ("/a", "/b", "/c", "/d")]
    assert found.lastmod == {site.url("/a"): "2026-11-01T00:00:00+00:00", site.url("/b"): "2026-11-02T08:00:00+00:00"}


def test_source_files_name_sitemaps_and_crawl_roots(site, tmp_path):
    site.put("/sitemap.xml", '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             f"<url><loc>{site.url('/from-sitemap')}</loc></url></urlset>", content_type="application/xml")
    listing = tmp_path / "sources.txt"
    listing.write_text(f"{site.url('/plain')}\nsitemap {site.url('/sitemap.xml')}\ncrawl {site.url('/')}  # the blog\n",
                       encoding="utf-8")
    found = asyncio.run(discover(from_files=[listing], cfg=CFG))
    assert found.urls == [site.url("/plain"), site.url("/from-sitemap")] and found.crawl == [site.url("/")]
    listing.write_text("crawl not-a-url\n", encoding="utf-8")
    with pytest.raises(SourceListError, match=r"sources.txt:1: 'not-a-url' is not an http\(s\) URL"):
        run(from_files=[listing])
