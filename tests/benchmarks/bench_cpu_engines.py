"""The two CPU engines on Qwen2.5-0.5B's real shapes: torch float32 (what `--engine cpu` runs)
against llama.cpp (`--engine llamacpp`) on F16, Q8_0, Q4_0 and Q4_K_M GGUFs of the same weights.

Random weights (the Hub is out of reach), but every shape is the real model's, vocabulary
included (151,936 rows: the output projection is a large share of each decode step), so the
matmul work per token is the real one. The tokenizer is synthetic: prompts are token ids.

One run interleaves the engines at each prompt length, so a machine shared with other work
slows all of them alike; ratios are to torch measured in the same run, not to other runs, and
each figure is the best of --repeats runs.
Prefill: seconds to take the prompt (only the last position's logits, like a server does).
Decode: tokens/s for the next tokens after that prompt (greedy).

    nice python tests/benchmarks/bench_cpu_engines.py --sizes 1300,2000,5300 --threads 2
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

QWEN25_05B = dict(
    vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
    num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
    rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
)
QUANTS = {"Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0", "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}
# Qwen2.5's ChatML, generation prompt included (without it the server's answer starts nowhere).
CHATML = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def hf_model(folder: Path, dtype: str = "float32"):
    """The random-weight Qwen2, saved once in float32 (later runs load the same weights)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if (folder / "config.json").exists():
        return Qwen2ForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype)).eval()
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**QWEN25_05B, dtype="float32")).eval()
    model.save_pretrained(folder)
    return model


def synthetic_vocab(n: int) -> tuple[list[str], list[int]]:
    import gguf

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    byte_tokens = [chr(c) for c in range(33, 127)] + [chr(0x100 + i) for i in range(256 - 94)]
    filler = [f"t{i}" for i in range(n - len(byte_tokens) - len(specials))]
    tokens = byte_tokens + filler + specials
    types = [gguf.TokenType.NORMAL] * (len(tokens) - 3) + [gguf.TokenType.CONTROL] * 3
    return tokens, types


def synthetic_tokenizer(w, vocab_size: int) -> None:
    """Token ids in, token ids out: a byte-level vocab padded with fillers (one token per byte)."""
    tokens, types = synthetic_vocab(vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(["t 0"])
    w.add_eos_token_id(len(tokens) - 1)
    w.add_bos_token_id(len(tokens) - 3)
    w.add_add_bos_token(False)


def write_f16_gguf(model, path: Path, tokenizer=synthetic_tokenizer) -> Path:
    """A qwen2 GGUF of the model's weights in F16 (norms and biases F32, as convert_hf_to_gguf does);
    `tokenizer(writer, vocab_size)` writes its vocabulary."""
    import gguf

    c = model.config
    w = gguf.GGUFWriter(path, "qwen2")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(c.rope_theta if hasattr(c, "rope_theta") else QWEN25_05B["rope_theta"])
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    tokenizer(w, c.vocab_size)
    w.add_chat_template(CHATML)
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    for key, t in model.state_dict().items():
        if key == "lm_head.weight":
            continue  # tied to the embedding
        a = t.detach().numpy()
        if key == "model.embed_tokens.weight":
            name = "token_embd.weight"
        elif key == "model.norm.weight":
            name = "output_norm.weight"
        else:
            _, _, layer, *rest = key.split(".")
            module, kind = ".".join(rest[:-1]), rest[-1]
            name = f"blk.{layer}.{names[module]}.{kind}"
        w.add_tensor(name, a.astype(np.float16) if a.ndim == 2 else a.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def quantize(f16: Path, out: Path, ftype: str, threads: int) -> Path:
    """llama.cpp's own quantizer (the one published GGUFs come from), through the bindings."""
    import llama_cpp

    if out.exists():
        return out
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, ftype)
    params.nthread = threads
    if llama_cpp.llama_model_quantize(str(f16).encode(), str(out).encode(), ctypes.byref(params)) != 0:
        raise RuntimeError(f"quantizing {f16} to {ftype} failed")
    return out


class TorchEngine:
    def __init__(self, model):
        self.model = model

    def run(self, ids: list[int], decode: int) -> tuple[float, float]:
        import torch

        with torch.inference_mode():
            t0 = time.perf_counter()
            out = self.model(torch.tensor([ids]), use_cache=True, logits_to_keep=1)
            prefill = time.perf_counter() - t0
            cache, nxt = out.cache, out.logits[:, -1:].argmax(-1)
            t0 = time.perf_counter()
            for _ in range(decode):
                out = self.model(nxt, cache=cache, use_cache=True)
                cache, nxt = out.cache, out.logits[:, -1:].argmax(-1)
            return prefill, decode / (time.perf_counter() - t0)


class LlamaCppEngine:
    def __init__(self, path: Path, n_ctx: int, threads: int):
        from llama_cpp import Llama

        # The settings `opencite serve --engine llamacpp` starts the server with.
        self.llm = Llama(str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                         flash_attn=True, logits_all=False, verbose=False)

    def next_token(self) -> int:
        import llama_cpp

        # Greedy, from the last position's logits (the only ones computed with logits_all off).
        logits = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        return int(np.argmax(np.ctypeslib.as_array(logits, shape=(self.llm.n_vocab(),))))

    def run(self, ids: list[int], decode: int) -> tuple[float, float]:
        self.llm.reset()
        t0 = time.perf_counter()
        self.llm.eval(ids)
        prefill = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(decode):
            self.llm.eval([self.next_token()])
        return prefill, decode / (time.perf_counter() - t0)


def cpu_line() -> str:
    flags = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in flags.splitlines() if ln.startswith("Model name")), "?")
    simd = sorted({f for ln in flags.splitlines() if ln.startswith("Flags") for f in ln.split()
                   if f.startswith(("avx", "amx", "fma", "f16c"))})
    return f"{model}; {' '.join(simd)}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1300,2000,5300")
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--quants", default="F16,Q8_0,Q4_0,Q4_K_M")
    # `transformers serve --dtype auto` loads Qwen's bf16 checkpoint as bf16; float32 is the baseline.
    ap.add_argument("--torch-dtypes", default="float32")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "opencite-bench-cpu-engines")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)

    import llama_cpp
    import torch

    torch.set_num_threads(args.threads)
    print("cpu:", cpu_line())
    print("llama.cpp:", llama_cpp.llama_print_system_info().decode().strip(), "| llama-cpp-python", llama_cpp.__version__)
    print("torch", torch.__version__, "threads", args.threads, "| load avg before:", os.getloadavg())

    model = hf_model(args.workdir / "hf")
    f16 = args.workdir / "qwen2.5-0.5b-random-f16.gguf"
    if not f16.exists():
        write_f16_gguf(model, f16)
    files = {q: f16 if q == "F16" else
             quantize(f16, args.workdir / f"qwen2.5-0.5b-random-{q.lower()}.gguf", QUANTS[q], args.threads)
             for q in args.quants.split(",")}
    n_ctx = max(*sizes, 256) + args.decode + 16
    engines = {"torch-f32": TorchEngine(model)}
    engines |= {f"torch-{d}": TorchEngine(hf_model(args.workdir / "hf", d))
                for d in args.torch_dtypes.split(",") if d != "float32"}
    engines |= {f"llama.cpp-{q}": LlamaCppEngine(p, n_ctx, args.threads) for q, p in files.items()}

    rng = np.random.default_rng(0)
    for engine in engines.values():  # first touch of mmapped weights and one-time allocations, untimed
        engine.run(rng.integers(300, 1000, 256).tolist(), 4)
    results: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for size in sizes:
        ids = rng.integers(300, QWEN25_05B["vocab_size"] - 3, size).tolist()
        for r in range(args.repeats):
            order = list(engines)
            order = order[r % len(order):] + order[: r % len(order)]  # no engine always runs first
            for name in order:
                results.setdefault((size, name), []).append(engines[name].run(ids, args.decode))
                print(f"  {size:>5} {name:<16} prefill {results[(size, name)][-1][0]:7.2f} s  "
                      f"decode {results[(size, name)][-1][1]:6.1f} tok/s", flush=True)

    print("load avg after:", os.getloadavg())
    print("\n| prompt | engine | prefill s | prefill tok/s | x torch | decode tok/s | x torch |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        # Best of the repeats: on a shared machine other work only ever slows a run down (an
        # OpenMP thread that loses its core stalls every barrier), so the fastest is the cleanest.
        base_p = min(p for p, _ in results[(size, "torch-f32")])
        base_d = max(d for _, d in results[(size, "torch-f32")])
        for name in engines:
            p = min(x for x, _ in results[(size, name)])
            d = max(x for _, x in results[(size, name)])
            print(f"| {size} | {name} | {p:.2f} | {size / p:.0f} | {base_p / p:.2f} | {d:.1f} | {d / base_d:.2f} |")


if __name__ == "__main__":
    main()
