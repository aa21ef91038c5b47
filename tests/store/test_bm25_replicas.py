"""Past one machine: two reader replicas, each with its own data dir (and so its own BM25 file),
share one `chroma run` server and a record manager on a shared SQL URL (a SQLite file, and a real
PostgreSQL server) with an ingest that runs in a third process and data dir. Every replica's BM25
index follows the ingest: a new page, a changed page and a pruned page, each found (or gone)
through `retrieve(mode="bm25")`."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.ingest.pages import article

REPO = Path(__file__).resolve().parents[2]

# A replica: reads "find WORD" / "gone WORD" lines, answers once its BM25 results agree (or after 60 s).
REPLICA = """
import sys, time
from opencite.app.rag.retrieval import retrieve
from opencite.store.index import open_index
from opencite.settings import get_settings

settings = get_settings()
index = open_index(settings)
print("READY", flush=True)
for line in sys.stdin:
    want, word = line.split()
    deadline = time.monotonic() + 60
    while True:
        hits = retrieve(index, word, 3, settings, mode="bm25")
        if (want == "find") == bool(hits) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    print(want, word, hits[0][0].metadata["source"] if hits else "-", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("records", ["sqlite", "postgresql"])
def test_replicas_follow_an_ingest_on_another_host(records, chroma_server, site, tmp_path, minilm_path, request):
    records_url = (request.getfixturevalue("new_postgres_database")() if records == "postgresql"
                   else f"sqlite:///{tmp_path / 'shared-records.sqlite'}")
    shared = {
        "OPENCITE_CHROMA__URL": chroma_server,
        "OPENCITE_CHROMA__COLLECTION": f"replicas-{uuid.uuid4().hex[:8]}",
        "OPENCITE_CHROMA__RECORD_MANAGER_URL": records_url,
        "OPENCITE_EMBEDDING__MODEL": minilm_path,
        "OPENCITE_EMBEDDING__DEVICE": "cpu",
        "PYTHONPATH": str(REPO),
    }

    def env(host: str) -> dict:
        (tmp_path / host).mkdir(exist_ok=True)
        return dict(os.environ, **shared, OPENCITE_DATA_DIR=str(tmp_path / host / "data"))

    def ingest(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "opencite.cli", "ingest", *args], cwd=tmp_path / "ingester",
                              env=env("ingester"), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]

    urls = [site.put("/solar", article("Solar", {"Panels": "Photovoltaic panels turn sunlight into power."})),
            site.put("/bread", article("Bread", {"Starter": "Sourdough starter needs flour and water."}))]
    ingest(*urls)

    replicas = [subprocess.Popen([sys.executable, "-c", REPLICA], cwd=tmp_path / host, env=env(host), text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for host in ("replica-1", "replica-2")]

    def ask(want: str, word: str) -> list[str]:
        for r in replicas:
            r.stdin.write(f"{want} {word}\n")
            r.stdin.flush()
        return [r.stdout.readline().split()[-1] for r in replicas]

    try:
        for r in replicas:
            assert r.stdout.readline().strip() == "READY", r.stderr.read()[-3000:]
        assert ask("find", "photovoltaic") == [urls[0]] * 2  # built from the shared Chroma: each had none

        site.put("/solar", article("Solar", {"Panels": "Wind turbines turn moving air into power."}))
        ingest(*urls)
        assert ask("find", "turbines") == [urls[0]] * 2  # the changed page's new chunks
        assert ask("gone", "photovoltaic") == ["-"] * 2  # and its old ones gone

        ingest(urls[0], "--prune")
        assert ask("gone", "sourdough") == ["-"] * 2  # the pruned page
        for host in ("replica-1", "replica-2"):
            assert (tmp_path / host / "data" / "index" / "bm25").is_dir()  # each its own BM25 file
    finally:
        for r in replicas:
            r.stdin.close()
            r.wait(timeout=60)
