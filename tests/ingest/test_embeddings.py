import numpy as np

from opencite.ingest.embeddings import LazyEmbeddings, load_embeddings
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


def test_bf16_autocast_keeps_vectors_and_rankings_of_float32(minilm_path):
    docs32, queries32 = _vectors(minilm_path, "float32")
    docs16, queries16 = _vectors(minilm_path, "bfloat16")
    assert not np.array_equal(docs32, docs16)  # bf16 really ran
    assert (docs32 * docs16).sum(axis=1).min() > 0.999
    assert (queries32 * queries16).sum(axis=1).min() > 0.999
    np.testing.assert_allclose(np.linalg.norm(docs16, axis=1), 1.0, atol=1e-5)  # normalised in float32
    assert ((queries32 @ docs32.T).argsort(axis=1) == (queries16 @ docs16.T).argsort(axis=1)).all()


def test_lazy_embeddings_load_once_on_first_use(minilm_path):
    lazy = LazyEmbeddings(EmbeddingSettings(model=minilm_path, device="cpu"))
    assert not lazy.is_loaded
    assert len(lazy.embed_query("hello")) == 384
    assert lazy.loaded is lazy.loaded
