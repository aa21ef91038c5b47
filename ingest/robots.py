"""robots.txt, read once per host and shared by every fetch of one run.

Parsed by Protego (Scrapy's parser): RFC 9309 `*` and `$` wildcards, longest-match Allow/Disallow,
decimal Crawl-delay and Request-rate, which the stdlib parser gets wrong or lacks."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from protego import Protego

from opencite.settings import FetchSettings

log = logging.getLogger(__name__)

# RFC 9309 2.5: a parser must read at least 500 KiB. Past that we stop reading, so a huge or
# endless robots.txt costs one bounded read, and parse what came (the rules that matter are first).
MAX_ROBOTS_BYTES = 500 * 1024


@dataclass
class _Rules:
    parser: Protego | None = None  # None: `allow_all` decides every URL
    allow_all: bool = True


def _is_binary(text: str) -> bool:
    """A NUL, or more than one character in ten that is undecodable or a control character:
    not a text file, whatever lines a parser might fish out of it by chance."""
    if "\x00" in text:
        return True
    sample = text[:MAX_ROBOTS_BYTES]
    bad = sum(1 for c in sample if c == "\ufffd" or (c < " " and c not in "\t\r\n\f"))
    return bad * 10 > len(sample)


def parse_robots(body: bytes, host: str, *, truncated: bool = False) -> _Rules:
    """The rules of one robots.txt body; a body that is not text or was cut at MAX_ROBOTS_BYTES is
    reported in one warning line naming the host."""
    text = body.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if _is_binary(text):
        log.warning("robots.txt of %s is not text (binary or undecodable bytes): ignored, "
                    "every path allowed (RFC 9309: only parseable rules count)", host)
        return _Rules()
    if truncated:
        text = text.rsplit("\n", 1)[0]  # the last line may be cut mid-rule
        log.warning("robots.txt of %s is over %d KiB: only its first %d KiB are read (RFC 9309 limit)",
                    host, MAX_ROBOTS_BYTES // 1024, MAX_ROBOTS_BYTES // 1024)
    return _Rules(parser=Protego.parse(text))


class RobotsCache:
    def __init__(self, cfg: FetchSettings) -> None:
        self.cfg = cfg
        # The product token robots.txt rules name: the first word of the User-Agent, e.g. "opencite".
        self.agent = cfg.user_agent.split("/", 1)[0].split()[0]
        self._rules: dict[str, asyncio.Task] = {}

    async def _host_rules(self, client: httpx.AsyncClient, url: str) -> _Rules | None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return None
        host = f"{parts.scheme}://{parts.netloc}"
        task = self._rules.get(host)
        if task is None:  # one read per host even when many fetches ask at once
            task = self._rules[host] = asyncio.ensure_future(self._load(client, host))
        return await asyncio.shield(task)

    async def allowed(self, client: httpx.AsyncClient, url: str) -> bool:
        rules = await self._host_rules(client, url)
        if rules is None:
            return True
        if rules.parser is None:
            return rules.allow_all
        return rules.parser.can_fetch(url, self.agent)

    async def crawl_delay(self, client: httpx.AsyncClient, url: str) -> float:
        """Seconds to leave between requests to url's host, 0 if none: the larger of Crawl-delay
        and Request-rate (n requests per s seconds = s/n). Request-rate's optional time-of-day
        window is not honoured: the rate holds all day, which is only ever more polite."""
        rules = await self._host_rules(client, url)
        if rules is None or rules.parser is None:
            return 0.0
        delay = rules.parser.crawl_delay(self.agent) or 0.0
        rate = rules.parser.request_rate(self.agent)
        if rate is not None:
            delay = max(delay, rate.seconds / rate.requests)
        return float(delay)

    async def _load(self, client: httpx.AsyncClient, host: str) -> _Rules:
        body, truncated = bytearray(), False
        try:
            async with asyncio.timeout(self.cfg.timeout):
                async with client.stream("GET", host + "/robots.txt", follow_redirects=True) as response:
                    status = response.status_code
                    if status < 400:
                        async for chunk in response.aiter_bytes():
                            body += chunk
                            if len(body) > MAX_ROBOTS_BYTES:
                                truncated = True
                                del body[MAX_ROBOTS_BYTES:]
                                break
        except (httpx.HTTPError, TimeoutError):
            status = 404  # no robots.txt to read: the page fetch itself reports the host problem
        if status >= 500:
            return _Rules(allow_all=False)  # RFC 9309: an unreachable robots.txt means "do not crawl"
        if status >= 400:
            return _Rules()  # RFC 9309: no robots.txt means everything is allowed
        # Off the event loop: 500 KiB of rules takes Protego a fraction of a second to parse.
        return await asyncio.to_thread(parse_robots, bytes(body), host, truncated=truncated)
