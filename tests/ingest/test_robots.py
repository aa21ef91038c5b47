"""robots.txt through Protego, against a real local site: decimal Crawl-delay and Request-rate pace
requests, RFC 9309 wildcards with longest match, the product-token group, status handling, and a
huge or binary robots.txt ending in one clear warning line."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time

import pytest

from opencite.ingest.crawl import CrawlBounds, crawl
from opencite.ingest.fetch import fetch_many, open_fetcher
from opencite.ingest.robots import MAX_ROBOTS_BYTES, RobotsCache
from opencite.settings import FetchSettings

CFG = FetchSettings(timeout=5.0, retries=0, concurrency=4)
# Two requests paced `delay` apart leave the client at least `delay` apart; their arrival at the
# server can differ from that only by the difference of two local network latencies (a new
# connection for one, a kept-alive one for the other): milliseconds, so 0.1 s is ample.
TOLERANCE = 0.1


class TimedLog(list):
    """site.log that also records when each request reached the server."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[tuple[str, float]] = []

    def append(self, item) -> None:
        self.times.append((item[1], time.monotonic()))
        super().append(item)


def page_gaps(site) -> list[float]:
    arrivals = [t for path, t in site.log.times if path != "/robots.txt"]
    return [b - a for a, b in itertools.pairwise(arrivals)]


def run(urls, cfg=CFG):
    return asyncio.run(fetch_many(urls, cfg))


def robots(site, text: str | bytes, **kw) -> None:
    site.put("/robots.txt", text, content_type="text/plain", **kw)


def test_decimal_crawl_delay_paces_requests(site):
    site.log = TimedLog()
    robots(site, "User-agent: *\nCrawl-delay: 0.5\n")
    urls = [site.put(f"/p{i}", f"<p>page {i}</p>") for i in range(4)]
    results = run(urls)  # four at once: only the pace keeps them apart
    assert all(r.status == 200 for r in results)
    gaps = page_gaps(site)
    assert len(gaps) == 3 and min(gaps) >= 0.5 - TOLERANCE, gaps


@pytest.mark.slow  # waits out real delays: the full suite runs it
def test_crawl_delay_of_two_seconds_paces_a_crawl(site):
    site.log = TimedLog()
    robots(site, "User-agent: *\nCrawl-delay: 2.0\n")
    site.put("/", "<a href='/a'>a</a><a href='/b'>b</a>")
    site.put("/a", "<p>a</p>")
    site.put("/b", "<p>b</p>")

    async def go():
        async with open_fetcher(CFG) as fetcher:
            return await crawl(fetcher, site.url("/"), CrawlBounds(max_pages=10))

    assert len([r for r in asyncio.run(go()) if not r.error]) == 3
    gaps = page_gaps(site)
    assert len(gaps) == 2 and min(gaps) >= 2.0 - TOLERANCE, gaps


def test_request_rate_becomes_seconds_per_request_and_a_huge_delay_is_capped(site):
    site.log = TimedLog()
    robots(site, "User-agent: *\nCrawl-delay: 0.1\nRequest-rate: 2/1s\n")
    urls = [site.put(f"/p{i}", "<p>x</p>") for i in range(3)]
    assert all(r.status == 200 for r in run(urls))
    assert min(page_gaps(site)) >= 0.5 - TOLERANCE  # 2 per second: 0.5 s, the larger of the two

    async def delay(text: str) -> float:
        robots(site, text)
        async with open_fetcher(CFG) as fetcher:
            return await RobotsCache(CFG).crawl_delay(fetcher.client, site.url("/p0"))

    assert asyncio.run(delay("User-agent: *\nRequest-rate: 1/10s\n")) == 10.0
    assert asyncio.run(delay("User-agent: *\nRequest-rate: 3/1m\nCrawl-delay: 2.5\n")) == 20.0
    assert asyncio.run(delay("User-agent: *\nRequest-rate: nonsense\n")) == 0.0

    # Crawl-delay: 3600 is held to the per-URL deadline, so the run ends in seconds, not hours.
    site.log = TimedLog()
    robots(site, "User-agent: *\nCrawl-delay: 3600\n")
    results = run(urls[:2], FetchSettings(timeout=1.0, retries=0))
    assert all(r.status == 200 for r in results)
    assert page_gaps(site)[0] >= 1.0 - TOLERANCE


def test_wildcards_and_longest_match_decide_each_path(site):
    robots(site, "User-agent: *\nDisallow: /*.pdf$\nDisallow: /private*\nAllow: /private/ok\n")
    verdicts = {
        "/doc.pdf": False, "/a/b/report.pdf": False,  # `$` anchors the end
        "/doc.pdf?page=2": True, "/doc.pdfx": True,  # ... so these do not end in .pdf
        "/private": False, "/private-notes": False, "/private/other": False,  # `*` matches any run
        "/private/ok": True, "/private/ok/deeper": True,  # the longer Allow wins over /private*
        "/public": True,
    }
    for path in verdicts:
        site.put(path.split("?")[0], "<p>x</p>")
    results = run([site.url(p) for p in verdicts])
    for (path, allowed), result in zip(verdicts.items(), results):
        if allowed:
            assert result.status == 200 and not result.skipped_reason, path
        else:
            assert result.skipped_reason and "robots.txt" in result.skipped_reason and not result.body, path
    requested = {p for _, p, _ in site.log}
    assert requested == {"/robots.txt"} | {p for p, ok in verdicts.items() if ok}  # refused: never asked


def test_the_group_naming_our_product_token_wins_over_the_star_group(site):
    robots(site, "User-agent: *\nDisallow: /\n\nUser-agent: OpenCite\nDisallow: /drafts/\n\n"
                 "User-agent: googlebot\nDisallow: /public\n")
    results = run([site.put("/public", "<p>x</p>"), site.put("/drafts/a", "<p>x</p>")])
    assert results[0].status == 200
    assert results[1].skipped_reason and "disallows /drafts/a" in results[1].skipped_reason


def test_robots_status_5xx_refuses_everything_and_4xx_allows_everything(site):
    robots(site, "down", status=503)
    assert run([site.put("/a", "<p>a</p>")])[0].skipped_reason
    site.delete("/robots.txt")  # 404
    assert run([site.url("/a")])[0].status == 200


def test_a_one_megabyte_robots_txt_is_read_to_500_kib_with_one_warning(site, caplog):
    head = "User-agent: *\nDisallow: /early\n"
    # Wildcard rules that never match: the slow path of every check, 500 KiB of it.
    filler = "".join(f"Disallow: /zz{i}*q*r*s$\n" for i in range(60_000))
    body = head + filler[:1_000_000 - len(head)]
    body = body.rsplit("\n", 1)[0] + "\nDisallow: /late\n"  # past the 500 KiB read: not seen
    assert len(body) > 2 * MAX_ROBOTS_BYTES * 0.95
    robots(site, body)
    with caplog.at_level(logging.WARNING, logger="opencite.ingest.robots"):
        early, late = run([site.put("/early", "<p>x</p>"), site.put("/late", "<p>x</p>")])
    assert early.skipped_reason and late.status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "opencite.ingest.robots"]
    assert len(lines) == 1 and site.base.split("//")[1] in lines[0] and "over 500 KiB" in lines[0], lines


def test_a_binary_robots_txt_is_ignored_with_one_warning(site, caplog):
    junk = random.Random(0).randbytes(300_000)  # NULs and bytes no UTF-8 text has
    robots(site, junk)
    with caplog.at_level(logging.WARNING, logger="opencite.ingest.robots"):
        result = run([site.put("/a", "<p>a</p>")])[0]
    assert result.status == 200  # RFC 9309: only parseable rules count, and there are none
    lines = [r.getMessage() for r in caplog.records if r.name == "opencite.ingest.robots"]
    assert len(lines) == 1 and site.base.split("//")[1] in lines[0] and "not text" in lines[0], lines
