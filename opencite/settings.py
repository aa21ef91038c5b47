"""The one settings tree of opencite.

Every component reads its section from here. Values come, highest first, from keyword
arguments, `OPENCITE_*` environment variables (nested with `__`, e.g.
`OPENCITE_LLM__BASE_URL`), `.env.local` then `.env` in the working directory, then the defaults below.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class EmbeddingSettings(BaseModel):
    # None picks by hardware (resolved with the embedder, `ingest.embeddings.resolve_embedder`):
    # bge-large (the notebook's) with a GPU, bge-small on CPU, where bge-large embeds ~10x slower
    # for a few nDCG points.
    model: str | None = None
    gpu_model: str = "BAAI/bge-large-en-v1.5"
    cpu_model: str = "BAAI/bge-small-en-v1.5"
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    # Texts are embedded sorted by token length, in batches of at most `batch_tokens` padded tokens
    # (longest text x texts in the batch; a longer text goes alone), so short chunks share big
    # batches and long ones small ones; `batch_size` only caps the texts per batch. 4096 rather than
    # 8192: a batch's activations then stay nearer the cores' caches (float32 1.15x faster on held-out
    # blog chunks, bf16 the same, less peak memory; docs/benchmarks/embedding.md).
    batch_tokens: int = Field(4096, ge=1)
    batch_size: int = Field(512, ge=1)
    normalize: bool = True
    # None: bge's instruction for English bge models, nothing for others. "" forces none.
    query_instruction: str | None = None
    # Local folder for downloaded models; None uses the Hugging Face cache.
    cache_folder: Path | None = None
    # Matmul precision while embedding. "auto" picks by CPU flags (docs/benchmarks/embedding.md):
    # bfloat16 autocast on a CPU with native bf16 units (AMX or AVX512-BF16): 2.6-2.9x faster, and
    # vectors stay within cosine 0.9999 of float32 because autocast keeps layer norms, softmax and
    # pooling in float32; float32 everywhere else. "onnx-int8" (the model exported to ONNX, weights
    # quantised to int8, run by ONNX Runtime; SciFact nDCG@10 within 0.5 of float32) is opt-in: it
    # measured 0.77-0.80x float32 on the Xeons with VNNI and 1.06x on an AVX2 CPU.
    precision: Literal["auto", "float32", "bfloat16", "onnx-int8"] = "auto"
    # float32 on CPU through ONNX Runtime's float32 export of the same model (exported once, cached;
    # vectors at cosine 1.000000 to torch's; docs/benchmarks/embedding.md). "auto": every batch
    # where ONNX Runtime's BERT fusions apply (BERT-family models such as MiniLM and bge: 1.18x torch
    # at ingest's batches, 1.5-2.5x on a few sentences, on an AVX2 CPU) and OpenVINO does not take
    # it, else batches of at most 2,048 padded tokens (the question, the sentences the citation
    # checker scores). "small": those small batches only. "off": torch alone.
    onnx_float32: Literal["auto", "small", "off"] = "auto"
    # float32 and bfloat16 batches of more than 2,048 padded tokens (ingest's) on CPU through
    # OpenVINO, which compiles the same float32 export for this CPU (docs/benchmarks/embedding.md):
    # "auto" on CPUs with AVX512 (Sapphire Rapids Xeon: float32 1.2x torch, bf16 1.4x torch's
    # autocast; on an AVX2 Zen 3 it measured 1.05x torch, below ONNX Runtime's fused graph),
    # "on" on any CPU, "off" never. Checked against the model's vectors when it loads; a model
    # OpenVINO cannot compile or run leaves its batches to ONNX Runtime or torch, warned once.
    openvino: Literal["auto", "on", "off"] = "auto"
    # Where the ONNX exports of a model are cached; None: $XDG_CACHE_HOME/opencite/onnx.
    onnx_cache: Path | None = None


class ChromaSettings(BaseModel):
    # Embedded Chroma in this folder unless `url` names a Chroma server (`chroma run`).
    path: Path | None = None  # default: <data_dir>/index/chroma
    url: str | None = None
    collection: str = "opencite"
    # Record manager (LangChain indexing API) database; default: sqlite beside the index.
    record_manager_url: str | None = None


class ChunkingSettings(BaseModel):
    # Measured in the embedder's tokens (see README "Chunking").
    chunk_tokens: int = Field(256, ge=16)
    overlap_tokens: int = Field(32, ge=0)

    @field_validator("overlap_tokens")
    @classmethod
    def _overlap_below_size(cls, v: int, info) -> int:
        size = info.data.get("chunk_tokens")
        if size is not None and v >= size:
            raise ValueError(f"overlap_tokens ({v}) must be smaller than chunk_tokens ({size})")
        return v


class FetchSettings(BaseModel):
    # Requests at once (one run fetches one team's site or two): polite to the host, and on the
    # shared blog server 4 is as fast as 8 with less spread (re-ingest 1.0-1.1 s vs 1.2-1.6 s).
    concurrency: int = Field(4, ge=1)
    timeout: float = Field(20.0, gt=0)  # seconds, per request, whole response included
    retries: int = Field(3, ge=0)
    max_redirects: int = Field(5, ge=0)
    max_bytes: int = Field(10_000_000, ge=1)
    user_agent: str = "opencite/0.1 (+https://github.com/opencite/opencite; RAG indexer)"
    respect_robots: bool = True
    # After this many URLs of one host in a row end in a timeout, a connection error or a 5xx/429
    # (retries spent), its other URLs in the run fail at once ("not tried"); 0 turns it off.
    host_failure_limit: int = Field(20, ge=0)


class SyncSettings(BaseModel):
    # `opencite sync` schedule: one of them (the command's --every / --cron win).
    every: str | None = None  # e.g. "1h", "30m"
    cron: str | None = None  # e.g. "0 * * * *" (UTC)
    prune: bool = True  # pages that left the source set or were gone (404/410) twice are removed
    keep_reports: int = Field(200, ge=1)  # run reports kept in <data_dir>/runtime/sync/


class LLMSettings(BaseModel):
    base_url: str | None = None  # e.g. http://localhost:8000/v1 ; None: the local `opencite serve`
    api_key: SecretStr = SecretStr("not-needed")
    model: str | None = None  # None: the served preset's name
    # None: read from the serving preset; set it when pointing at another server.
    context_window: int | None = None
    max_tokens: int = Field(512, ge=1)
    temperature: float = Field(0.1, ge=0, le=2)
    timeout: float = Field(120.0, gt=0)
    max_retries: int = Field(1, ge=0)


class ServeSettings(BaseModel):
    # auto: llama.cpp where it is installed and loads on this CPU, else `transformers serve` (cpu);
    # a model given as a Hugging Face id or folder always means cpu (serving/engine_choice.py).
    engine: Literal["auto", "llamacpp", "cpu", "vllm", "hf-endpoint"] = "auto"
    preset: str = "qwen2.5-0.5b-instruct"
    # Overrides the preset's model (a hub id or a local path); llamacpp: a local .gguf file, or
    # the Hub repo holding `gguf_file`.
    model: str | None = None
    # llamacpp: the GGUF file in that repo (default: the preset's gguf_file, e.g. a q8_0 for q4_k_m).
    gguf_file: str | None = None
    # llamacpp: CPU threads; None: one per physical core this process may use (not per SMT thread).
    threads: int | None = Field(None, ge=1)
    served_model_name: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_model_len: int | None = None
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    tensor_parallel_size: int | None = None
    quantization: str | None = None
    dtype: str | None = None
    api_key: SecretStr | None = None
    chat_template: Path | None = None
    tool_call_parser: str | None = None
    startup_timeout: float = Field(900.0, gt=0)
    # Container images (compose and Inference Endpoints); pin a tag for reproducible deploys.
    vllm_image: str = "vllm/vllm-openai:latest"
    tgi_image: str = "ghcr.io/huggingface/text-generation-inference:latest"
    # --engine hf-endpoint: Hugging Face Inference Endpoints (token from HF_TOKEN or `hf auth login`).
    hf_image: Literal["vllm", "tgi"] = "vllm"
    hf_endpoint_name: str | None = None  # default: the preset's name
    hf_namespace: str | None = None  # default: the token's user
    hf_vendor: str = "aws"
    hf_region: str = "us-east-1"
    hf_scale_to_zero_minutes: int = Field(15, ge=1)
    hf_poll_seconds: float = Field(10.0, gt=0)
    hf_endpoints_api: str | None = None  # default: huggingface_hub's Endpoints API URL


class RetrievalSettings(BaseModel):
    # 10 hits, each with the chunk either side (neighbours): the blog attribution benchmark's
    # citation recall needs both (README "Verified citations"); at 4 chunks a page's figures
    # were often in a paragraph not sent to the LLM.
    k: int = Field(10, ge=1, le=50)
    # Hybrid measured at least as good as dense on all three retrieval sets (SciFact, the blog
    # eval set, the blog's cross-link set: README "Retrieval modes", "Default mode").
    mode: Literal["dense", "bm25", "hybrid"] = "hybrid"
    mmr: bool = False
    # Depth each list is fetched to before fusion, and the pool MMR picks from (SciFact: 100).
    fetch_k: int = Field(100, ge=1)
    rrf_k: int = Field(60, ge=1)
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(1.0, ge=0)
    reranker_model: str | None = None
    # How hybrid combines the two lists: reciprocal rank fusion, or a weighted sum of scores
    # normalised per list (min-max or z-score). See README "Retrieval modes" for measured choices.
    fusion: Literal["rrf", "minmax", "zscore"] = "zscore"
    mmr_lambda: float = Field(0.5, ge=0, le=1)  # 1 = relevance only, 0 = diversity only
    reranker_device: str = "cpu"
    rerank_candidates: int = Field(30, ge=1)  # the reranker scores this many of the best hits
    # Chunks of the same page either side of each hit sent with it, in its text (0: the hit alone).
    # k and neighbours make the candidate pool; what reaches the prompt is `source_tokens` of it.
    neighbours: int = Field(1, ge=0, le=5)
    # Tokens of the prompt given to sources: sentence windows around the retrieved chunks' best
    # sentences, in rank order (docs/retrieval.md "Prompt budget"). None: per engine — 1200 for a
    # local CPU engine (cpu/llamacpp, no llm.base_url) or a window <= 8k, else min(6000, window/4).
    source_tokens: int | None = Field(None, ge=64)
    # After generation, answer sentences no prompt source supports are looked up in the KB (one
    # batched hybrid query); at most this many passages not in the prompt join attribution as
    # found-after sources (0: no lookup).
    lookup_passages: int = Field(5, ge=0, le=20)


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    model_id: str = "opencite-rag"  # the default KB's model; KB `x` is "<model_id>/x"
    api_key: SecretStr | None = None  # one key that reads every KB
    # TOML file of keys scoped to KBs (see README "API keys"); read once at startup.
    keys_file: Path | None = None
    cors_origins: list[str] = []
    max_request_bytes: int = Field(1_000_000, ge=1024)
    # Beyond this many answers in flight the API answers 429 instead of queueing without bound.
    max_concurrent_generations: int = Field(64, ge=1)
    # "json": one JSON object per log line (for log shippers); "text" for people.
    log_format: Literal["text", "json"] = "text"


class UiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8501
    # Optional access control (README "Web chat access"): one shared password, or the user name a
    # trusted authenticating proxy sends in this header (e.g. X-Forwarded-User).
    password: SecretStr | None = None
    trusted_user_header: str | None = None


class EvalSettings(BaseModel):
    judge_base_url: str | None = None  # None: the serving LLM judges
    judge_api_key: SecretStr | None = None
    judge_model: str | None = None
    concurrency: int = Field(2, ge=1)


class AttributionSettings(BaseModel):
    """Checking each answer sentence against the sources (README "Verified citations")."""

    # off: answers as the LLM wrote them; flag: outcomes reported, text unchanged; repair: wrong
    # markers repointed, missing ones added, markers of unsupported sentences removed.
    mode: Literal["off", "flag", "repair"] = "repair"
    # embedding: the configured embedder + lexical evidence (CPU, nothing new loaded);
    # cross-encoder: a sentence-transformers CrossEncoder (`cross_encoder_model`); llm: the served LLM.
    scorer: Literal["embedding", "cross-encoder", "llm"] = "embedding"
    # Support at or above this counts (0..1); chosen on the blog attribution benchmark.
    threshold: float = Field(0.5, ge=0, le=1)
    embedding_weight: float = Field(0.5, ge=0, le=1)  # the rest is the lexical overlap
    # A sentence is scored against runs of up to this many adjacent source sentences.
    window_sentences: int = Field(3, ge=1, le=5)
    # A figure, version, date or proper noun of the sentence must appear in the supporting span.
    check_numbers_and_names: bool = True
    cross_encoder_model: str | None = None  # local folder or hub id (NLI or claim-check model)
    cross_encoder_device: str = "cpu"
    min_claim_words: int = Field(2, ge=1)  # sentences with fewer content words ("Yes.") are not checked
    # A figure or name of the sentence that a window does not state (absent, not contradicted)
    # lowers that window's support by this much each; a different one in its place vetoes it.
    absent_penalty: float = Field(0.1, ge=0, le=1)
    # A sentence no source supports is `contradicted` when a window scoring at least
    # threshold - contradiction_margin states a different fact in its place; else `not_found`.
    contradiction_margin: float = Field(0.15, ge=0, le=1)
    # A sentence negated where the window's like sentences affirm it (or the reverse) is contradicted.
    check_negation: bool = True
    # Sentences checked per answer; those beyond are not checked (the result counts them).
    max_sentences: int = Field(200, ge=1)
    # While the LLM writes: `check` decides each sentence as it ends (KB lookup included), so
    # little is left after the last token; `embed` only embeds the sources and the sentences.
    # auto: embed when the LLM is a local CPU engine (it decodes on the same cores, and the
    # checks would slow it by more than they save: docs/benchmarks/attribution.md), else check.
    ahead: Literal["auto", "check", "embed"] = "auto"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OPENCITE_",
        env_nested_delimiter="__",
        # .env is committed (compose's default profile); .env.local (git-ignored) overrides it.
        env_file=(".env", ".env.local"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    data_dir: Path = Path("data")
    embedding: EmbeddingSettings = EmbeddingSettings()
    chroma: ChromaSettings = ChromaSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    fetch: FetchSettings = FetchSettings()
    sync: SyncSettings = SyncSettings()
    llm: LLMSettings = LLMSettings()
    serve: ServeSettings = ServeSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    api: ApiSettings = ApiSettings()
    ui: UiSettings = UiSettings()
    eval: EvalSettings = EvalSettings()
    attribution: AttributionSettings = AttributionSettings()

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def chroma_path(self) -> Path:
        return self.chroma.path or self.index_dir / "chroma"

    @property
    def record_manager_url(self) -> str:
        return self.chroma.record_manager_url or f"sqlite:///{(self.index_dir / 'records.sqlite').resolve()}"

    @property
    def runtime_dir(self) -> Path:
        return self.data_dir / "runtime"

    @property
    def index_identity(self) -> str:
        """Which index these settings read, as a digest (no path shown): a running API reports
        it in /health so `opencite ask` only answers through an API that reads the same index."""
        import hashlib

        where = f"{self.data_dir.resolve()}|{self.chroma_path.resolve()}|{self.chroma.url or ''}"
        return hashlib.sha256(where.encode()).hexdigest()[:16]

    @property
    def feedback_path(self) -> Path:
        """The web chat's 👍/👎 records (one JSON object per line); `opencite feedback export` reads it."""
        return self.runtime_dir / "feedback.jsonl"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def masked_dump(settings: Settings) -> dict:
    """Settings as plain JSON-able data with every secret shown as '**********'."""
    return settings.model_dump(mode="json")
