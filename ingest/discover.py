"""Turn what the user listed (URLs, local files and folders, sitemaps, crawl roots, --from files)
into one deduplicated, ordered list of URLs to fetch."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit

import httpx
from lxml import etree
from lxml import html as lxml_html

from opencite.ingest.robots import RobotsCache
from opencite.settings import FetchSettings

LOCAL_SUFFIXES = (".html", ".htm", ".md", ".markdown", ".txt", ".pdf")
_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_MAX_SITEMAPS = 200  # bound on nested sitemap indexes followed in one call
# Links a crawl never follows: they are files, not pages.
_NON_PAGE = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico", ".css", ".js", ".zip",
             ".gz", ".tar", ".mp4", ".mp3", ".woff", ".woff2", ".ttf", ".xml", ".json")


class SourceListError(ValueError):
    """A listed source cannot be used; the message names it and says how to fix it."""


def normalise_url(url: str) -> str:
    """Drop the fragment, lower-case scheme and host, give an empty path a '/'."""
    url, _ = urldefrag(url.strip())
    parts = urlsplit(url)
    path = parts.path or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def _check_url(url: str, where: str) -> str:
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
    return [_check_url(item, where)]


def read_source_file(path: Path) -> list[tuple[str, str]]:
    """(entry, 'file:line') for each line of a --from file: one URL or path per line, '#' comments."""
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


def _parse_sitemap(body: bytes, where: str) -> tuple[list[str], list[str]]:
    """(page URLs, nested sitemap URLs) of a sitemap or sitemap index."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise SourceListError(f"{where}: not a valid sitemap XML ({exc}) — give the URL of a sitemap.xml")
    tag = etree.QName(root).localname
    locs = [(el.text or "").strip() for el in root.iter(f"{_SITEMAP_NS}loc", "loc")]
    locs = [loc for loc in locs if loc]
    if tag == "sitemapindex":
        return [], locs
    if tag == "urlset":
        return locs, []
    raise SourceListError(f"{where}: XML root <{tag}> is neither <urlset> nor <sitemapindex> — give a sitemap URL")


async def _sitemap_urls(client: httpx.AsyncClient, sitemap: str, cfg: FetchSettings) -> list[str]:
    where = f"--sitemap {sitemap}"
    pending, seen, pages = [_check_url(sitemap, where)], set(), []
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
        pages += [_check_url(u, f"{where} ({url})") for u in found]
        pending += [normalise_url(u) for u in nested]
    return pages


def _links(body: bytes, base: str) -> list[str]:
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


async def _crawl(client: httpx.AsyncClient, root: str, max_pages: int, cfg: FetchSettings,
                 robots: RobotsCache) -> list[str]:
    """Breadth-first over same-site HTML pages from root, at most max_pages pages."""
    root = _check_url(root, f"--crawl {root}")
    host = urlsplit(root).netloc
    queue, seen, pages = [root], {root}, []
    while queue and len(pages) < max_pages:
        url = queue.pop(0)
        if cfg.respect_robots and not await robots.allowed(client, url):
            continue
        try:
            response = await _get(client, url, cfg)
        except (httpx.HTTPError, TimeoutError):
            continue  # the fetch step reports a page that cannot be read; here it just yields no links
        if response.status_code != 200 or "html" not in response.headers.get("content-type", ""):
            continue
        final = normalise_url(str(response.url))
        if urlsplit(final).netloc != host:
            continue
        pages.append(url)
        for link in _links(response.content, final):
            parts = urlsplit(link)
            if (parts.netloc == host and parts.scheme in ("http", "https") and link not in seen
                    and not parts.path.lower().endswith(_NON_PAGE)):
                seen.add(link)
                queue.append(link)
    if not pages:
        raise SourceListError(f"--crawl {root}: no readable HTML page found there — check the URL")
    return pages


async def discover(urls: Sequence[str] = (), *, sitemaps: Sequence[str] = (), crawl: Sequence[str] = (),
                   max_pages: int = 50, from_files: Sequence[Path] = (), cfg: FetchSettings) -> list[str]:
    """Every listed source as a normalised URL (http/https or file://), deduplicated, order kept.

    Raises SourceListError naming the bad entry and the fix."""
    if max_pages < 1:
        raise SourceListError(f"--max-pages {max_pages}: must be at least 1")
    found: list[str] = []
    for item in urls:
        found += _expand(item, "source")
    for from_file in from_files:
        base = _base_dir_of(from_file)
        for entry, where in read_source_file(Path(from_file)):
            if "://" not in entry and not Path(entry).is_absolute() and (base / entry).exists():
                entry = str(base / entry)  # relative paths in a list are relative to the list
            found += _expand(entry, where)
    if sitemaps or crawl:
        robots = RobotsCache(cfg)
        headers = {"User-Agent": cfg.user_agent}
        async with httpx.AsyncClient(headers=headers, follow_redirects=True, max_redirects=cfg.max_redirects,
                                     timeout=cfg.timeout) as client:
            for sitemap in sitemaps:
                found += await _sitemap_urls(client, sitemap, cfg)
            for root in crawl:
                found += await _crawl(client, root, max_pages, cfg, robots)
    return list(dict.fromkeys(found))
