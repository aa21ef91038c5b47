"""`opencite ui` and `opencite up` the way a new user runs them: a fresh HOME (no ~/.streamlit),
the browser opened (no --no-browser), with a terminal and without one (stdin closed).

The browser is a double (a script that records the URL it was asked to open): Streamlit opens
it with `xdg-open` when that is installed, else through $BROWSER, so the stub is both."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.app.conftest import PAGES, add_pages
from tests.conftest import free_port, stop_process, wait_http

pytestmark = pytest.mark.slow  # each case starts the Streamlit server


def stub_browser(tmp_path: Path) -> tuple[dict, Path]:
    bin_dir, opened = tmp_path / "bin", tmp_path / "opened.txt"
    bin_dir.mkdir()
    stub = bin_dir / "xdg-open"
    stub.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    stub.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), BROWSER=str(stub), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return env, opened


def wait_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.2)
    raise AssertionError(f"the browser was not opened within {timeout}s")


@pytest.mark.parametrize("terminal", [False, True], ids=["no-terminal", "terminal"])
@pytest.mark.parametrize("command", ["ui", "up"])
def test_chat_starts_on_a_fresh_machine_and_opens_the_browser(command, terminal, settings_env,
                                                              scripted_llm, tmp_path):
    add_pages(settings_env, PAGES)
    env, opened = stub_browser(tmp_path)
    env.update(OPENCITE_LLM__BASE_URL=scripted_llm.base_url, OPENCITE_LLM__MODEL=scripted_llm.model)
    port = free_port()
    if terminal:
        controller, tty = pty.openpty()
        stdin = stdout = tty
    else:
        stdin, stdout = subprocess.DEVNULL, subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "opencite.cli", command, "--port", str(port)],
                            env=env, stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout=120, proc=proc)
        assert httpx.get(f"http://127.0.0.1:{port}/_stcore/health").text == "ok"
        assert f":{port}" in wait_file(opened)
        assert not (Path(env["HOME"]) / ".streamlit" / "credentials.toml").exists()
    finally:
        stop_process(proc)
        if terminal:
            os.close(controller)
            os.close(tty)
