"""Small article pages the ingest tests serve from the `site` fixture or write to disk."""

from __future__ import annotations


def article(title: str, sections: dict[str, str], *, words: int = 0) -> str:
    """An HTML page with chrome around one article: h1 title, one h2 per section."""
    body = "".join(f"<h2>{h}</h2><p>{p}</p>" for h, p in sections.items())
    filler = "".join(f"<p>{title} paragraph {i} talks about topic {i} in some detail.</p>" for i in range(words // 10))
    return (
        f"<html><head><title>{title}</title><meta name='description' content='About {title}'></head>"
        "<body><nav><a href='/'>Home</a> <a href='/about'>About</a></nav>"
        "<div class='cookie-banner'>We use cookies. Accept all cookies?</div>"
        f"<main><article><h1>{title}</h1>{body}{filler}</article></main>"
        "<footer>Copyright 2026 Example Blog. All rights reserved.</footer></body></html>"
    )


def blog(n: int = 3, words: int = 0) -> dict[str, str]:
    """path -> html of n posts."""
    return {
        f"/post-{i}": article(f"Post {i}", {f"Section {i}.1": f"Alpha {i} text about llamas.",
                                            f"Section {i}.2": f"Beta {i} text about serving models."},
                              words=words)
        for i in range(n)
    }
