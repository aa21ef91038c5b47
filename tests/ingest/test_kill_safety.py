"""A real ingest process SIGKILLed at several points, then re-run, ends equal to a clean run."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from opencite.store import constants as C
from opencite.store.index import open_index
from opencite.ingest.pipeline import SourceSet, registry_for, run_ingest
from tests.ingest.pages import article, blog

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.slow  # SIGKILLs real ingest subprocesses


def index_state(settings) -> dict:
    """Everything that must match a clean run: chunks, records and registry rows."""
    with open_index(settings, write=True) as idx:
        got = idx.collection.get(include=["metadatas", "documents"])
        chunks = sorted((i, m[C.SOURCE], m[C.CHUNK_INDEX], m[C.CONTENT_HASH], d)
                        for i, m, d in zip(got["ids"], got["metadatas"], got["documents"]))
        records = sorted(idx.record_manager.list_keys())
        registry = sorted((r.url, r.content_hash, r.chunks) for r in registry_for(idx).all())
    assert records == sorted(c[0] for c in chunks)  # no stray vectors, no orphan records
    return {"chunks": chunks, "registry": registry}


def run_killed(point: str, n: int, urls: list[str], cwd: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "tests.ingest.ingest_driver", point, str(n), *urls],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-2000:])


def edit(site) -> None:
    site.put("/post-1", article("Post 1", {"Changed": "Rewritten text about quantization."}, words=40))
    site.put("/post-3", article("Post 3", {"Changed too": "Rewritten text about batching."}))


@pytest.mark.parametrize(
    "point, n, before_kill",
    [
        ("add", 2, "empty"),  # vectors of page 2 stored, not yet recorded
        ("record", 3, "empty"),  # page 3 recorded, its registry row not written
        ("extract", 2, "indexed"),  # during extraction, before anything is written
        ("cleanup", 1, "indexed"),  # new chunks stored, old vectors deleted, old records not
        ("registry", 2, "indexed"),  # mid-way through the registry writes
    ],
)
def test_killed_run_then_rerun_equals_clean_run(point, n, before_kill, settings_env, site, tmp_path):
    settings = settings_env
    urls = [site.put(p, html) for p, html in blog(4, words=40).items()]
    if before_kill == "indexed":
        run_ingest(settings, SourceSet(urls))
        edit(site)
    run_killed(point, n, urls, tmp_path)
    if before_kill == "empty":
        edit(site)

    rerun = run_ingest(settings, SourceSet(urls))
    assert not rerun.failed
    clean_settings = settings.model_copy(update={"data_dir": tmp_path / "clean"})
    run_ingest(clean_settings, SourceSet(urls))
    assert index_state(settings) == index_state(clean_settings)
