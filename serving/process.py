"""The local engine as a detached process: its log and pid live in `<data_dir>/runtime/`, so
`opencite serve` returns once the server answers and `opencite serve --stop` ends it later."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from opencite.serving.health import Probe, wait_ready
from opencite.settings import Settings


class ServeError(RuntimeError):
    pass


@dataclass
class RuntimeFiles:
    dir: Path

    @property
    def log(self) -> Path:
        return self.dir / "serve.log"

    @property
    def state(self) -> Path:
        return self.dir / "serve.json"


def runtime_files(settings: Settings) -> RuntimeFiles:
    return RuntimeFiles(settings.runtime_dir)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_state(settings: Settings) -> dict | None:
    files = runtime_files(settings)
    try:
        state = json.loads(files.state.read_text())
    except (OSError, ValueError):
        return None
    return state if _alive(state.get("pid", -1)) else None


def start_detached(settings: Settings, cmd: list[str], url: str, api_key: str | None, timeout: float) -> Probe:
    """Start `cmd` in its own session, wait until `url` answers, or stop it and raise with its log."""
    files = runtime_files(settings)
    files.dir.mkdir(parents=True, exist_ok=True)
    existing = running_state(settings)
    if existing:
        raise ServeError(
            f"a server started by opencite is already running (pid {existing['pid']}, {existing['url']}); "
            "stop it first with `opencite serve --stop`"
        )
    log = files.log.open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    files.state.write_text(json.dumps({"pid": proc.pid, "url": url, "command": cmd[:1] + cmd[1:3]}))
    result = wait_ready(url, timeout, api_key, is_alive=lambda: proc.poll() is None)
    if not result.ok:
        _terminate(proc.pid)
        files.state.unlink(missing_ok=True)
        raise ServeError(f"{result.message}\n--- server log ({files.log}) ---\n{log_tail(files.log)}")
    return result


def run_foreground(cmd: list[str]) -> None:
    """Become the engine (exec): signals sent to `opencite serve --foreground` — Ctrl-C, a
    container stop, a parent's terminate() — reach the engine itself, and nothing is orphaned."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(cmd[0], cmd)


def _terminate(pid: int, grace: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)  # the engine's own children (workers) go with it
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = 0 if _alive(pid) else pid
        if done or not _alive(pid):
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop(settings: Settings) -> dict | None:
    """Stop the server this data dir started; returns its state or None when nothing ran."""
    state = running_state(settings)
    files = runtime_files(settings)
    if state:
        _terminate(state["pid"])
    files.state.unlink(missing_ok=True)
    return state
