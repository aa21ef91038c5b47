"""Turn what the user listed (URLs, local files and folders, sitemaps, --from files) into one
deduplicated, ordered list of URLs to fetch (crawl roots: ingest/crawl.py)."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from pathlib import Path
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urldefrag, urlsplit, urlunsplit

import httpx
from lxml import etree

from opencite.settings import FetchSettings

LOCAL_SUFFIXES = (".html", ".htm", ".md", ".markdown", ".txt", ".pdf")
_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_MAX_SITEMAPS = 200  # bound on nested sitemap indexes followed in one call


class SourceListError(ValueError):
    """A listed source cannot be used; the message names it and says how to fix it."""


def normalise_url(url: str) -> str:
    """Drop the fragment, lower-case scheme and host, give an empty path a '/'."""
    url, _ = urldefrag(url.strip())
    parts = urlsplit(url)
    path = parts.path or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def check_url(url: str, where: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceListError(
            f"{where}: {url!r} is not an http(s) URL or an existing local file/folder — "
            "give a full URL such as https://example.com/post or a path to a .html/.md/.txt/.pdf file"
        )
    return normalise_url(url)


def _local_uris(path: Path, where: str) -> list[str]:
    """A file as one file:// URI, a folder as the URIs of its supported files (recursively, sorted)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in LOCAL_SUFFIXES)
        if not files:
            raise SourceListError(f"{where}: folder {path} holds no {', '.join(LOCAL_SUFFIXES)} files")
        return [p.resolve().as_uri() for p in files]
    if path.suffix.lower() not in LOCAL_SUFFIXES:
        raise SourceListError(
            f"{where}: {path} has an unsupported type {path.suffix or '(none)'} — "
            f"supported local files: {', '.join(LOCAL_SUFFIXES)}"
        )
    return [path.resolve().as_uri()]


def _expand(item: str, where: str) -> list[str]:
    """One listed source: an http(s) URL, a file:// URI, or a local file or folder."""
    item = item.strip()
    if item.startswith("file://"):
        from urllib.request import url2pathname

        path = Path(url2pathname(urlsplit(item).path))
        if not path.exists():
            raise SourceListError(f"{where}: {item} does not exist — check the path")
        return _local_uris(path, where)
    if "://" not in item:
        path = Path(item).expanduser()
        if path.exists():
            return _local_uris(path, where)
    return [check_url(item, where)]


def read_source_file(path: Path) -> list[tuple[str, str]]:
    """(entry, 'file:line') for each line of a --from file: one URL or path per line, `sitemap URL`
    or `crawl URL` for a sitemap or a crawl root, '#' comments."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceListError(f"--from {path}: file not found — give a text file with one URL or path per line")
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise SourceListError(f"--from {path}: not a UTF-8 text file ({exc.__class__.__name__}) — give one URL or path per line")
    entries = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if line:
            entries.append((line, f"--from {path}:{n}"))
    return entries


def _base_dir_of(from_file: Path) -> Path:
    return Path(from_file).resolve().parent


async def _get(client: httpx.AsyncClient, url: str, cfg: FetchSettings) -> httpx.Response:
    async with asyncio.timeout(cfg.timeout):
        response = await client.get(url)
        return response


def _gunzip(body: bytes, limit: int, where: str) -> bytes:
    try:
        out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body, limit + 1)
    except zlib.error as exc:
        raise SourceListError(f"{where}: broken gzip ({exc}) — give a valid sitemap")
    if len(out) > limit:
        raise SourceListError(f"{where}: sitemap larger than {limit} bytes unpacked — raise OPENCITE_FETCH__MAX_BYTES")
    return out


def parse_lastmod(text: str | None) -> str | None:
    """A sitemap <lastmod> (W3C datetime: a date, or a date and time with a zone) as ISO-8601 UTC;
    None when absent or unreadable (the page is then fetched as if there were none)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat()


def _parse_sitemap(body: bytes, where: str) -> tuple[list[tuple[str, str | None]], list[str]]:
    """((page URL, lastmod), nested sitemap URLs) of a sitemap or sitemap index."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise SourceListError(f"{where}: not a valid sitemap XML ({exc}) — give the URL of a sitemap.xml")
    tag = etree.QName(root).localname
    if tag == "sitemapindex":
        locs = [(el.text or "").strip() for el in root.iter(f"{_SITEMAP_NS}loc", "loc")]
        return [], [loc for loc in locs if loc]
    if tag == "urlset":
        pages = []
        for entry in root.iter(f"{_SITEMAP_NS}url", "url"):
            loc = (entry.findtext(f"{_SITEMAP_NS}loc") or entry.findtext("loc") or "").strip()
            if loc:
                pages.append((loc, parse_lastmod(entry.findtext(f"{_SITEMAP_NS}lastmod") or entry.findtext("lastmod"))))
        return pages, []
    raise SourceListError(f"{where}: XML root <{tag}> is neither <urlset> nor <sitemapindex> — give a sitemap URL")


async def _sitemap_urls(client: httpx.AsyncClient, sitemap: str, cfg: FetchSettings) -> list[tuple[str, str | None]]:
    where = f"--sitemap {sitemap}"
    pending, seen, pages = [check_url(sitemap, where)], set(), []
    while pending and len(seen) < _MAX_SITEMAPS:
        url = pending.pop(0)
        if url in seen:
            continue
        seen.add(url)
        try:
            response = await _get(client, url, cfg)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise SourceListError(f"{where}: could not read {url} ({exc.__class__.__name__}: {exc}) — check the URL and that the site is up")
        if response.status_code != 200:
            raise SourceListError(f"{where}: {url} answered HTTP {response.status_code} — check the sitemap URL")
        body = response.content
        if body[:2] == b"\x1f\x8b":  # sitemap.xml.gz served as a file, not as Content-Encoding
            body = _gunzip(body, cfg.max_bytes, f"{where} ({url})")
        found, nested = _parse_sitemap(body, f"{where} ({url})")
        pages += [(check_url(u, f"{where} ({url})"), lastmod) for u, lastmod in found]
        pending += [normalise_url(u) for u in nested]
    return pages


@dataclass
class Discovered:
    urls: list[str] = field(default_factory=list)  # normalised, deduplicated, order kept
    lastmod: dict[str, str] = field(default_factory=dict)  # url -> its sitemap <lastmod> (ISO UTC)
    crawl: list[str] = field(default_factory=list)  # `crawl URL` lines of --from files


async def discover(urls: Sequence[str] = (), *, sitemaps: Sequence[str] = (), from_files: Sequence[Path] = (),
                   cfg: FetchSettings) -> Discovered:
    """Every listed source as a normalised URL (http/https or file://), deduplicated, order kept,
    with the <lastmod> of those a sitemap listed. Crawl roots are read by `ingest.crawl`.

    Raises SourceListError naming the bad entry and the fix."""
    found = Discovered()
    for item in urls:
        found.urls += _expand(item, "source")
    sitemaps = list(sitemaps)
    for from_file in from_files:
        base = _base_dir_of(from_file)
        for entry, where in read_source_file(Path(from_file)):
            kind, _, target = entry.partition(" ")
            if kind in ("sitemap", "crawl") and target.strip():
                check_url(target, where)
                (sitemaps if kind == "sitemap" else found.crawl).append((target.strip()))
                continue
            if "://" not in entry and not Path(entry).is_absolute() and (base / entry).exists():
                entry = str(base / entry)  # relative paths in a list are relative to the list
            found.urls += _expand(entry, where)
    if sitemaps:
        headers = {"User-Agent": cfg.user_agent}
        async with httpx.AsyncClient(headers=headers, follow_redirects=True, max_redirects=cfg.max_redirects,
                                     timeout=cfg.timeout) as client:
            for sitemap in sitemaps:
                for url, lastmod in await _sitemap_urls(client, sitemap, cfg):
                    found.urls.append(url)
                    if lastmod:
                        found.lastmod[url] = lastmod
    found.urls = list(dict.fromkeys(found.urls))
    return found
