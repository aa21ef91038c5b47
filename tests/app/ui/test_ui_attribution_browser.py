"""Verified citations in the web chat, for real: `opencite ui` over a page ingested from a live
site (the shared blog when ../shared is there, else an equivalent page from the test site), the
ScriptedLLMDouble answering with one true and one fabricated sentence, headless Chromium: the
card highlights the supporting quote, the fabricated sentence is marked unsupported, and the
card's link opens the page scrolled to the quote with Chromium's text-fragment highlight."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from opencite.app.citations.sentences import split_sentences
from tests.app.ui.test_ui_browser import ARTIFACTS, CHROMIUM
from tests.conftest import free_port, stop_process, wait_http

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SHARED = next((p for p in (ROOT.parent / "shared", Path("/work/shared"))
               if (p / "corpus" / "serve_blog.py").exists()), None)
FAKE = "Mixtral was trained on the moon by 99 astronauts"
FILLER = "".join(f"<p>Paragraph {i} talks about something else entirely, such as weather number {i}.</p>"
                 for i in range(40))
PAGE = f"""<!doctype html><html><head><title>Welcome Mixtral</title></head><body>
<nav><a href="/">Home</a> <a href="/blog">Blog</a></nav>
<article><h1>Welcome Mixtral</h1>{FILLER}
<h2>Mixtral release TL;DR</h2>
<ul><li>Release of base and Instruct versions</li><li>Supports a context length of 32k tokens.</li>
<li>Outperforms Llama 2 70B and matches or beats GPT3.5 on most benchmarks</li></ul>{FILLER}</article>
<footer>© the blog</footer></body></html>"""


@pytest.fixture
def blog(site):
    """(page URL) on the shared blog server, or on the test site."""
    if SHARED is None:
        yield site.put("/blog/mixtral", PAGE)
        return
    proc = subprocess.Popen([sys.executable, str(SHARED / "corpus" / "serve_blog.py"), "--root",
                             str(SHARED / "corpus" / "hf-blog"), "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        base = proc.stdout.readline().strip()
        yield f"{base}/blog/mixtral"
    finally:
        stop_process(proc)


def answer_from_prompt(messages):
    """One sentence copied from the source that states the context length, one made up."""
    prompt = messages[-1]["content"]
    for n, text in re.findall(r'<source id="(\d+)"[^>]*>\n(.*?)\n</source>', prompt, re.DOTALL):
        for s in split_sentences(text):
            if "32k" in s.claim:
                return f"{s.claim.rstrip('.')} [{n}]. {FAKE} [{n}]."
    return "No source says it."


@pytest.fixture
def ui(settings_env, scripted_llm, blog):
    env = dict(os.environ, OPENCITE_LLM__BASE_URL=scripted_llm.base_url, OPENCITE_LLM__MODEL=scripted_llm.model,
               OPENCITE_LLM__API_KEY=scripted_llm.api_key, OPENCITE_LLM__CONTEXT_WINDOW="8192",
               OPENCITE_RETRIEVAL__K="3")
    subprocess.run([sys.executable, "-m", "opencite.cli", "ingest", blog], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "opencite.cli", "ui", "--no-browser", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout=90, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc, 15)


def background(locator) -> str:
    return locator.evaluate("e => getComputedStyle(e).backgroundColor")


def test_quote_highlighted_unsupported_marked_and_fragment_link_scrolls(ui, blog, scripted_llm):
    from PIL import Image, ImageChops
    from playwright.sync_api import sync_playwright

    scripted_llm.responder = answer_from_prompt
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.goto(ui)
            box = page.get_by_placeholder("Ask a question about the indexed pages")
            box.wait_for(timeout=180_000)  # the first page load opens the index
            box.fill("What context length does Mixtral support?")
            box.press("Enter")
            try:
                page.get_by_text("Cited sources").wait_for(timeout=180_000)
            finally:
                page.screenshot(path=str(ARTIFACTS / "ui_attribution.png"), full_page=True)
            page.get_by_text("? unverified").wait_for(timeout=30_000)  # in no source, contradicted by none
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "ui_attribution.png"), full_page=True)

            # The fabricated sentence stays in the answer, on a coloured background, marked.
            answer = page.locator('[data-testid="stChatMessage"]').nth(1)
            fake = answer.locator("span", has_text=FAKE).last
            assert background(fake) not in ("rgba(0, 0, 0, 0)", "transparent")
            assert "1 supported" in answer.inner_text() and "1 unsupported" in answer.inner_text()
            assert "1 unverified" in answer.inner_text()
            # The cited card: compact (no heading element), quote highlighted inside the chunk text.
            card = page.locator('[class*="st-key-card-"]').first
            assert card.locator("h1, h2, h3").count() == 0
            quote = card.locator("span", has_text="context length of 32k tokens").last
            assert background(quote) not in ("rgba(0, 0, 0, 0)", "transparent")
            # Its link carries the text fragment of the quote.
            href = card.locator('a[href*="#:~:text="]').first.get_attribute("href")
            assert href.startswith(blog + "#:~:text=") and "32k" in href

            # The fragment link opens the page scrolled to the quote, highlighted by Chromium.
            site = browser.new_page(viewport={"width": 1280, "height": 600})
            site.goto(blog)
            site.wait_for_timeout(300)
            assert site.evaluate("window.scrollY") == 0
            site.goto(href)
            site.wait_for_timeout(1500)
            scrolled = site.evaluate("window.scrollY")
            assert scrolled > 0
            item = site.locator("li", has_text="context length of 32k tokens").first
            box_ = item.bounding_box()
            assert 0 <= box_["y"] < 600  # the quote is on screen
            marked = Image.open(io.BytesIO(site.screenshot(clip=box_)))
            site.screenshot(path=str(ARTIFACTS / "fragment_scrolled.png"))
            plain = browser.new_page(viewport={"width": 1280, "height": 600})
            plain.goto(blog)
            plain.evaluate(f"window.scrollTo(0, {scrolled})")
            plain.wait_for_timeout(300)
            plain_box = plain.locator("li", has_text="context length of 32k tokens").first.bounding_box()
            unmarked = Image.open(io.BytesIO(plain.screenshot(clip=plain_box)))
            diff = ImageChops.difference(marked.convert("RGB"), unmarked.convert("RGB").resize(marked.size))
            changed = sum(1 for px in diff.getdata() if max(px) > 40)
            assert changed > 200, "no text-fragment highlight on the quote"
        finally:
            browser.close()
