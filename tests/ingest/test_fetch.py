"""fetch_many against a real local HTTP site: conditional requests, robots.txt, redirects, retries,
size cap, local files. A per-URL problem never raises."""

from __future__ import annotations

import asyncio

import pytest

from opencite.ingest.fetch import fetch_many
from opencite.settings import FetchSettings

CFG = FetchSettings(timeout=2.0, retries=2, concurrency=4)


def run(urls, cfg=CFG, **kw):
    return asyncio.run(fetch_many(urls, cfg, **kw))


def test_fetches_in_order_with_honest_user_agent_and_reports_each(site):
    urls = [site.put(f"/p{i}", f"<p>page {i}</p>") for i in range(6)]
    done = []
    results = run(urls, on_done=done.append)
    assert [r.url for r in results] == urls
    assert all(r.status == 200 and r.body for r in results)
    assert b"page 3" in results[3].body and results[3].etag and results[3].last_modified
    assert len(done) == 6
    assert site.requests_for("/p0")[0]["User-Agent"] == CFG.user_agent


def test_conditional_request_from_validators_gives_not_modified(site):
    url = site.put("/post", "<p>v1</p>")
    first = run([url])[0]
    second = run([url], validators={url: (first.etag, first.last_modified)})[0]
    assert second.not_modified and second.body == b"" and second.etag == first.etag
    sent = site.requests_for("/post")[-1]
    assert sent["If-None-Match"] == first.etag and sent["If-Modified-Since"] == first.last_modified
    site.put("/post", "<p>v2</p>")
    third = run([url], validators={url: (first.etag, first.last_modified)})[0]
    assert not third.not_modified and b"v2" in third.body


def test_robots_txt_is_read_once_per_host_and_honoured(site):
    site.put("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    urls = [site.put("/private/a", "<p>secret</p>"), site.put("/open", "<p>open</p>"), site.put("/open2", "<p>o</p>")]
    results = run(urls)
    assert results[0].skipped_reason and "robots.txt" in results[0].skipped_reason and not results[0].body
    assert results[1].body and results[2].body
    assert site.requests_for("/private/a") == []
    assert len(site.requests_for("/robots.txt")) == 1
    ignoring = run(urls[:1], FetchSettings(respect_robots=False))[0]
    assert ignoring.body and not ignoring.skipped_reason


def test_redirects_are_followed_within_the_bound(site):
    site.put("/r0", b"", status=301, headers={"Location": "/r1"})
    site.put("/r1", b"", status=302, headers={"Location": "/target"})
    site.put("/target", "<p>arrived</p>")
    ok = run([site.url("/r0")])[0]
    assert ok.final_url == site.url("/target") and b"arrived" in ok.body
    too_far = run([site.url("/r0")], FetchSettings(max_redirects=1))[0]
    assert too_far.error and "more than 1 redirects" in too_far.error
    site.put("/loop", b"", status=302, headers={"Location": "/loop"})
    assert "redirect loop" in run([site.url("/loop")])[0].error


def test_retries_5xx_but_not_4xx(site):
    url500 = site.put("/down", "<h1>boom</h1>", status=503)
    url404 = site.put("/gone", "<h1>no</h1>", status=404)
    down, gone = run([url500, url404])
    assert "HTTP 503" in down.error and "3 attempts" in down.error
    assert len(site.requests_for("/down")) == 3
    assert gone.error == "HTTP 404 Not Found" and len(site.requests_for("/gone")) == 1


def test_slow_page_ends_at_the_timeout_and_big_body_at_the_cap(site):
    slow = site.put("/slow", "<p>late</p>", delay=2.5)
    big = site.put("/big", "<p>" + "x" * 50_000 + "</p>")
    cfg = FetchSettings(timeout=0.5, retries=3, max_bytes=10_000)
    slow_result, big_result = run([slow, big], cfg)
    assert "timed out" in slow_result.error and "0.5s" in slow_result.error
    assert "MAX_BYTES" in big_result.error and big_result.body == b""


def test_unreachable_host_is_an_error_not_an_exception():
    result = run(["http://127.0.0.1:9/nothing"], FetchSettings(timeout=2, retries=1))[0]
    assert result.error and "connection failed" in result.error


def test_local_files_are_read_from_disk(tmp_path):
    md = tmp_path / "note.md"
    md.write_text("# Note\n\nText.", encoding="utf-8")
    found, missing = run([md.as_uri(), (tmp_path / "nope.md").as_uri()])
    assert found.body.startswith(b"# Note") and found.content_type == "text/markdown"
    assert missing.error and "not found" in missing.error


def test_bad_url_is_an_error_without_retries():
    result = run(["ftp://example.com/file"])[0]
    assert result.error and "http(s)" in result.error


@pytest.mark.slow  # waits out real timeouts or delays: the full suite runs it
def test_429_and_503_wait_as_retry_after_says(site):
    import email.utils
    import time

    url = site.put("/busy", "<p>finally</p>")
    site.put_once("/busy", "slow down", status=429, headers={"Retry-After": "1"})
    other = site.put("/maint", "<p>back</p>")
    when = email.utils.formatdate(time.time() + 2, usegmt=True)  # an HTTP date, ~1-2 s ahead
    site.put_once("/maint", "maintenance", status=503, headers={"Retry-After": when})
    started = time.monotonic()
    busy, maint = run([url, other], FetchSettings(timeout=10, retries=2))
    took = time.monotonic() - started
    assert busy.error is None and b"finally" in busy.body and len(site.requests_for("/busy")) == 2
    assert maint.error is None and b"back" in maint.body and len(site.requests_for("/maint")) == 2
    assert took >= 0.9  # the backoff alone would have retried after 0.25 s


def test_retry_after_past_the_deadline_fails_at_once_with_the_reason(site):
    import time

    url = site.put("/later", "<p>later</p>")
    site.put_once("/later", "", status=429, headers={"Retry-After": "3600"})
    started = time.monotonic()
    result = run([url], FetchSettings(timeout=5, retries=3))[0]
    assert time.monotonic() - started < 2
    assert "HTTP 429" in result.error and "3600s" in result.error and "OPENCITE_FETCH__TIMEOUT" in result.error
    assert len(site.requests_for("/later")) == 1


def test_parse_retry_after():
    from datetime import datetime, timezone

    from opencite.ingest.fetch import parse_retry_after

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now) == 30
    assert parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_a_host_that_keeps_failing_is_given_up_for_the_run_but_404s_do_not_count(site):
    down = [site.put(f"/down{i}", "<h1>x</h1>", status=503) for i in range(6)]
    cfg = FetchSettings(timeout=5, retries=0, concurrency=1, host_failure_limit=3)
    results = run(down, cfg)
    assert [r.error.startswith("HTTP 503") for r in results] == [True] * 3 + [False] * 3
    assert all("not tried" in r.error and "HOST_FAILURE_LIMIT" in r.error for r in results[3:])
    assert len([p for _, p, _ in site.log if p.startswith("/down")]) == 3
    missing = [site.url(f"/missing{i}") for i in range(6)]
    assert all(r.error == "HTTP 404 Not Found" for r in run(missing, cfg))  # answers: the host is up
