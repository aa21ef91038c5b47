"""Fetch many sources at once: http(s) with httpx (robots.txt, bounded redirects, capped bodies,
conditional requests, retries with backoff), file:// from disk. A per-URL problem never raises:
it ends as Fetched.error / skipped_reason / not_modified."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import mimetypes
from datetime import datetime, timezone
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential

from opencite.ingest.documents import Fetched
from opencite.ingest.robots import RobotsCache
from opencite.settings import FetchSettings

STOPPED = "stopped (SIGTERM)"  # the reason of a URL not fetched because the run was asked to stop
_LOCAL_TYPES = {".md": "text/markdown", ".markdown": "text/markdown", ".txt": "text/plain",
                ".html": "text/html", ".htm": "text/html", ".pdf": "application/pdf"}


class _ServerError(Exception):
    """A 5xx or 429 answer: worth another try, after `retry_after` seconds when the server said so."""

    def __init__(self, status: int, reason: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status, self.retry_after = status, retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date (RFC 9110 10.2.3)."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unparsable: fall back to our own backoff
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


_backoff = wait_exponential(multiplier=0.25, max=4)


def _wait(state: RetryCallState) -> float:
    """The server's Retry-After when it gave one, else exponential backoff."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, _ServerError) and exc.retry_after is not None:
        return exc.retry_after
    return _backoff(state)


class _FetchFailed(Exception):
    """A final, one-line reason (not retried)."""


def _retryable(exc: BaseException) -> bool:
    # Transient only: a bad URL, an unsupported scheme or a proxy refusal will not heal on retry.
    return isinstance(exc, (_ServerError, httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError))


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 1_000_000 else f"{n / 1000:.0f} kB"


def _read_local(url: str, cfg: FetchSettings) -> Fetched:
    path = Path(url2pathname(urlsplit(url).path))
    fetched = Fetched(url=url, final_url=url)
    try:
        size = path.stat().st_size
        if size > cfg.max_bytes:
            fetched.error = (f"file is {_mb(size)}, over the {_mb(cfg.max_bytes)} limit — "
                             "raise OPENCITE_FETCH__MAX_BYTES to index it")
            return fetched
        fetched.body = path.read_bytes()
    except FileNotFoundError:
        fetched.error = f"file not found: {path}"
        return fetched
    except (IsADirectoryError, PermissionError, OSError) as exc:
        fetched.error = f"cannot read {path}: {exc.strerror or exc.__class__.__name__}"
        return fetched
    suffix = path.suffix.lower()
    fetched.content_type = _LOCAL_TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return fetched


class Fetcher:
    """Fetches one URL at a time by the rules above; share one per run (one client, one robots.txt
    read per host, one Crawl-delay pace per host). Open it with `open_fetcher`."""

    def __init__(self, client: httpx.AsyncClient, cfg: FetchSettings, robots: RobotsCache) -> None:
        self.client, self.cfg, self.robots = client, cfg, robots
        self._pace: dict[str, tuple[asyncio.Lock, list[float]]] = {}  # host -> (lock, [next free slot])
        self._failing: dict[str, int] = {}  # host -> requests in a row that got no usable answer

    async def _wait_for_slot(self, url: str) -> None:
        """robots.txt Crawl-delay or Request-rate (decimal seconds allowed): requests to one host at
        least that far apart (capped by the per-URL deadline, so a huge delay cannot hold a run hostage)."""
        if not self.cfg.respect_robots:
            return
        delay = min(await self.robots.crawl_delay(self.client, url), self.cfg.timeout)
        if delay <= 0:
            return
        lock, slot = self._pace.setdefault(urlsplit(url).netloc, (asyncio.Lock(), [0.0]))
        loop = asyncio.get_running_loop()
        async with lock:
            wait = slot[0] - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            slot[0] = loop.time() + delay

    async def fetch(self, url: str, validators: tuple[str | None, str | None] | None = None) -> Fetched:
        if url.startswith("file://"):
            return await asyncio.to_thread(_read_local, url, self.cfg)
        host = urlsplit(url).netloc
        limit = self.cfg.host_failure_limit
        if limit and self._failing.get(host, 0) >= limit:
            # A host that is down must not hold the run for every URL it lists (50,000 in a sitemap).
            return Fetched(url=url, error=f"not tried: {host} failed {limit} requests in a row (timeouts, "
                                          "connection errors, 5xx) — the next run tries again "
                                          "(OPENCITE_FETCH__HOST_FAILURE_LIMIT)")
        fetched = Fetched(url=url)
        host_trouble = True  # cleared by any answer below 500 other than 429
        try:
            await self._wait_for_slot(url)  # before the deadline starts: waiting our turn is not slowness
        except (httpx.HTTPError, TimeoutError):
            pass  # robots.txt unreadable: the fetch below reports the host problem
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.timeout

        def past_deadline(state: RetryCallState) -> bool:
            # A Retry-After beyond the per-URL deadline: give up now rather than sleep into a timeout.
            exc = state.outcome.exception() if state.outcome else None
            return (isinstance(exc, _ServerError) and exc.retry_after is not None
                    and loop.time() + exc.retry_after > deadline)

        try:
            # One deadline for the whole URL, retries included: a slow page never hangs past cfg.timeout.
            async with asyncio.timeout(self.cfg.timeout):
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception(_retryable),
                    stop=stop_after_attempt(self.cfg.retries + 1) | past_deadline,
                    wait=_wait,
                    reraise=True,
                ):
                    with attempt:
                        await self._attempt(fetched, validators)
            host_trouble = False
        except TimeoutError:
            fetched.error = f"timed out: no complete answer within {self.cfg.timeout:g}s (OPENCITE_FETCH__TIMEOUT)"
        except _ServerError as exc:
            if exc.retry_after is not None and loop.time() + exc.retry_after > deadline:
                fetched.error = (f"{exc}: the server asks to retry after {exc.retry_after:g}s, past the "
                                 f"{self.cfg.timeout:g}s per-URL deadline (OPENCITE_FETCH__TIMEOUT)")
            else:
                fetched.error = f"{exc} after {self.cfg.retries + 1} attempts"
        except httpx.UnsupportedProtocol:
            fetched.error = "not an http(s) URL — give a full URL such as https://example.com/post"
        except httpx.TimeoutException:
            fetched.error = f"timed out after {self.cfg.retries + 1} attempts"
        except httpx.TransportError as exc:
            tries = f" after {self.cfg.retries + 1} attempts" if _retryable(exc) else ""
            fetched.error = f"connection failed{tries}: {exc.__class__.__name__} {exc}".strip()
        except _FetchFailed as exc:
            fetched.error = str(exc)
            host_trouble = False  # an answer (404, too big, redirect loop): the host is up
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            fetched.error = f"{exc.__class__.__name__}: {exc}"
        self._failing[host] = self._failing.get(host, 0) + 1 if host_trouble else 0
        if fetched.error or fetched.skipped_reason:
            fetched.body = b""
        return fetched

    async def _attempt(self, fetched: Fetched, validators: tuple[str | None, str | None] | None) -> None:
        cfg = self.cfg
        url, seen = fetched.url, [fetched.url]
        for _hop in range(cfg.max_redirects + 1):
            if cfg.respect_robots and not await self.robots.allowed(self.client, url):
                fetched.skipped_reason = f"robots.txt of {urlsplit(url).netloc} disallows {urlsplit(url).path}"
                return
            headers = {}
            if validators and url == fetched.url:
                etag, last_modified = validators
                if etag:
                    headers["If-None-Match"] = etag
                if last_modified:
                    headers["If-Modified-Since"] = last_modified
            request = self.client.build_request("GET", url, headers=headers)
            response = await self.client.send(request, stream=True, follow_redirects=False)
            try:
                if response.is_redirect and response.has_redirect_location:
                    url = str(response.next_request.url) if response.next_request else url
                    if url in seen:
                        raise _FetchFailed(f"redirect loop: {' -> '.join(seen + [url])[:300]}")
                    seen.append(url)
                    continue
                await self._read(fetched, response, validators)
                return
            finally:
                await response.aclose()
        raise _FetchFailed(f"more than {cfg.max_redirects} redirects (OPENCITE_FETCH__MAX_REDIRECTS): "
                           f"{' -> '.join(seen)[:300]}")

    async def _read(self, fetched: Fetched, response: httpx.Response,
                    validators: tuple[str | None, str | None] | None) -> None:
        fetched.final_url = str(response.url)
        fetched.status = response.status_code
        if response.status_code >= 500 or response.status_code == 429:
            retry_after = None
            if response.status_code in (429, 503):
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise _ServerError(response.status_code, response.reason_phrase, retry_after)
        if response.status_code == 304:
            fetched.not_modified = True
            fetched.etag = response.headers.get("etag") or (validators or (None, None))[0]
            fetched.last_modified = response.headers.get("last-modified") or (validators or (None, None))[1]
            return
        if response.status_code != 200:
            raise _FetchFailed(f"HTTP {response.status_code} {response.reason_phrase}".strip())
        fetched.content_type = response.headers.get("content-type", "")
        fetched.encoding = response.charset_encoding
        fetched.etag = response.headers.get("etag")
        fetched.last_modified = response.headers.get("last-modified")
        limit = self.cfg.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _FetchFailed(f"page is {_mb(int(declared))}, over the {_mb(limit)} limit — "
                               "raise OPENCITE_FETCH__MAX_BYTES to index it")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:  # stop reading: a huge or endless body must not fill memory
                raise _FetchFailed(f"page is over the {_mb(limit)} limit — raise OPENCITE_FETCH__MAX_BYTES to index it")
        fetched.body = bytes(body)


@contextlib.asynccontextmanager
async def open_fetcher(cfg: FetchSettings) -> AsyncIterator[Fetcher]:
    limits = httpx.Limits(max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency)
    # httpx's own timeout bounds each network step; the per-URL deadline in Fetcher bounds the whole.
    async with httpx.AsyncClient(headers={"User-Agent": cfg.user_agent}, timeout=cfg.timeout,
                                 limits=limits, follow_redirects=False) as client:
        yield Fetcher(client, cfg, RobotsCache(cfg))


async def fetch_many(urls: Sequence[str], cfg: FetchSettings, *,
                     validators: Mapping[str, tuple[str | None, str | None]] | None = None,
                     on_done: Callable[[Fetched], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> list[Fetched]:
    """Fetch every URL (cfg.concurrency at a time); results in the order of `urls`.

    validators: url -> (etag, last_modified) from the last run, sent as a conditional request.
    should_stop: once true, URLs not started yet end as skipped "stopped (SIGTERM) ..." unfetched."""
    validators = validators or {}
    async with open_fetcher(cfg) as fetcher:
        gate = asyncio.Semaphore(cfg.concurrency)

        async def one(url: str) -> Fetched:
            async with gate:
                if should_stop is not None and should_stop():
                    return Fetched(url=url, skipped_reason=f"{STOPPED} before it was fetched")
                try:
                    fetched = await fetcher.fetch(url, validators.get(url))
                except Exception as exc:  # never let one URL end the run
                    fetched = Fetched(url=url, error=f"unexpected {exc.__class__.__name__}: {exc}")
            if on_done is not None:
                on_done(fetched)
            return fetched

        return list(await asyncio.gather(*(one(u) for u in urls)))
