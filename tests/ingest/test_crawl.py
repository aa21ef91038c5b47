"""crawl(): same-site, concurrent, one request per page, bounded on pages, requests and depth,
robots.txt rules and Crawl-delay honoured — against a real local site."""

from __future__ import annotations

import asyncio
import time

import pytest

from opencite.ingest.crawl import CrawlBounds, crawl
from opencite.ingest.discover import SourceListError
from opencite.ingest.fetch import open_fetcher
from opencite.settings import FetchSettings

CFG = FetchSettings(timeout=5, retries=0)


def run(root, bounds=CrawlBounds(), cfg=CFG):
    async def go():
        async with open_fetcher(cfg) as fetcher:
            return await crawl(fetcher, root, bounds)

    return asyncio.run(go())


def pages(results):
    return [r.url for r in results if not r.error]


def test_crawl_stays_on_site_respects_robots_and_bounds(site):
    site.put("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    site.put("/", "<a href='/a'>a</a><a href='/b#frag'>b</a><a href='https://other.test/x'>o</a>"
                  "<a href='/private/p'>p</a><a href='/logo.png'>i</a><a href='mailto:x@y'>m</a>")
    site.put("/a", "<a href='/c'>c</a><a href='/'>home</a>")
    site.put("/b", "<p>b</p>")
    site.put("/c", "<p>c</p>")
    site.put("/private/p", "<p>secret</p>")
    results = run(site.url("/"), CrawlBounds(max_pages=10))
    assert pages(results) == [site.url(p) for p in ("/", "/a", "/b", "/c")]
    assert all(b"<" in r.body for r in results)  # the bodies are kept for ingest
    assert site.requests_for("/private/p") == [] and site.requests_for("/logo.png") == []
    for path in ("/", "/a", "/b", "/c"):
        assert len(site.requests_for(path)) == 1  # one request per page
    assert len(pages(run(site.url("/"), CrawlBounds(max_pages=2)))) == 2
    assert pages(run(site.url("/"), CrawlBounds(max_pages=10, max_depth=1))) == [site.url(p) for p in ("/", "/a", "/b")]


@pytest.mark.slow  # 150 failing requests with retries: the full suite runs it
def test_link_bomb_of_404s_ends_at_the_request_bound(site):
    links = "".join(f"<a href='/missing/{i}'>{i}</a>" for i in range(20_000))
    site.put("/", f"<html><body><p>hub</p>{links}</body></html>")
    started = time.monotonic()
    results = run(site.url("/"), CrawlBounds(max_pages=50), FetchSettings(timeout=5, retries=3, concurrency=4))
    took = time.monotonic() - started
    assert pages(results) == [site.url("/")]
    failed = [r for r in results if r.error]
    assert len(failed) == 149 and all(r.error == "HTTP 404 Not Found" for r in failed)  # 3 x 50 requests
    assert len(site.log) == 150 + 1  # and robots.txt once
    assert took < 30


@pytest.mark.slow  # waits out real timeouts or delays: the full suite runs it
def test_crawl_delay_spaces_requests(site):
    site.put("/robots.txt", "User-agent: *\nCrawl-delay: 1\n", content_type="text/plain")
    site.put("/", "<a href='/a'>a</a><a href='/b'>b</a>")
    site.put("/a", "<p>a</p>")
    site.put("/b", "<p>b</p>")
    started = time.monotonic()
    assert len(pages(run(site.url("/"), CrawlBounds(max_pages=10), FetchSettings(concurrency=4)))) == 3
    assert time.monotonic() - started >= 2.0  # three requests, 1 s apart


def test_a_root_that_yields_no_page_is_a_clear_error(site):
    with pytest.raises(SourceListError, match=r"--crawl .*/nothing: no readable HTML page found there \(HTTP 404"):
        run(site.url("/nothing"))
