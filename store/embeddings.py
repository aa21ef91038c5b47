"""The embedder: sentence-transformers through langchain-huggingface."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_huggingface import HuggingFaceEmbeddings
from pydantic import PrivateAttr

from opencite.cpu import CPUINFO
from opencite.store.embedder_choice import EmbeddingModelError, cpu_has_avx512, resolve_embedder
from opencite.store.onnx_embedder import FUSED_COSINE, OnnxEncoder, cosine_to_model, default_cache_dir, onnx_model_path
from opencite.settings import EmbeddingSettings


log = logging.getLogger(__name__)

# Up to this many padded tokens a float32 batch runs faster through ONNX Runtime's graph even
# unfused (1.30x at 2,096 tokens, 0.96x at 6,240 on an AVX2 CPU; docs/benchmarks/embedding.md).
SMALL_BATCH_TOKENS = 2048
# A text under half a batch's longest starts a new batch once that longest is this long: each text
# after the cut then saves at least half of it in padding, more than a forward pass's fixed cost
# (~5-10 ms, the time of 20-40 tokens, on 2 cores). Where it shows: a few sentences embedded with
# one long passage after the last token (a lookup), 4 texts padded to 632 tokens for ~250 real.
SPLIT_FROM_TOKENS = 64

# OpenVINO's inference precision for each embedder precision it runs, and the least cosine its
# vectors must keep to the model's (float32: the same sums reordered, 1.000000 measured; bf16:
# 0.99997 min on the blog's chunks, torch's autocast 0.99995) on four test texts before it is used.
OPENVINO_HINTS = {"float32": "f32", "bfloat16": "bf16"}
OPENVINO_COSINE = {"float32": FUSED_COSINE, "bfloat16": 0.999}


def token_budget_batches(lengths: Sequence[int], budget: int, max_count: int | None = None) -> list[list[int]]:
    """The texts' indices in batches, longest first, each batch within `budget` padded tokens.

    A batch is padded to its longest text, so its cost is its first (longest) length times its
    count; a batch is closed as soon as one more text would take that past `budget` (or past
    `max_count` texts), or when the next text is under half its longest one (and that one is at
    least SPLIT_FROM_TOKENS long), so at most half of a batch is padding. Short texts so go in big
    batches and long ones in small batches. A text longer than the budget on its own is a batch
    of one. Every index appears exactly once; ties keep input order."""
    budget = max(int(budget), 1)
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in order:
        longest = lengths[batch[0]] if batch else 0
        if batch and ((len(batch) + 1) * max(longest, 1) > budget
                      or (longest >= SPLIT_FROM_TOKENS and 2 * lengths[i] < longest)
                      or (max_count is not None and len(batch) >= max_count)):
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches


class PrecisionHuggingFaceEmbeddings(HuggingFaceEmbeddings):
    """HuggingFaceEmbeddings whose encode runs under torch autocast, or through the int8 ONNX
    graph (`store/onnx_embedder.py`), when `precision` asks for it.

    Autocast, rather than casting the weights, keeps the numerically touchy ops (layer norm,
    softmax, mean pooling, normalisation) in float32, so bf16 vectors stay within cosine 0.9999
    of the float32 ones; the weights stay float32 too. The SentenceTransformer (`_client`) stays
    loaded under onnx-int8 too: its tokenizer, limits and dimension serve the chunker and index."""

    precision: str = "float32"
    onnx_cache: str | None = None
    # Texts per batch are bounded by padded tokens (see `token_budget_batches`), not by count;
    # encode_kwargs["batch_size"] only caps the count. The default is the settings' one.
    batch_tokens: int = EmbeddingSettings.model_fields["batch_tokens"].default
    onnx_float32: str = EmbeddingSettings.model_fields["onnx_float32"].default
    openvino: str = EmbeddingSettings.model_fields["openvino"].default
    _onnx: OnnxEncoder | None = PrivateAttr(default=None)
    # The runtimes tried so far ("onnxruntime", "openvino"): their encoder at this precision, or
    # None where it could not be built (warned once).
    _runtimes: dict[str, OnnxEncoder | None] = PrivateAttr(default_factory=dict)
    _runtimes_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)  # loads the SentenceTransformer into _client
        if self.precision == "onnx-int8":
            self._onnx = self._onnx_encoder("int8")

    def _onnx_encoder(self, precision: str, runtime: type[OnnxEncoder] = OnnxEncoder, **options: Any) -> OnnxEncoder:
        import torch

        cache = Path(self.onnx_cache) if self.onnx_cache else default_cache_dir()
        path = onnx_model_path(self._client, self.model_name, cache, precision)
        return runtime(self._client, path, threads=torch.get_num_threads(), **options)

    def runtime_encoder(self, runtime: str = "onnxruntime") -> OnnxEncoder | None:
        """The graph `runtime` runs at this embedder's precision (exported, compiled and checked on
        first use): "onnxruntime" for float32 (`onnx_float32`), "openvino" for float32 and bfloat16
        (`openvino`). None where that does not apply on this device, or the graph could not be built."""
        on_cpu = str(self._client.device) == "cpu"
        if runtime == "onnxruntime" and not (on_cpu and self.precision == "float32" and self.onnx_float32 != "off"):
            return None
        if runtime == "openvino" and not (on_cpu and self.precision in OPENVINO_HINTS and self.openvino != "off"):
            return None
        with self._runtimes_lock:
            if runtime not in self._runtimes:
                try:
                    self._runtimes[runtime] = self._build(runtime)
                except Exception as exc:  # torch.onnx, ONNX Runtime and OpenVINO raise many kinds
                    self._runtimes[runtime] = None
                    if runtime == "openvino":
                        log.warning("%s embedding batches of more than %d padded tokens stay on ONNX Runtime or "
                                    "torch: OpenVINO could not compile or run the model %r (%s). Set "
                                    "OPENCITE_EMBEDDING__OPENVINO=off to skip trying.",
                                    self.precision, SMALL_BATCH_TOKENS, self.model_name, exc)
                    else:
                        log.warning("float32 embedding batches stay on torch: the model %r could not be exported to or "
                                    "run by ONNX Runtime (%s). Set OPENCITE_EMBEDDING__ONNX_FLOAT32=off "
                                    "to skip trying.", self.model_name, exc)
        return self._runtimes[runtime]

    def _build(self, runtime: str) -> OnnxEncoder:
        if runtime == "onnxruntime":
            return self._onnx_encoder("float32")
        from opencite.store.openvino_embedder import OpenVinoEncoder

        encoder = self._onnx_encoder("float32-plain", OpenVinoEncoder, hint=OPENVINO_HINTS[self.precision])
        # The blank text is left out at bf16: `_embed` gives blanks the float32 model's vector.
        agreement = cosine_to_model(self._client, encoder, blank=self.precision == "float32")
        if agreement < OPENVINO_COSINE[self.precision]:
            raise ValueError(f"its vectors disagree with the model's (cosine {agreement:.6f})")
        return encoder

    def large_batch_runtime(self, cpuinfo: Path = CPUINFO) -> str:
        """Where batches of more than SMALL_BATCH_TOKENS padded tokens are meant to run: "openvino",
        "onnxruntime" (float32, when its graph is fused) or "torch"."""
        if self.precision in OPENVINO_HINTS and (
                self.openvino == "on" or (self.openvino == "auto" and cpu_has_avx512(cpuinfo))):
            return "openvino"
        return "onnxruntime" if self.precision == "float32" and self.onnx_float32 == "auto" else "torch"

    def _graph_for(self, padded: int) -> OnnxEncoder | None:
        """The graph that runs a batch of `padded` tokens, or None for torch: ONNX Runtime's float32
        graph up to SMALL_BATCH_TOKENS; above it, `large_batch_runtime` where it can be built, else
        ONNX Runtime's graph when it is fused."""
        if padded <= SMALL_BATCH_TOKENS:
            return self.runtime_encoder("onnxruntime")
        runtime = self.large_batch_runtime()
        if runtime == "openvino" and (encoder := self.runtime_encoder("openvino")) is not None:
            return encoder
        if self.onnx_float32 != "auto":
            return None
        encoder = self.runtime_encoder("onnxruntime")
        return encoder if encoder is not None and encoder.fused else None

    def _embed(self, texts: list[str], encode_kwargs: dict[str, Any]) -> list[list[float]]:
        # A blank text is only the special tokens: its mean-pooled vector comes from two positions,
        # so reduced-precision noise does not average out (int8 moved it to cosine 0.976 with VNNI
        # kernels, against 0.99+ for real text). It carries no content either, so every precision
        # path gives it the float32 model's own vector.
        blank = set() if encode_kwargs.get("prompt") else {i for i, t in enumerate(texts) if not t.strip()}
        if blank and self.precision != "float32":
            filled = iter(self._embed_at_precision([t for i, t in enumerate(texts) if i not in blank], encode_kwargs))
            reference = iter(super()._embed([texts[i] for i in sorted(blank)], encode_kwargs))
            return [next(reference) if i in blank else next(filled) for i in range(len(texts))]
        return self._embed_at_precision(texts, encode_kwargs)

    def token_lengths(self, texts: Sequence[str], prompt: str | None = None) -> list[int]:
        """Each text's length in model tokens as it will be embedded (special tokens and the prompt
        included, truncated to the model's max_seq_length)."""
        if not texts:
            return []
        tokenizer = self._client.tokenizer
        limit = getattr(self._client, "max_seq_length", None) or tokenizer.model_max_length
        prefixed = [prompt + t for t in texts] if prompt else list(texts)
        ids = tokenizer(prefixed, add_special_tokens=True, truncation=True, max_length=limit,
                        return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        return [len(x) for x in ids]

    def _embed_at_precision(self, texts: list[str], encode_kwargs: dict[str, Any]) -> list[list[float]]:
        """Texts sorted by token length and embedded in batches of at most `batch_tokens` padded
        tokens (one forward pass each), vectors put back in input order."""
        if not texts:
            return []
        texts = [x.replace("\n", " ") for x in texts]  # as HuggingFaceEmbeddings does
        lengths = self.token_lengths(texts, encode_kwargs.get("prompt"))
        out: list[list[float] | None] = [None] * len(texts)
        for batch in token_budget_batches(lengths, self.batch_tokens, encode_kwargs.get("batch_size")):
            padded = len(batch) * max(lengths[i] for i in batch)
            vectors = self._encode_batch([texts[i] for i in batch], dict(encode_kwargs, batch_size=len(batch)), padded)
            for i, vector in zip(batch, vectors):
                out[i] = vector
        return out  # type: ignore[return-value]

    def _encode_batch(self, texts: list[str], encode_kwargs: dict[str, Any], padded: int) -> list[list[float]]:
        """One batch, one forward pass, at the configured precision. On CPU an ONNX graph may run it
        (`_graph_for`): ONNX Runtime's at float32 for small batches, where torch runs 2-5x slower
        (per-op overheads of an unfused graph), and for larger ones the runtime fastest on this CPU
        kind (OpenVINO on AVX512, at float32 or bf16); the vectors agree with torch's (checked at load)."""
        onnx = self._onnx or self._graph_for(padded)
        if onnx is not None:
            return onnx.encode(texts, encode_kwargs.get("normalize_embeddings", False),
                               encode_kwargs.get("prompt")).tolist()
        if self.precision == "float32":
            return super()._embed(texts, encode_kwargs)
        import torch

        device_type = str(self._client.device).split(":")[0]
        with torch.autocast(device_type, dtype=getattr(torch, self.precision)):
            return super()._embed(texts, encode_kwargs)


def load_embeddings(cfg: EmbeddingSettings) -> HuggingFaceEmbeddings:
    """Load the configured model; the query instruction (bge's) applies to queries only."""
    choice = resolve_embedder(cfg)
    return _load(
        choice.model,
        choice.device,
        choice.precision,
        cfg.batch_size,
        cfg.batch_tokens,
        cfg.onnx_float32,
        cfg.openvino,
        cfg.normalize,
        choice.query_instruction,
        str(cfg.cache_folder) if cfg.cache_folder else None,
        str(cfg.onnx_cache) if cfg.onnx_cache else None,
    )


@lru_cache(maxsize=4)
def _load(model: str, device: str, precision: str, batch_size: int, batch_tokens: int, onnx_float32: str,
          openvino: str, normalize: bool, instruction: str, cache: str | None, onnx_cache: str | None):
    encode = {"batch_size": batch_size, "normalize_embeddings": normalize}
    query_encode = dict(encode, prompt=instruction) if instruction else dict(encode)
    try:
        return PrecisionHuggingFaceEmbeddings(
            model_name=model,
            cache_folder=cache,
            model_kwargs={"device": device},
            encode_kwargs=encode,
            query_encode_kwargs=query_encode,
            precision=precision,
            onnx_cache=onnx_cache,
            batch_tokens=batch_tokens,
            onnx_float32=onnx_float32,
            openvino=openvino,
        )
    except Exception as exc:  # sentence-transformers raises OSError, ValueError, HF errors...
        raise EmbeddingModelError(
            f"Could not load the embedding model {model!r} on {device}: {exc}\n"
            "Fix: set OPENCITE_EMBEDDING__MODEL to a local sentence-transformers folder, or make the "
            "Hugging Face Hub reachable (HF_ENDPOINT / HF_HOME), or set HF_HUB_OFFLINE=1 when the "
            "model is already in the cache."
        ) from exc


def embedding_dimension(embeddings: HuggingFaceEmbeddings | LazyEmbeddings) -> int:
    client = embeddings._client  # the SentenceTransformer
    get_dim = getattr(client, "get_embedding_dimension", None) or client.get_sentence_embedding_dimension
    return int(get_dim())


class LazyEmbeddings(Embeddings):
    """The configured embedder, loaded on first use.

    An ingest over unchanged sources or a reader that only lists the index never embeds, so it
    should not pay the model load (seconds on CPU). Attribute access (e.g. `_client` for the
    tokenizer, `query_encode_kwargs`) loads it too."""

    def __init__(self, cfg: EmbeddingSettings):
        self._cfg = cfg
        self._loaded: HuggingFaceEmbeddings | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> HuggingFaceEmbeddings:
        with self._lock:  # two threads asking at once must not load two models
            if self._loaded is None:
                self._loaded = load_embeddings(self._cfg)
        return self._loaded

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.loaded.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.loaded.embed_query(text)

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("_cfg", "_loaded", "_lock"):
            raise AttributeError(name)
        return getattr(self.loaded, name)
