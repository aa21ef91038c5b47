"""run_ingest keeping a live site in step: crawled bodies are the ones ingested, sitemap
<lastmod> spares requests, pages gone (404/410) twice in a row are pruned, transient failures
keep their chunks. Real local site, real Chroma (embedded), MiniLM."""

from __future__ import annotations

import pytest

from opencite.ingest.documents import Outcome
from opencite.store.index import open_index
from opencite.ingest.pipeline import SourceSet, registry_for, run_ingest
from tests.ingest.pages import article


def outcomes(report) -> dict[str, str]:
    return {s.requested_url.rsplit("/", 1)[-1] or "/": s.outcome.value for s in report.sources}


def sitemap(site, entries: dict[str, str]) -> str:
    body = "".join(f"<url><loc>{site.url(p)}</loc><lastmod>{m}</lastmod></url>" for p, m in entries.items())
    return site.put("/sitemap.xml", f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</urlset>',
                    content_type="application/xml")


@pytest.mark.slow  # a whole run end to end or real timeouts: the full suite runs it
def test_crawl_ingests_the_bodies_it_fetched_and_a_link_bomb_ends_quickly(settings, site):
    bomb = "".join(f"<a href='/missing/{i}'>x</a>" for i in range(20_000))
    site.put("/", article("Hub", {"Links": "Many links below."}).replace("</article>", bomb + "</article>"))
    site.put("/good", article("Good", {"Part": "Some real text."}))
    site.pages["/"].body = site.pages["/"].body.replace(b"<a href='/missing/0'>", b"<a href='/good'>")
    report = run_ingest(settings, SourceSet(crawl=[site.url("/")], max_pages=50))
    counts = report.counts()  # "quickly" is the request bound below, not a wall-clock figure
    assert counts["new"] == 2 and counts["failed"] == 148  # 150 requests: 2 pages, 148 404s
    assert len(site.requests_for("/")) == 1 and len(site.requests_for("/good")) == 1  # one request per page


@pytest.mark.slow  # a whole run end to end or real timeouts: the full suite runs it
def test_sitemap_lastmod_skips_unchanged_pages_without_a_request(settings, site):
    for p in ("/a", "/b"):
        site.put(p, article(p, {"Part": f"Text of {p}."}))
    sm = sitemap(site, {"/a": "2026-11-01", "/b": "2026-11-01"})
    first = run_ingest(settings, SourceSet(sitemaps=[sm]))
    assert outcomes(first) == {"a": "new", "b": "new"}
    again = run_ingest(settings, SourceSet(sitemaps=[sm]))
    assert outcomes(again) == {"a": "unchanged", "b": "unchanged"}
    assert len(site.requests_for("/a")) == 1 and len(site.requests_for("/b")) == 1
    site.put("/b", article("/b", {"Part": "Edited text of b."}))
    sm = sitemap(site, {"/a": "2026-11-01", "/b": "2026-11-20T10:00:00Z"})
    edited = run_ingest(settings, SourceSet(sitemaps=[sm]))
    assert outcomes(edited) == {"a": "unchanged", "b": "updated"}
    assert len(site.requests_for("/a")) == 1 and len(site.requests_for("/b")) == 2
    # No lastmod: conditional requests are the fallback.
    sm = sitemap(site, {})
    site.put("/sitemap.xml", site.pages["/sitemap.xml"].body.decode().replace(
        "</urlset>", f"<url><loc>{site.url('/a')}</loc></url></urlset>"), content_type="application/xml")
    fallback = run_ingest(settings, SourceSet(sitemaps=[sm]))
    assert outcomes(fallback) == {"a": "unchanged"}
    assert site.requests_for("/a")[-1].get("If-None-Match")


@pytest.mark.slow  # a whole run end to end or real timeouts: the full suite runs it
def test_gone_twice_in_a_row_is_pruned_transient_failures_keep_chunks(settings, site):
    urls = [site.put(p, article(p, {"Part": f"Text of {p}."})) for p in ("/stay", "/flaky", "/gone")]
    run_ingest(settings, SourceSet(urls), prune=True)
    site.put("/flaky", "<h1>down</h1>", status=503)
    site.delete("/gone")
    once = run_ingest(settings, SourceSet(urls), prune=True)
    assert outcomes(once) == {"stay": "unchanged", "flaky": "failed", "gone": "failed"}
    twice = run_ingest(settings, SourceSet(urls), prune=True)
    assert outcomes(twice) == {"stay": "unchanged", "flaky": "failed", "gone": "pruned"}
    assert "404" in next(s.reason for s in twice.sources if s.outcome == Outcome.PRUNED)
    with open_index(settings, write=True) as idx:
        records = {r.url.rsplit("/", 1)[-1]: r for r in registry_for(idx).all()}
        assert set(records) == {"stay", "flaky"} and records["flaky"].chunks > 0
        assert records["flaky"].failed_at and "503" in records["flaky"].reason
        sources = set(m["source"] for m in idx.collection.get(include=["metadatas"])["metadatas"])
    assert sources == {site.url("/stay"), site.url("/flaky")}


@pytest.mark.slow  # a whole run end to end or real timeouts: the full suite runs it
def test_a_50k_sitemap_on_a_host_that_is_down_ends_quickly_with_a_short_table(settings, site):
    import io

    from rich.console import Console

    down = "http://127.0.0.1:9"  # nothing listens there: every connection is refused
    body = "".join(f"<url><loc>{down}/p{i}</loc></url>" for i in range(50_000))
    sm = site.put("/sitemap.xml", f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</urlset>',
                  content_type="application/xml")
    settings.fetch.retries = 1
    report = run_ingest(settings, SourceSet(sitemaps=[sm]))  # "quickly": the tries counted below
    assert report.counts()["failed"] == 50_000
    reasons = {reason: len(members) for _, reason, members in report.groups()}
    tried = sum(n for r, n in reasons.items() if r.startswith("connection failed"))
    assert 20 <= tried < 20 + settings.fetch.concurrency  # then the host is given up (those in flight end)
    assert sum(n for r, n in reasons.items() if r.startswith("not tried: 127.0.0.1:9 failed 20")) == 50_000 - tried
    out = io.StringIO()
    Console(file=out, width=160).print(report.table())
    assert len(out.getvalue().splitlines()) < 40
