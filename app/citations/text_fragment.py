"""URL text fragments (`#:~:text=start,end`, WICG Scroll-to-Text-Fragment) for quotes.

A citation link opens the page scrolled to the supporting passage, highlighted, in browsers
that support text fragments (Chromium, Safari, Firefox 131+); others open the page at its top.
The quote is plain text (markdown removed, as the page renders it). Short quotes travel whole;
longer ones as `start,end` — a few words from each end — so the URL stays short; `start` grows
until it occurs once in the context the quote came from (a page's first match wins).
"""

from __future__ import annotations

from urllib.parse import quote as percent_encode
from urllib.parse import urlsplit

WORDS = 4  # words kept at each end of a long quote


def encode_term(text: str) -> str:
    """Percent-encode one directive term: everything but unreserved characters, and also
    '-' (the spec's prefix/suffix sign), so ',', '&' and '-' in the text cannot break it."""
    return percent_encode(text, safe="").replace("-", "%2D")


def text_directive(quote: str, context: str = "", words: int = WORDS) -> str:
    """`text=...` for the quote ('' for an empty quote)."""
    tokens = quote.split()
    if not tokens:
        return ""
    if len(tokens) <= 2 * words + 1:
        return "text=" + encode_term(" ".join(tokens))
    flat = " ".join(context.split()).lower()
    n = words
    while n < len(tokens) - words and flat.count(" ".join(tokens[:n]).lower()) > 1:
        n += 1
    start, end = " ".join(tokens[:n]), " ".join(tokens[-words:])
    return f"text={encode_term(start)},{encode_term(end)}"


def fragment_url(url: str, quote: str, context: str = "") -> str:
    """The URL opening the page at the quote; the URL unchanged when it is not http(s) or the
    quote is empty. An existing fragment is kept (`#section:~:text=...`)."""
    if not quote.strip() or urlsplit(url).scheme.lower() not in ("http", "https"):
        return url
    base, _, fragment = url.partition("#")
    fragment = fragment.split(":~:", 1)[0]
    return f"{base}#{fragment}:~:{text_directive(quote, context)}"
