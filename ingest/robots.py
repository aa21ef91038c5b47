"""robots.txt, read once per host and shared by every fetch of one run."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from opencite.settings import FetchSettings


class RobotsCache:
    def __init__(self, cfg: FetchSettings) -> None:
        self.cfg = cfg
        # The product token robots.txt rules name: the first word of the User-Agent, e.g. "opencite".
        self.agent = cfg.user_agent.split("/", 1)[0].split()[0]
        self._parsers: dict[str, asyncio.Task] = {}

    async def _parser(self, client: httpx.AsyncClient, url: str) -> RobotFileParser | None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return None
        host = f"{parts.scheme}://{parts.netloc}"
        task = self._parsers.get(host)
        if task is None:  # one read per host even when many fetches ask at once
            task = self._parsers[host] = asyncio.ensure_future(self._load(client, host))
        return await asyncio.shield(task)

    async def allowed(self, client: httpx.AsyncClient, url: str) -> bool:
        parser = await self._parser(client, url)
        return parser is None or parser.can_fetch(self.agent, url)

    async def crawl_delay(self, client: httpx.AsyncClient, url: str) -> float:
        """Seconds to leave between requests to url's host (robots.txt Crawl-delay), 0 if none."""
        parser = await self._parser(client, url)
        delay = parser.crawl_delay(self.agent) if parser is not None else None
        return float(delay or 0)

    async def _load(self, client: httpx.AsyncClient, host: str) -> RobotFileParser:
        parser = RobotFileParser(host + "/robots.txt")
        try:
            async with asyncio.timeout(self.cfg.timeout):
                response = await client.get(host + "/robots.txt", follow_redirects=True)
                status, text = response.status_code, response.text
        except (httpx.HTTPError, TimeoutError):
            status, text = 404, ""  # no robots.txt to read: the page fetch itself reports the host problem
        if status >= 500:
            parser.disallow_all = True  # RFC 9309: an unreachable robots.txt means "do not crawl"
        elif status >= 400:
            parser.allow_all = True  # RFC 9309: no robots.txt means everything is allowed
        else:
            parser.parse(text.splitlines())
        return parser
