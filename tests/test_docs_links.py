"""The README and docs/ point at things that exist.

For README.md and every docs/**/*.md:
- every relative Markdown link `[text](path)` (also images and `[ref]: path` definitions) resolves to
  an existing file or folder, relative to the page (or to the repo for `/path`); the `#anchor` is
  stripped; http(s), mailto and other `scheme://` links are ignored; links inside code are not links;
- every file path written out (in backticks, code blocks or plain text) that starts with one of the
  project's rooms (`app/`, `ingest/`, `store/`, `serving/`, `eval/`, `opencite/`, `tests/`, `data/`,
  `docs/`) and ends in a file extension exists in the repo. Paths with a wildcard or placeholder
  (`<`, `*`, `{`) are skipped; a path preceded by `/`, `.` or `~` (`../shared/...`, a URL's path, an
  absolute path) is not one of the repo's.

Fast, offline: it reads files only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

ROOMS = ("app", "ingest", "store", "serving", "eval", "opencite", "tests", "data", "docs")
EXTENSIONS = ("py", "md", "toml", "jsonl", "txt", "yml", "yaml", "json", "sh")
PATH_MENTION = re.compile(
    r"(?<![\w./~-])"
    r"((?:" + "|".join(ROOMS) + r")/[\w./<>*{}@+-]*?\.(?:" + "|".join(EXTENSIONS) + r"))"
    r"(?![\w/-])"
)
PLACEHOLDERS = ("<", "*", "{")

FENCE = re.compile(r"^ {0,3}(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REF_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> list[str]:
    """The page's lines outside fenced code blocks, inline code removed."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append(INLINE_CODE.sub("", line))
    return out


def link_targets(text: str) -> list[str]:
    targets = []
    for line in prose_lines(text):
        targets += INLINE_LINK.findall(line)
        targets += REF_LINK.findall(line)
    return targets


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in link_targets(page.read_text(encoding="utf-8")):
        if SCHEME.match(target):  # http(s), mailto, ...
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not path:  # an anchor on the same page
            continue
        resolved = ROOT / path.lstrip("/") if path.startswith("/") else page.parent / path
        if not resolved.exists():
            broken.append(f"link ({target})")
    return broken


def missing_paths(page: Path) -> list[str]:
    missing = []
    for path in PATH_MENTION.findall(page.read_text(encoding="utf-8")):
        if any(mark in path for mark in PLACEHOLDERS):
            continue
        if not (ROOT / path).exists():
            missing.append(f"path {path}")
    return missing


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_paths_exist(page: Path):
    problems = sorted(set(broken_links(page) + missing_paths(page)))
    assert not problems, f"{page.relative_to(ROOT)} points at what does not exist:\n  " + "\n  ".join(problems)


def test_docs_exist():
    assert (ROOT / "docs" / "README.md").exists()
    assert len(PAGES) > 2


def test_the_checks_catch_what_they_should(tmp_path):
    """The patterns themselves: what counts as a link or a path mention, and what is skipped."""
    text = (
        "See [a](docs/a.md#x), [b](https://example.com/x.md), [c](#here), ![i](img.png), "
        "`[not](a link)`, and `app/rag/chain.py`, store/index.py, `eval/judge_*.md`, "
        "`data/eval-runs/<a>/results.json`, ../shared/corpus/serve_blog.py, "
        "http://host/docs/x.md, `tests/app/` and `opencite.store.index`.\n"
        "```\nopencite eval compare data/x/results.json [d](e.md)\n```\n"
        "[ref]: docs/ref.md\n"
    )
    assert link_targets(text) == ["docs/a.md#x", "https://example.com/x.md", "#here", "img.png", "docs/ref.md"]
    assert PATH_MENTION.findall(text) == [
        "docs/a.md", "app/rag/chain.py", "store/index.py", "eval/judge_*.md",
        "data/eval-runs/<a>/results.json", "data/x/results.json", "docs/ref.md",
    ]
    assert PATH_MENTION.findall("`data/eval/blog-questions.jsonl` and data/x.json.") == [
        "data/eval/blog-questions.jsonl", "data/x.json",
    ]
