"""An HTML page's article as markdown, without the page chrome, plus its metadata.

Two candidate extractors, chosen between by tests/benchmarks/bench_extraction.py:
- "trafilatura": the kept extractor, as it is;
- "rules": explicit boilerplate rules on the parsed tree (chrome tags, ARIA roles, class/id
  patterns, text hidden by inline styles or the page's own <style> rules, see stylesheet.py),
  the article/main element as root, then markdownify (ATX headings, fenced code).
DEFAULT_STRATEGY is the one the benchmark measured best (figures in README, Ingest section)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree
from lxml import html as lxml_html

from opencite.ingest.stylesheet import page_styles

STRATEGIES = ("rules", "trafilatura")
DEFAULT_STRATEGY = "rules"

# Elements that are never article text.
_DROP_TAGS = ("script", "style", "noscript", "template", "iframe", "svg", "canvas", "form", "button",
              "input", "select", "textarea", "nav", "aside", "footer", "dialog", "object", "embed")
_DROP_ROLES = ("navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alert")
# Class/id words of chrome blocks: cookie banners, share bars, sidebars, "back to" links ...
_CHROME = re.compile(
    r"(^|[\s_-])(cookie|cookies|consent|gdpr|share|sharing|social|sidebar|breadcrumbs?|newsletter|"
    r"subscribe|related|comments?|advert|ads|promo|popup|modal|skip-link|back|backlink)($|[\s_-])",
    re.I,
)
# Inline styles that hide an element from every reader while its text stays in the HTML (an
# injection vector: text no one sees would reach the LLM). Matched on the style with spaces removed.
_HIDDEN_STYLE = re.compile(
    r"(^|;)(display:none|visibility:(hidden|collapse)|opacity:0?\.?0*(;|$|!)|font-size:0(\.0*)?(px|em|rem|%|pt)?(;|$|!)"
    r"|(text-indent|left|top|right|margin-left|margin-top):-\d{3,}(\.\d*)?(px|em|rem|pt|vw|vh|%)?"
    r"|clip:rect\(0(px)?,?0(px)?,?0(px)?,?0(px)?\)|clip-path:inset\(50%\)|transform:scale\(0\))"
)
_ZERO_BOX = re.compile(r"(^|;)(height|width|max-height|max-width):0(px|em|rem|%)?(;|$|!)")
_CLIPS = re.compile(r"(^|;)overflow:(hidden|clip)")
# Every property the patterns above read: the ones a page's <style> rules are cascaded for.
STYLE_PROPERTIES = frozenset({
    "display", "visibility", "opacity", "font-size", "text-indent", "left", "top", "right", "margin-left",
    "margin-top", "clip", "clip-path", "transform", "height", "width", "max-height", "max-width", "overflow"})


def hidden_by_style(style: str) -> bool:
    """True when a style (inline, or cascaded from the page's <style> rules) keeps the element's
    text from any reader: display:none, visibility:hidden, opacity:0, font-size:0, moved far
    off-screen, clipped to nothing, or a zero height/width box that clips its overflow."""
    style = re.sub(r"\s+", "", style.lower())
    if not style:
        return False
    return bool(_HIDDEN_STYLE.search(style) or (_ZERO_BOX.search(style) and _CLIPS.search(style)))


_ROOTS = ("//article", "//*[@role='main']", "//main", "//*[@id='content']", "//body")
_DEEP = 2000  # more nested <div>s than this: flatten them, lxml stops building the tree past ~256 levels


@dataclass
class Article:
    markdown: str
    title: str = ""
    description: str = ""
    language: str = ""
    canonical: str = ""


def _parse(text: str) -> etree._Element | None:
    parser = lxml_html.HTMLParser(remove_comments=True, remove_pis=True)
    try:
        return lxml_html.document_fromstring(text, parser=parser)
    except (etree.ParserError, ValueError):
        return None


def _meta(doc: etree._Element, *names: str) -> str:
    for name in names:
        for attr in ("name", "property", "http-equiv"):
            found = doc.xpath(f"//meta[translate(@{attr},'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz')=$n]/@content", n=name)
            if found and found[0].strip():
                return found[0].strip()
    return ""


def _metadata(doc: etree._Element) -> dict:
    title = _meta(doc, "og:title", "twitter:title") or (doc.findtext(".//title") or "").strip()
    if not title:
        h1 = doc.find(".//h1")
        title = h1.text_content().strip() if h1 is not None else ""
    language = (doc.get("lang") or doc.get("{http://www.w3.org/XML/1998/namespace}lang") or
                _meta(doc, "content-language", "og:locale") or "")
    canonical = doc.xpath("//link[contains(concat(' ', translate(@rel,'CANONIL','canonil'), ' '), ' canonical ')]/@href")
    return {
        "title": title,
        "description": _meta(doc, "description", "og:description", "twitter:description"),
        "language": language.strip().split(",")[0].replace("_", "-"),
        "canonical": canonical[0].strip() if canonical else "",
    }


def _strip_chrome(root: etree._Element, styles: dict | None = None) -> None:
    """styles: element -> style cascaded from the page's <style> rules (stylesheet.page_styles);
    an element they do not reach is judged on its inline style alone."""
    styles = styles or {}
    doomed = [el for el in root.iter(*_DROP_TAGS)]
    for el in root.iter(etree.Element):
        style = styles[el] if el in styles else (el.get("style") or "")
        if el.get("hidden") is not None or (el.get("aria-hidden") or "").strip().lower() == "true" \
                or hidden_by_style(style):
            doomed.append(el)  # no reader sees it
            continue
        if el.tag in ("code", "span") and el.xpath("ancestor::pre or ancestor::code"):
            continue  # syntax-highlighting classes such as hljs-comment are code, not chrome
        role = (el.get("role") or "").lower()
        marks = f"{el.get('class') or ''} {el.get('id') or ''}"
        if role in _DROP_ROLES or (marks.strip() and _CHROME.search(marks)):
            doomed.append(el)
    for el in doomed:
        parent = el.getparent()
        if parent is not None:
            el.drop_tree()  # keeps the tail text, which belongs to the parent


def _root(doc: etree._Element) -> etree._Element:
    for xpath in _ROOTS:
        candidates = doc.xpath(xpath)
        if candidates:
            return max(candidates, key=lambda el: len(el.text_content()))
    return doc


def _code_language(el) -> str | None:
    for node in (el, *el.find_all("code")):
        for cls in node.get("class") or []:
            if cls.startswith(("language-", "lang-")):
                return cls.split("-", 1)[1]
    return None


def _rules_markdown(doc: etree._Element, url: str = "page", *, stylesheets: bool = True) -> str:
    from markdownify import markdownify

    # Before any element leaves the tree: selectors such as `header + div` must see the page whole.
    styles = page_styles(doc, STYLE_PROPERTIES, where=url) if stylesheets else {}
    # <header> blocks outside the article are site chrome; one inside it may hold the title.
    for header in doc.xpath("//header[not(ancestor::article) and not(ancestor::main)]"):
        header.drop_tree()
    _strip_chrome(doc, styles)
    root = _root(doc)
    html = etree.tostring(root, encoding="unicode", method="html")
    markdown = markdownify(html, heading_style="ATX", bullets="-", code_language_callback=_code_language,
                           strip=["a", "img"], escape_underscores=False, escape_asterisks=False)
    return re.sub(r"\n{3,}", "\n\n", markdown).strip()


def _trafilatura_markdown(text: str, url: str) -> str:
    import trafilatura

    out = trafilatura.extract(text, url=url, output_format="markdown", include_formatting=True,
                              include_links=False, include_images=False, include_comments=False,
                              include_tables=True, favor_precision=True)
    return (out or "").strip()


def _flatten_deep(text: str) -> str:
    if text.count("<div") > _DEEP:
        return re.sub(r"</?div\b[^>]*>", "\n", text, flags=re.I)
    return text


_UNCLOSED_TITLE = re.compile(r"(<title[^>]*>[^<]*)(?=</head|<body|<meta|<link)", re.I)


def _close_title(text: str) -> str:
    """An unclosed <title> would swallow the whole page as title text (it is raw text in HTML)."""
    if re.search(r"<title", text[:8192], re.I) and not re.search(r"</title", text, re.I):
        return _UNCLOSED_TITLE.sub(r"\1</title>", text, count=1)
    return text


def html_to_article(text: str, url: str, *, strategy: str = DEFAULT_STRATEGY,
                    stylesheets: bool = True) -> Article:
    """stylesheets=False leaves out the page's <style> rules (only inline styles hide text): for
    comparisons; ingest keeps the default. The "trafilatura" strategy reads neither."""
    from opencite.ingest.documents import ExtractionError

    if strategy not in STRATEGIES:
        raise ValueError(f"unknown extraction strategy {strategy!r}; choose one of {STRATEGIES}")
    text = _close_title(_flatten_deep(text))
    doc = _parse(text)
    if doc is None:
        raise ExtractionError("not parseable as HTML")
    meta = _metadata(doc)
    if strategy == "trafilatura":
        markdown = _trafilatura_markdown(text, url)
    else:
        markdown = _rules_markdown(doc, url, stylesheets=stylesheets)
    if not re.search(r"\w", markdown):
        scripts = "".join(s.text or "" for s in _parse(text).iter("script"))
        if len(scripts.strip()) > 0:
            raise ExtractionError("no article text: the page's content is only scripts (rendered by JavaScript)")
        raise ExtractionError("no article text found in the HTML")
    return Article(markdown=markdown, **meta)
