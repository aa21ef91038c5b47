"""`opencite sync --all` as a real long-running process: two knowledge bases on their own short
schedules, each following its own local site; a KB with no sources file gets error records while
the others go on; a KB created meanwhile is picked up; SIGTERM ends it with exit 0."""

from __future__ import annotations

import json
import signal
import time

import pytest
from typer.testing import CliRunner

from opencite.cli import app
from opencite.store import kb
from opencite.store.index import open_index
from opencite.ingest.sync import reports_dir
from opencite.settings import get_settings
from tests.ingest.test_sync_process import SyncProcess, publish_sitemap, write_post

pytestmark = pytest.mark.slow


def cli(*args: str) -> None:
    get_settings.cache_clear()
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output


def next_line(sync: SyncProcess, wanted, after: int, timeout: float = 240) -> int:
    """The index in sync.seen of the first line after `after` that `wanted` accepts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i in range(after, len(sync.seen)):
            if wanted(sync.seen[i]):
                return i
        after = len(sync.seen)
        sync.wait_for("", timeout=deadline - time.monotonic())  # one more line of any kind
    raise AssertionError(f"no such line; saw {sync.seen[-20:]}")


def run_line(name: str, *parts: str):
    return lambda line: line.startswith(f"sync run {name} ") and all(p in line for p in parts)


def chunk_texts(settings, name: str) -> dict[str, str]:
    with open_index(kb.kb_settings(settings, name)) as idx:
        got = idx.collection.get(include=["documents", "metadatas"])
    return {m["source"]: d for m, d in zip(got["metadatas"], got["documents"])}


def reports(settings, name: str) -> list[dict]:
    folder = reports_dir(kb.kb_settings(settings, name))
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def test_sync_all_keeps_each_kb_on_its_own_schedule_and_stops_on_sigterm(settings_env, site, second_site):
    settings = settings_env
    for n in range(2):
        write_post(site, n)
        write_post(second_site, n)
    cli("kb", "create", "alpha", "--every", "1s")
    cli("kb", "create", "beta", "--every", "2s")
    cli("kb", "create", "nosources", "--every", "1s")
    kb.describe(settings, "alpha").sources_file.write_text(f"sitemap {publish_sitemap(site)}\n")
    kb.describe(settings, "beta").sources_file.write_text(f"sitemap {publish_sitemap(second_site)}\n")
    kb.describe(settings, "nosources").sources_file.unlink()

    sync = SyncProcess(settings, "--all")
    try:
        first = max(next_line(sync, run_line(name, ": ok", "2 new"), 0) for name in ("alpha", "beta"))
        next_line(sync, run_line("nosources", ": error", "missing"), 0)

        write_post(site, 1, "alpha edited")
        write_post(second_site, 0, "beta edited")
        publish_sitemap(site)
        publish_sitemap(second_site)
        for name in ("alpha", "beta"):
            next_line(sync, run_line(name, ": ok", "1 updated"), first)

        cli("kb", "create", "late", "--every", "1s")  # created while it runs: picked up at a wake-up
        kb.describe(settings, "late").sources_file.write_text(f"{site.url('/post0')}\n")
        next_line(sync, run_line("late", ": ok", "1 new"), first)

        sync.proc.send_signal(signal.SIGTERM)
        assert sync.proc.wait(timeout=120) == 0
        next_line(sync, lambda line: line == "sync stopped", first, timeout=10)
    finally:
        if sync.proc.poll() is None:
            sync.proc.kill()

    alpha, beta = chunk_texts(settings, "alpha"), chunk_texts(settings, "beta")
    assert set(alpha) == {site.url("/post0"), site.url("/post1")} and "alpha edited" in alpha[site.url("/post1")]
    assert set(beta) == {second_site.url("/post0"), second_site.url("/post1")}
    assert "beta edited" in beta[second_site.url("/post0")]
    assert set(chunk_texts(settings, "late")) == {site.url("/post0")}

    # Each KB's reports in its own folder, naming only its own pages; the default KB has no schedule.
    for name, base in (("alpha", site.base), ("beta", second_site.base), ("late", site.base)):
        saved = reports(settings, name)
        assert saved and {r["status"] for r in saved} <= {"ok", "stopped"}
        assert all(s["url"].startswith(base) for r in saved for s in r["report"]["sources"])
    assert {(r["status"], "missing" in r["error"]) for r in reports(settings, "nosources")} == {("error", True)}
    assert reports(settings, "default") == []
    # One run at a time across all KBs.
    runs = sorted((r for name in ("alpha", "beta", "late", "nosources") for r in reports(settings, name)),
                  key=lambda r: r["started"])
    assert all(a["finished"] <= b["started"] for a, b in zip(runs, runs[1:]))
