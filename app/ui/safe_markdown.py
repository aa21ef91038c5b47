"""Page text (chunk markdown) re-written as safe, compact Streamlit markdown, quotes highlighted.

The chunk is parsed with markdown-it-py and written back from its tokens: paragraphs, lists,
quotes, emphasis, inline code and fenced code keep their form; headings become bold lines (a card
is not a page); tables become one line per row. Every piece of page text is escaped, so nothing
in it is markup to Streamlit: raw HTML shows as text, `$` is not LaTeX, `:red[...]`/`:emoji:` are
not directives. Links keep their target only when it is http(s) (`ui_render.safe_url`); images
become their alt text. Highlighted spans (offsets into the chunk) are wrapped in Streamlit's
`:orange-background[...]`, one piece per text run so no markup is nested inside.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

OPEN, CLOSE = "\ue000", "\ue001"  # private-use sentinels marking highlight edges in the source
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&$=:^])")
_md = MarkdownIt("commonmark").enable("table")


def escape(text: str) -> str:
    """Markdown-inert text; runs of whitespace become one space (never stripped)."""
    return _SPECIAL.sub(r"\\\1", re.sub(r"\s+", " ", text))


def _link_target(url: str) -> str | None:
    from opencite.app.ui.render import safe_url

    url = safe_url(url.strip())
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29") if url else None


def with_sentinels(text: str, spans: list[tuple[int, int]]) -> str:
    """The text with OPEN/CLOSE around each span (overlapping spans merged)."""
    merged: list[list[int]] = []
    for start, end in sorted((max(0, a), min(len(text), b)) for a, b in spans if b > a):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pos = [], 0
    for start, end in merged:
        out += [text[pos:start], OPEN, text[start:end], CLOSE]
        pos = end
    out.append(text[pos:])
    return "".join(out)


class _Writer:
    def __init__(self, color: str) -> None:
        self.color = color
        self.inside = False  # within a highlight

    def text(self, raw: str, code: bool = False) -> str:
        """A text run, escaped, its highlighted parts wrapped."""
        out = []
        for piece in re.split(f"([{OPEN}{CLOSE}])", raw):
            if piece == OPEN:
                self.inside = True
            elif piece == CLOSE:
                self.inside = False
            elif piece:
                body = _code(piece) if code else escape(piece)
                if self.inside and body.strip():
                    lead, core, trail = re.match(r"(\s*)(.*?)(\s*)$", body, re.DOTALL).groups()
                    body = f"{lead}:{self.color}-background[{core}]{trail}"
                out.append(body)
        return "".join(out)

    def inline(self, children) -> str:
        out, links = [], []
        for tok in children or []:
            kind = tok.type
            if kind == "text":
                out.append(self.text(tok.content))
            elif kind == "code_inline":
                out.append(self.text(tok.content, code=True))
            elif kind in ("softbreak", "hardbreak"):
                out.append(" ")
            elif kind in ("strong_open", "strong_close"):
                out.append("**")
            elif kind in ("em_open", "em_close"):
                out.append("*")
            elif kind == "link_open":
                target = _link_target(str(tok.attrs.get("href", "")))
                links.append(target)
                out.append("[" if target else "")
            elif kind == "link_close":
                target = links.pop() if links else None
                out.append(f"]({target})" if target else "")
            elif kind == "image":
                out.append(self.text(tok.content))
            else:  # html_inline and anything new: shown as text
                out.append(self.text(tok.content))
        return "".join(out).strip()


def _code(text: str) -> str:
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def safe_markdown(markdown: str, highlights: list[tuple[int, int]] | None = None, color: str = "orange") -> str:
    source = with_sentinels(markdown, highlights or [])
    writer = _Writer(color)
    blocks: list[str] = []
    prefix: list[str] = []  # list bullets / quote marks of the open containers
    tokens = _md.parse(source)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        kind = tok.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            prefix.append("- " if kind == "bullet_list_open" else "1. ")
        elif kind in ("bullet_list_close", "ordered_list_close", "blockquote_close"):
            prefix.pop()
        elif kind == "blockquote_open":
            prefix.append("> ")
        elif kind == "inline" and tokens[i - 1].type in ("paragraph_open", "heading_open"):
            text = writer.inline(tok.children)
            if tokens[i - 1].type == "heading_open" and text:
                text = f"**{text}**"
            if text:
                blocks.append(_prefixed(prefix, text))
        elif kind in ("fence", "code_block"):
            body = re.sub(f"[{OPEN}{CLOSE}]", "", tok.content).rstrip("\n")
            fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", body)), default=0) + 1)
            lang = re.sub(r"[^\w+-]", "", tok.info.split()[0]) if tok.info.strip() else ""
            blocks.append(f"{fence}{lang}\n{body}\n{fence}")
        elif kind == "tr_open":
            cells = []
            i += 1
            while tokens[i].type != "tr_close":
                if tokens[i].type == "inline":
                    cells.append(writer.inline(tokens[i].children))
                i += 1
            blocks.append(" · ".join(c for c in cells if c))
        elif kind == "html_block":
            blocks.append(writer.text(tok.content))
        elif kind == "hr":
            blocks.append("---")
        i += 1
    return "\n\n".join(b for b in blocks if b.strip())


def _prefixed(prefix: list[str], text: str) -> str:
    if not prefix:
        return text
    quote = "".join(p for p in prefix if p == "> ")
    bullet = next((p for p in reversed(prefix) if p != "> "), "")
    indent = "  " * max(0, sum(1 for p in prefix if p != "> ") - 1)
    return f"{quote}{indent}{bullet}{text}"
