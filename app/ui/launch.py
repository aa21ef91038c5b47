"""Starting the web chat: Streamlit running app/ui/chat.py as a child process."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from opencite.settings import Settings

console = Console(stderr=True, soft_wrap=True)  # commands stay copy-pasteable
UI_SCRIPT = Path(__file__).with_name("chat.py")


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
