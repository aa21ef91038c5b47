"""`opencite sync` as a real long-running process against a real local site: scheduled runs pick
up an edit, a deletion and a new page; SIGTERM and SIGKILL mid-run, and the next run leaves the
index equal to a clean ingest of the site."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from opencite.store.index import open_index
from opencite.ingest.pipeline import SourceSet, run_ingest
from opencite.settings import Settings
from tests.ingest.pages import article

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def publish_sitemap(site) -> str:
    entries = "".join(
        f"<url><loc>{site.url(path)}</loc><lastmod>{datetime.fromtimestamp(page.mtime, timezone.utc).isoformat()}</lastmod></url>"
        for path, page in sorted(site.pages.items()) if path.startswith("/post"))
    return site.put("/sitemap.xml", f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>',
                    content_type="application/xml")


def write_post(site, n: int, version: str = "") -> None:
    site.put(f"/post{n}", article(f"Post {n}", {"Topic": f"Post {n} is about topic {n} {version}."}, words=60))


def snapshot(settings) -> dict:
    got = open_index(settings).collection.get(include=["documents", "metadatas"])
    return {i: (m["source"], d) for i, m, d in zip(got["ids"], got["metadatas"], got["documents"])}


def clean_snapshot(site, tmp_path, minilm_path) -> dict:
    clean = Settings(data_dir=tmp_path / f"clean-{time.monotonic_ns()}", embedding={"model": minilm_path, "device": "cpu"})
    run_ingest(clean, SourceSet(sitemaps=[site.url("/sitemap.xml")]))
    return snapshot(clean)


class SyncProcess:
    def __init__(self, settings, *args: str) -> None:
        env = {**os.environ, "OPENCITE_DATA_DIR": str(settings.data_dir),
               "OPENCITE_EMBEDDING__MODEL": settings.embedding.model, "OPENCITE_EMBEDDING__DEVICE": "cpu",
               "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.ingest.sync_driver", *args], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.seen.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting {prefix!r}; saw {self.seen[-20:]}")


def test_scheduled_runs_follow_the_site_and_survive_sigterm_and_sigkill(settings, site, tmp_path, minilm_path):
    for n in range(6):
        write_post(site, n)
    sitemap = publish_sitemap(site)
    sources = settings.data_dir / "sources.txt"
    sources.parent.mkdir(parents=True)
    sources.write_text(f"sitemap {sitemap}\n", encoding="utf-8")

    sync = SyncProcess(settings, "--every", "3s")
    try:
        assert ": ok" in sync.wait_for("sync run")
        write_post(site, 1, "edited")  # an edit, a deletion and a new page before the next run
        site.delete("/post2")
        write_post(site, 6)
        publish_sitemap(site)
        second = sync.wait_for("sync run")
        assert ": ok" in second and "1 new" in second and "1 updated" in second and "1 pruned" in second
        assert snapshot(settings) == clean_snapshot(site, tmp_path, minilm_path)

        for n in (0, 1, 3, 4, 5, 6):  # every page changes: the next run stores page after page
            write_post(site, n, "third version")
        publish_sitemap(site)
        sync.wait_for("STORED")
        sync.proc.send_signal(signal.SIGTERM)
        assert sync.proc.wait(timeout=120) == 0
        assert "stopped" in sync.wait_for("sync run") and sync.wait_for("sync stopped")
    finally:
        if sync.proc.poll() is None:
            sync.proc.kill()

    for n in (0, 1, 3, 4, 5, 6):
        write_post(site, n, "fourth version")
    publish_sitemap(site)
    killed = SyncProcess(settings, "--every", "1h")
    try:
        killed.wait_for("STORED")
        killed.proc.send_signal(signal.SIGKILL)
        killed.proc.wait(timeout=60)
    finally:
        if killed.proc.poll() is None:
            killed.proc.kill()

    after = SyncProcess(settings, "--once")
    assert ": ok" in after.wait_for("sync run")
    assert after.proc.wait(timeout=60) == 0
    assert snapshot(settings) == clean_snapshot(site, tmp_path, minilm_path)
