"""Two real ingest processes against one embedded index: the second is refused clearly, the
first finishes, and the index is whole."""

import pytest
import os
import subprocess
import sys
from pathlib import Path

from opencite.store import constants as C
from opencite.store.index import open_index
from tests.ingest.pages import blog

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.slow  # two ingest subprocesses at once


def test_second_ingest_is_refused_while_first_writes(settings_env, site, tmp_path):
    settings = settings_env
    urls = [site.put(p, html) for p, html in blog(3).items()]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    first = subprocess.Popen([sys.executable, "-m", "tests.ingest.ingest_driver", "hold", "1", *urls],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The first process has stored its first page and now waits, holding the writer lock.
        for line in first.stdout:
            if "HOLDING" in line:
                break
        else:
            raise AssertionError(f"first ingest never reached its first store: {first.stderr.read()[-2000:]}")
        second = subprocess.run([sys.executable, "-m", "opencite.cli", "ingest", *urls], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stderr
        assert "Another ingest is writing to the index" in " ".join(second.stderr.split())
        assert "Traceback" not in second.stderr
    finally:
        (settings.data_dir / "release").touch()
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    idx = open_index(settings)
    got = idx.collection.get(include=["metadatas"])
    assert {m[C.SOURCE] for m in got["metadatas"]} == set(urls)
    assert len(got["ids"]) == len(set(got["ids"]))
