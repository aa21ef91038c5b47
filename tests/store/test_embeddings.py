import numpy as np
import pytest

from opencite.store.embeddings import LazyEmbeddings, load_embeddings

from opencite.store.embedder_choice import BGE_QUERY_INSTRUCTION, cpu_has_native_bf16, resolve_embedder
from opencite.settings import EmbeddingSettings

DOCS = [
    "TGI's Messages API speaks the OpenAI Chat Completions protocol.",
    "Mixtral is a sparse mixture-of-experts model with eight experts per layer.",
    "Chroma stores embeddings and answers nearest-neighbour queries. " * 12,
    "Open-source LLMs can act as agents that call tools in a ReAct loop.",
]
QUERIES = ["Which API is compatible with OpenAI?", "how many experts does mixtral have", "agents with open models"]


def _vectors(model: str, precision: str) -> tuple[np.ndarray, np.ndarray]:
    emb = load_embeddings(EmbeddingSettings(model=model, device="cpu", precision=precision))
    assert emb.precision == precision
    return np.array(emb.embed_documents(DOCS)), np.array([emb.embed_query(q) for q in QUERIES])


@pytest.mark.slow  # a whole run end to end or real timeouts: the full suite runs it
def test_bf16_autocast_keeps_vectors_and_rankings_of_float32(minilm_path):
    docs32, queries32 = _vectors(minilm_path, "float32")
    docs16, queries16 = _vectors(minilm_path, "bfloat16")
    assert not np.array_equal(docs32, docs16)  # bf16 really ran
    # bf16 keeps 8 significant bits (relative rounding 2**-9 per operand) and autocast accumulates
    # matmuls in float32, whichever kernel runs it (AMX, AVX512-BF16, or emulated on AVX2): errors
    # of that size leave cosines above 0.999 with room to spare (0.9999 measured on AVX2 and AMX).
    assert (docs32 * docs16).sum(axis=1).min() > 0.999
    assert (queries32 * queries16).sum(axis=1).min() > 0.999
    np.testing.assert_allclose(np.linalg.norm(docs16, axis=1), 1.0, atol=1e-5)  # normalised in float32
    # A vector within cosine 0.999 moves a score by at most ~0.045 (the chord); pairs of documents
    # further apart than twice that must keep their order. Ties closer than that may swap.
    scores32, scores16 = queries32 @ docs32.T, queries16 @ docs16.T
    apart = np.abs(scores32[:, :, None] - scores32[:, None, :]) > 0.09
    same_order = np.sign(scores32[:, :, None] - scores32[:, None, :]) == np.sign(scores16[:, :, None] - scores16[:, None, :])
    assert same_order[apart].all()
    assert (scores32.argmax(axis=1) == scores16.argmax(axis=1)).all()


def test_lazy_embeddings_load_once_on_first_use(minilm_path):
    lazy = LazyEmbeddings(EmbeddingSettings(model=minilm_path, device="cpu"))
    assert not lazy.is_loaded
    assert len(lazy.embed_query("hello")) == 384
    assert lazy.loaded is lazy.loaded


def test_bge_instruction_only_for_english_bge_models():
    assert resolve_embedder(EmbeddingSettings(model="BAAI/bge-small-en-v1.5")).query_instruction == BGE_QUERY_INSTRUCTION
    assert resolve_embedder(EmbeddingSettings(model="sentence-transformers/all-MiniLM-L6-v2")).query_instruction == ""
    forced_none = EmbeddingSettings(model="BAAI/bge-small-en-v1.5", query_instruction="")
    assert resolve_embedder(forced_none).query_instruction == ""


def test_cpu_default_is_the_light_model_and_a_gpu_gets_the_large_one():
    assert resolve_embedder(EmbeddingSettings(device="cpu")).model == "BAAI/bge-small-en-v1.5"
    assert resolve_embedder(EmbeddingSettings(device="cuda")).model == "BAAI/bge-large-en-v1.5"


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert not cpu_has_native_bf16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert cpu_has_native_bf16(cpuinfo)
    assert not cpu_has_native_bf16(tmp_path / "absent")
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_vnni\n")
    assert not cpu_has_native_bf16(cpuinfo)  # VNNI is no bf16 unit


def test_auto_precision_is_bf16_only_on_a_cpu_with_native_bf16_and_never_int8(monkeypatch):
    from opencite.store import embedder_choice as embeddings

    monkeypatch.setattr(embeddings, "cpu_has_native_bf16", lambda: True)
    assert resolve_embedder(EmbeddingSettings(device="cpu")).precision == "bfloat16"
    assert resolve_embedder(EmbeddingSettings(device="cuda")).precision == "float32"
    monkeypatch.setattr(embeddings, "cpu_has_native_bf16", lambda: False)
    assert resolve_embedder(EmbeddingSettings(device="cpu")).precision == "float32"  # VNNI or not: int8 is opt-in
    assert resolve_embedder(EmbeddingSettings(device="cuda")).precision == "float32"
    assert resolve_embedder(EmbeddingSettings(device="cpu", precision="onnx-int8")).precision == "onnx-int8"
    assert resolve_embedder(EmbeddingSettings(device="cpu", precision="bfloat16")).precision == "bfloat16"
