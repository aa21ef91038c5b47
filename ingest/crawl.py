"""Same-site crawl from a root URL: concurrent (the fetch concurrency), one request per page (the
bodies fetched here are the ones ingested), bounded on pages, on requests and on depth, so a page
of 20,000 links that all fail cannot hold a run."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from lxml import etree
from lxml import html as lxml_html

from opencite.ingest.discover import SourceListError, check_url, normalise_url
from opencite.ingest.documents import Fetched
from opencite.ingest.fetch import Fetcher

# Links a crawl never follows: they are files, not pages.
_NON_PAGE = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico", ".css", ".js", ".zip",
             ".gz", ".tar", ".mp4", ".mp3", ".woff", ".woff2", ".ttf", ".xml", ".json")
HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass
class CrawlBounds:
    max_pages: int = 50  # HTML pages read
    max_requests: int | None = None  # pages tried, failures included; None: 3 x max_pages
    max_depth: int = 10  # links followed from the root

    def requests(self) -> int:
        return self.max_requests if self.max_requests is not None else 3 * self.max_pages


def links(body: bytes, base: str) -> list[str]:
    try:
        doc = lxml_html.document_fromstring(body)
    except (etree.ParserError, ValueError):
        return []
    base_el = doc.find(".//base[@href]")
    if base_el is not None:
        base = urljoin(base, base_el.get("href"))
    out = []
    for a in doc.iter("a"):
        href = (a.get("href") or "").strip()
        if href and not href.startswith(("javascript:", "mailto:", "tel:", "#")):
            out.append(normalise_url(urljoin(base, href)))
    return out


def _is_page(fetched: Fetched, host: str) -> bool:
    media = fetched.content_type.split(";", 1)[0].strip().lower()
    final = urlsplit(fetched.final_url or fetched.url)
    return not fetched.error and fetched.status == 200 and media in HTML_TYPES and final.netloc == host


async def crawl(fetcher: Fetcher, root: str, bounds: CrawlBounds,
                on_done: Callable[[Fetched], None] | None = None) -> list[Fetched]:
    """Breadth-first over same-site links from root. Returns, in discovery order, every page read
    (body kept for ingest) and every page that failed (one report line each). Raises
    SourceListError when the root itself yields no page."""
    where = f"--crawl {root}"
    root = check_url(root, where)
    host = urlsplit(root).netloc
    queue: deque[tuple[int, str, int]] = deque([(0, root, 0)])  # (discovery order, url, depth)
    seen = {root}
    found: list[tuple[int, Fetched]] = []
    state = {"pages": 0, "requests": 0, "in_flight": 0}
    root_reason: dict[str, str | None] = {}
    changed = asyncio.Condition()
    client, robots, cfg = fetcher.client, fetcher.robots, fetcher.cfg

    def done() -> bool:
        return (state["pages"] >= bounds.max_pages or state["requests"] >= bounds.requests()
                or (not queue and state["in_flight"] == 0))

    async def next_url() -> tuple[int, str, int] | None:
        async with changed:
            while True:
                if done():
                    return None
                # Never more requests in flight than pages still wanted: max_pages is exact.
                if queue and state["pages"] + state["in_flight"] < bounds.max_pages:
                    state["requests"] += 1
                    state["in_flight"] += 1
                    return queue.popleft()
                await changed.wait()

    async def worker() -> None:
        while (item := await next_url()) is not None:
            order, url, depth = item
            fetched = await fetcher.fetch(url)
            if order == 0:
                root_reason["reason"] = fetched.error or fetched.skipped_reason
            async with changed:
                state["in_flight"] -= 1
                if _is_page(fetched, host):
                    state["pages"] += 1
                    found.append((order, fetched))
                    if depth < bounds.max_depth:
                        for link in links(fetched.body, normalise_url(fetched.final_url or url)):
                            parts = urlsplit(link)
                            if (parts.netloc == host and link not in seen
                                    and not parts.path.lower().endswith(_NON_PAGE)):
                                seen.add(link)
                                if not cfg.respect_robots or await robots.allowed(client, link):
                                    queue.append((len(seen), link, depth + 1))
                elif fetched.error:
                    found.append((order, fetched))  # a listed link that fails is worth one report line
                changed.notify_all()
            if on_done is not None:
                on_done(fetched)

    await asyncio.gather(*(worker() for _ in range(cfg.concurrency)))
    found.sort(key=lambda pair: pair[0])
    if not any(_is_page(f, host) for _, f in found):
        first = (found[0][1].error if found else "") or root_reason.get("reason") or "not an HTML page"
        raise SourceListError(f"{where}: no readable HTML page found there ({first}) — check the URL")
    return [f for _, f in found]
