"""The web chat for real: `opencite ui` on a free port over a real index and the
ScriptedLLMDouble, driven by headless Chromium (Playwright, Debian's chromium)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.app.conftest import PAGES, XSS, add_pages
from tests.conftest import free_port, stop_process, wait_http

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError("CI is set but chromium is missing: `apt-get install -y chromium`")
    pytest.skip("chromium is not installed (apt-get install -y chromium); CI runs this test",
                allow_module_level=True)


pytestmark = pytest.mark.slow  # a real browser against `opencite ui`


def cite_all(messages):
    n = messages[-1]["content"].count("<source id=")
    return "The capital of France is Paris " + "".join(f"[{i}]" for i in range(1, n + 1)) + \
        " and never [42]. **Bold** <b>raw html</b> <script>alert('answer')</script> " \
        "[echoed](javascript:alert(5)) done."


@pytest.fixture
def ui_server(settings_env, scripted_llm, minilm_path):
    settings = settings_env
    add_pages(settings, PAGES + [(
        "https://blog.example/bad/xss", XSS,
        "The capital of France is Paris. " + XSS + ' <a href="javascript:alert(3)">click</a> '
        "[click me](javascript:alert(4)) More about the French capital.")])
    port = free_port()
    env = dict(os.environ,
               OPENCITE_LLM__BASE_URL=scripted_llm.base_url,
               OPENCITE_LLM__MODEL=scripted_llm.model,
               OPENCITE_LLM__API_KEY=scripted_llm.api_key,
               OPENCITE_LLM__CONTEXT_WINDOW="4096",
               OPENCITE_RETRIEVAL__K="3",
               # the markers as the LLM wrote them; repaired markers: test_ui_attribution_browser
               OPENCITE_ATTRIBUTION__MODE="flag")
    proc = subprocess.Popen([sys.executable, "-m", "opencite.cli", "ui", "--no-browser",
                             "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout=90, proc=proc)
        yield f"http://127.0.0.1:{port}", settings
    finally:
        stop_process(proc, 15)


def test_chat_streams_answer_with_source_cards_and_no_page_script_runs(ui_server, scripted_llm):
    from playwright.sync_api import sync_playwright

    url, settings = ui_server
    scripted_llm.responder = cite_all
    scripted_llm.token_delay = 0.03  # slow enough to watch the answer grow
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1800})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(url)
            box = page.get_by_placeholder("Ask a question about the indexed pages")
            box.wait_for(timeout=60_000)
            # The sidebar shows the endpoint status and the index.
            page.get_by_text("chunks: 6").wait_for(timeout=30_000)
            box.fill("What is the capital of France?")
            box.press("Enter")

            # Streamed: the assistant message is seen with partial text before the end.
            msg = page.locator('[data-testid="stChatMessage"]').nth(1)
            seen = set()
            deadline = time.monotonic() + 90  # the first question loads the embedder in the chat
            while time.monotonic() < deadline:
                if msg.count():
                    text = msg.inner_text()
                    if "capital" in text:
                        seen.add(text)
                    if "done." in text:
                        break
                page.wait_for_timeout(25)
            assert len(seen) >= 2, "the answer did not arrive in pieces"

            # After the stream: linked markers and source cards.
            page.get_by_text("Cited sources").wait_for(timeout=30_000)
            # The rerun after the stream has finished: one answer, with its feedback buttons.
            page.locator('[data-testid="stChatMessage"]').nth(2).wait_for(state="detached", timeout=30_000)
            page.locator('[data-testid="stFeedback"], [data-testid="stButtonGroup"]').first.wait_for(
                timeout=30_000)
            page.wait_for_timeout(300)
            page.screenshot(path=str(ARTIFACTS / "ui_chat.png"), full_page=True)
            # The three valid markers link to their cards (the cards' headers carry the ids).
            links = msg.locator('p a[href^="#src-"]')
            assert links.count() == 3
            for i in range(3):
                target = links.nth(i).get_attribute("href")[1:]
                assert page.locator(f'[id="{target}"]').count() == 1
            body = page.inner_text("body")
            assert "[42]" not in body
            assert "https://blog.example/paris" in body
            # The retrieval score, three decimals (hybrid's z-score fusion, the default, can be negative).
            assert re.search(r"score -?\d+\.\d{3}", body)
            # The XSS page's title and body are shown as text, nothing of it runs.
            assert page.get_by_text('<script>alert("title")</script>', exact=False).count() >= 1
            assert page.locator('img[src="x"]').count() == 0
            assert page.locator("b", has_text="raw html").count() == 0
            assert page.locator('a[href^="javascript:"]').count() == 0
        finally:
            browser.close()
    assert dialogs == []
    prompt = scripted_llm.requests[-1]["messages"][-1]["content"]
    assert prompt.count("<source id=") == 3


@pytest.fixture
def space_kb(settings_env):
    """A second knowledge base, made before the chat starts (embedded Chroma serves one process)."""
    from opencite.store import kb

    kb.create(settings_env, "space")
    add_pages(kb.kb_settings(settings_env, "space"),
              [("https://space.example/moon", "Moon facts", "The Moon is 384,400 km from the Earth.")])


@pytest.mark.slow
def test_kb_picker_and_conversation_kept_across_reloads(space_kb, ui_server, scripted_llm):
    from playwright.sync_api import sync_playwright

    url, _ = ui_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1400})
            page = context.new_page()
            page.goto(url)
            box = page.get_by_placeholder("Ask a question about the indexed pages")
            box.wait_for(timeout=60_000)
            page.get_by_text("chunks: 6").wait_for(timeout=30_000)
            # The picker lists both KBs; choosing one answers from it.
            page.get_by_test_id("stSelectbox").first.click()
            page.get_by_role("option", name="space").click()
            page.get_by_text("chunks: 1").wait_for(timeout=30_000)
            scripted_llm.reply("The Moon is 384,400 km away [1].")
            box.fill("How far is the Moon?")
            box.press("Enter")
            page.get_by_text("Cited sources").wait_for(timeout=60_000)
            page.wait_for_function("() => new URLSearchParams(location.search).get('c')", timeout=30_000)
            first_url = page.url

            # Reload: the same conversation, on the same KB.
            page.reload()
            page.get_by_text("The Moon is 384,400 km away").wait_for(timeout=60_000)
            page.get_by_text("chunks: 1").wait_for(timeout=30_000)
            assert page.url == first_url

            # A new tab of the same browser opened on the bare address finds its history list.
            other = context.new_page()
            other.goto(url)
            other.get_by_role("button", name="How far is the Moon?").wait_for(timeout=60_000)
            assert "b=" + first_url.split("b=")[1].split("&")[0] in other.url
            # New chat empties the page; the history button brings the conversation back.
            other.get_by_role("button", name="New chat").click()
            other.get_by_text("Answers cite the indexed pages").wait_for(timeout=30_000)
            assert other.get_by_text("The Moon is 384,400 km away").count() == 0
            other.get_by_role("button", name="How far is the Moon?").click()
            other.get_by_text("The Moon is 384,400 km away").wait_for(timeout=30_000)
            other.screenshot(path=str(ARTIFACTS / "ui_history.png"), full_page=True)
        finally:
            browser.close()
