"""How the app's two front ends start; the CLI reaches the app's front ends only through here.

The web chat is Streamlit running app/ui/chat.py as a child process; the API is a FastAPI app
(app/api/server.py) that the caller serves with uvicorn."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from opencite.app.api.keys import KeysFileError
from opencite.settings import Settings

__all__ = ["KeysFileError", "api_app", "api_log_config", "completion_json", "run_ui", "stop", "ui_command"]

console = Console(stderr=True, soft_wrap=True)  # commands stay copy-pasteable
UI_SCRIPT = Path(__file__).parent / "ui" / "chat.py"


def ui_command(settings: Settings, host: str | None = None, port: int | None = None,
               open_browser: bool = True, kb: str = "default") -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(UI_SCRIPT),
        "--server.address", host or settings.ui.host,
        "--server.port", str(port or settings.ui.port),
        "--server.headless", "false" if open_browser else "true",
        # Without ~/.streamlit/credentials.toml a non-headless Streamlit first asks for an email on
        # the terminal, and with no terminal the chat never starts: never ask.
        "--server.showEmailPrompt", "false",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "minimal",
        "--", "--kb", kb,  # the script's own arguments
    ]


def run_ui(settings: Settings, host: str | None = None, port: int | None = None,
           open_browser: bool = True, kb: str = "default") -> int:
    cmd = ui_command(settings, host, port, open_browser, kb)
    console.print(f"[bold]web chat[/] on http://{host or settings.ui.host}:{port or settings.ui.port}")
    # SIGTERM (a service manager, a test) ends the chat like Ctrl-C does: children stop too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    proc = subprocess.Popen(cmd)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            stop(proc)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def api_app(settings: Settings, default_kb: str):
    """The API's FastAPI app (raises KeysFileError for a bad keys file)."""
    from opencite.app.api.server import create_app  # FastAPI and the chain: only `opencite api` pays

    return create_app(settings, default_kb=default_kb)


def api_log_config(as_json: bool, level: str) -> dict:
    from opencite.app.api.metrics import log_config

    return log_config(as_json, level)


def completion_json(answer, model: str) -> dict:
    """An answer as the API's non-streamed response body (the terminal's `ask --json`)."""
    from opencite.app.api.completion import completion_json as body

    return body(answer, model)
