import warnings

import numpy as np
import pytest

from opencite.store.embeddings import load_embeddings

from opencite.store.embedder_choice import EmbeddingModelError, resolve_embedder
from opencite.store.onnx_embedder import model_key
from opencite.settings import EmbeddingSettings

DOCS = [
    "TGI's Messages API speaks the OpenAI Chat Completions protocol.",
    "Mixtral is a sparse mixture-of-experts model with eight experts per layer.",
    "Chroma stores embeddings and answers nearest-neighbour queries.\n" * 12,
    "Open-source LLMs can act as agents that call tools in a ReAct loop.",
    "",
]
QUERIES = ["Which API is compatible with OpenAI?", "how many experts does mixtral have", "agents with open models"]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def both(minilm_path, onnx_cache):
    """MiniLM in float32 torch and through the int8 ONNX graph (exported once for the module)."""
    fp32 = load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", precision="float32"))
    int8 = load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", precision="onnx-int8",
                                             onnx_cache=onnx_cache, query_instruction="query: "))
    return fp32, int8


# What dynamic int8 quantisation promises is bounded relative error per matmul (8-bit weights per
# channel, activations scaled per batch), not a fixed cosine: the kernels differ by instruction
# set (u8s8 with VNNI, 16-bit saturating pairs on AVX2 only, AVX512 in between) and so does the
# rounding. Real text measured 0.990-0.995 on AVX2 and on AVX512-VNNI; 0.97 bounds what any of those
# kernels may do without letting a broken graph (cosines of 0.5-0.8) through, and the ranking check
# is the product's real requirement. SciFact nDCG@10 within 0.5 of float32 is the benchmark's check.
INT8_COSINE = 0.97


def test_int8_vectors_stay_close_to_float32_and_rank_alike(both):
    fp32, int8 = both
    docs32, docs8 = np.array(fp32.embed_documents(DOCS)), np.array(int8.embed_documents(DOCS))
    assert docs8.shape == docs32.shape == (len(DOCS), 384)
    assert not np.array_equal(docs32[:-1], docs8[:-1])  # the int8 graph really ran
    assert (docs32[:-1] * docs8[:-1]).sum(axis=1).min() > INT8_COSINE
    np.testing.assert_allclose(np.linalg.norm(docs8, axis=1), 1.0, atol=1e-5)
    queries32 = np.array([fp32.embed_query(q) for q in QUERIES])
    queries8 = np.array([int8._embed([q], int8.encode_kwargs)[0] for q in QUERIES])  # without the instruction
    assert (queries32 * queries8).sum(axis=1).min() > INT8_COSINE
    assert ((queries32 @ docs32.T).argmax(axis=1) == (queries8 @ docs8.T).argmax(axis=1)).all()


def test_a_blank_text_gets_the_float32_vector_on_every_path(both):
    # Only the special tokens: nothing for quantisation noise to average over, and no content.
    fp32, int8 = both
    for blank in ("", "  \n "):
        np.testing.assert_allclose(int8.embed_documents([blank])[0], fp32.embed_documents([blank])[0], atol=1e-6)
    mixed = int8.embed_documents(["", DOCS[0], " "])
    np.testing.assert_allclose(mixed[0], fp32.embed_documents([""])[0], atol=1e-6)
    np.testing.assert_allclose(mixed[1], int8.embed_documents([DOCS[0]])[0], atol=1e-6)


def test_int8_vectors_barely_depend_on_their_batch(both):
    # Dynamic quantisation scales activations per batch, so a text's vector moves a little with
    # its batch-mates; each result is still put back in its input's place.
    _, int8 = both
    one_by_one = np.array([int8.embed_documents([d])[0] for d in DOCS])
    batched = np.array(int8.embed_documents(DOCS))
    cosines = (one_by_one * batched).sum(axis=1)
    # Both vectors are within INT8_COSINE of float32's, so within the doubled angle of each other.
    assert cosines.min() > 2 * INT8_COSINE**2 - 1
    assert cosines[-1] == pytest.approx(1.0, abs=1e-6)  # the blank text is float32's on both sides


def test_int8_queries_carry_the_instruction(both):
    _, int8 = both
    with_instruction = np.array(int8.embed_query(QUERIES[0]))
    plain = np.array(int8.embed_documents([QUERIES[0]])[0])
    prefixed = np.array(int8.embed_documents(["query: " + QUERIES[0]])[0])
    assert not np.allclose(with_instruction, plain)
    np.testing.assert_allclose(with_instruction, prefixed, atol=1e-5)


def test_the_export_is_cached_and_reused(both, onnx_cache, minilm_path):
    files = list(onnx_cache.glob("*/model-int8.onnx"))
    assert len(files) == 1
    assert not [p for p in onnx_cache.rglob("*") if p.is_dir() and p.parent != onnx_cache]  # no temp dirs left
    before = files[0].stat().st_mtime_ns
    from opencite.store.embeddings import PrecisionHuggingFaceEmbeddings

    again = PrecisionHuggingFaceEmbeddings(model_name=minilm_path, model_kwargs={"device": "cpu"},
                                           precision="onnx-int8", onnx_cache=str(onnx_cache))
    assert len(again.embed_query("hello")) == 384
    assert files[0].stat().st_mtime_ns == before


def test_the_cache_key_follows_the_weights(both):
    import torch

    fp32, _ = both
    model = fp32._client
    key = model_key(model)
    assert model_key(model) == key
    param = next(model.parameters())
    with torch.no_grad():
        param[0, 0] += 1.0
        try:
            assert model_key(model) != key
        finally:
            param[0, 0] -= 1.0


def test_int8_on_a_gpu_is_refused_with_the_fix():
    with pytest.raises(EmbeddingModelError, match="CPU only.*OPENCITE_EMBEDDING__DEVICE=cpu"):
        resolve_embedder(EmbeddingSettings(device="cuda", precision="onnx-int8"))


def test_float32_runs_through_the_fused_onnx_graph_with_torchs_vectors(minilm_path, tmp_path):
    # MiniLM is a BERT: ONNX Runtime fuses its graph, and then every float32 batch runs there. The
    # vectors are torch's up to float32 rounding (different kernels sum in a different order).
    onnx = load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", precision="float32",
                                             onnx_cache=tmp_path))
    torch_only = load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", precision="float32",
                                                   onnx_float32="off"))
    with warnings.catch_warnings(record=True) as seen:  # the export runs here, on first use
        warnings.simplefilter("always")
        docs = np.array(onnx.embed_documents(DOCS))
    # The tracer's warnings about the shapes it freezes are not the user's business (a first ingest printed them).
    assert not [w for w in seen if w.category.__name__ == "TracerWarning" or "aten::index" in str(w.message)]
    reference = np.array(torch_only.embed_documents(DOCS))
    encoder = onnx.runtime_encoder()
    assert encoder is not None and encoder.fused and torch_only.runtime_encoder() is None
    assert list(tmp_path.glob("*/model-float32.onnx"))  # exported once and cached
    assert (docs * reference).sum(axis=1).min() > 1 - 1e-6
    queries = np.array([onnx.embed_query(q) for q in QUERIES])
    assert (queries * np.array([torch_only.embed_query(q) for q in QUERIES])).sum(axis=1).min() > 1 - 1e-6


def test_small_mode_keeps_batches_above_the_small_size_on_torch(minilm_path, tmp_path):
    from opencite.store.embeddings import SMALL_BATCH_TOKENS

    embedder = load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", precision="float32",
                                                 onnx_float32="small", openvino="off", onnx_cache=tmp_path,
                                                 batch_tokens=100_000))
    long_texts = [DOCS[2]] * (SMALL_BATCH_TOKENS // 128 + 2)  # each ~130 tokens: one batch above the size
    assert len(long_texts) * max(embedder.token_lengths(long_texts)) > SMALL_BATCH_TOKENS
    assert len(embedder.embed_documents(long_texts)) == len(long_texts)
    assert not list(tmp_path.iterdir())  # so nothing was exported
    embedder.embed_query(QUERIES[0])
    assert list(tmp_path.glob("*/model-float32.onnx"))  # a small batch was


def test_a_float32_graph_that_cannot_be_built_leaves_torch_with_one_warning(minilm_path, tmp_path, caplog):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the export cache would go")
    embedder = load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", precision="float32",
                                                 onnx_cache=blocked))
    reference = load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", precision="float32",
                                                  onnx_float32="off"))
    with caplog.at_level("WARNING"):
        first, second = embedder.embed_query(QUERIES[0]), embedder.embed_query(QUERIES[1])
    assert embedder.runtime_encoder() is None
    warnings = [r.getMessage() for r in caplog.records if "ONNX_FLOAT32=off" in r.getMessage()]
    assert len(warnings) == 1 and "stay on torch" in warnings[0]
    np.testing.assert_allclose(first, reference.embed_query(QUERIES[0]), atol=1e-6)
    assert len(second) == 384


def test_large_float32_batches_run_through_openvino_with_torchs_vectors(minilm_path, tmp_path):
    # OpenVINO compiles the plain float32 export (no ONNX Runtime contrib ops) for this CPU; small
    # batches stay on ONNX Runtime. Vectors are torch's up to float32 rounding.
    from opencite.store.embeddings import SMALL_BATCH_TOKENS

    embedder = load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", precision="float32",
                                                 openvino="on", onnx_cache=tmp_path, batch_tokens=100_000))
    torch_only = load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", precision="float32",
                                                   onnx_float32="off"))
    embedder.embed_query(QUERIES[0])  # one short text: ONNX Runtime's graph
    assert list(tmp_path.glob("*/model-float32.onnx")) and not list(tmp_path.glob("*/model-float32-plain.onnx"))
    long_texts = [f"{i}. {DOCS[2]}" for i in range(SMALL_BATCH_TOKENS // 128 + 2)]  # one batch above the size
    assert len(long_texts) * max(embedder.token_lengths(long_texts)) > SMALL_BATCH_TOKENS
    docs = np.array(embedder.embed_documents(long_texts))
    assert list(tmp_path.glob("*/model-float32-plain.onnx"))  # exported for OpenVINO, once
    assert embedder.runtime_encoder("openvino") is not None
    reference = np.array(torch_only.embed_documents(long_texts))
    assert (docs * reference).sum(axis=1).min() > 1 - 1e-6


def test_large_bf16_batches_run_through_openvino_close_to_float32(minilm_path, tmp_path):
    # OpenVINO at bf16 keeps layer norms and softmax in float32 as autocast does; on a CPU without
    # bf16 units it runs float32 instead. Either way the vectors stay at the bf16 bound.
    from opencite.store.embeddings import SMALL_BATCH_TOKENS

    embedder = load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", precision="bfloat16",
                                                 openvino="on", onnx_cache=tmp_path, batch_tokens=100_000))
    long_texts = [f"{i}. {DOCS[2]}" for i in range(SMALL_BATCH_TOKENS // 128 + 2)]
    docs = np.array(embedder.embed_documents(long_texts + [""]))
    assert list(tmp_path.glob("*/model-float32-plain.onnx"))  # exported for OpenVINO by that batch
    assert embedder.runtime_encoder("openvino") is not None
    assert embedder.runtime_encoder("onnxruntime") is None  # ONNX Runtime runs float32 only
    reference = np.array(load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", precision="float32",
                                                           onnx_float32="off")).embed_documents(long_texts + [""]))
    assert (docs * reference).sum(axis=1).min() > 0.999
    np.testing.assert_allclose(docs[-1], reference[-1], atol=1e-6)  # the blank text: float32's own vector


@pytest.mark.parametrize(("flags", "avx512"), [("fpu sse2 avx avx2 fma f16c", False),
                                               ("fpu avx2 fma avx512f avx512bw avx512_vnni", True)])
def test_auto_sends_large_batches_to_openvino_on_avx512_cpus_only(minilm_path, tmp_path, flags, avx512):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")

    def runtime(**settings):
        embedder = load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", **settings))
        return embedder.large_batch_runtime(cpuinfo)

    assert runtime(precision="float32") == ("openvino" if avx512 else "onnxruntime")
    assert runtime(precision="bfloat16") == ("openvino" if avx512 else "torch")
    assert runtime(precision="onnx-int8", onnx_cache=tmp_path) == "torch"  # int8 has its own ONNX Runtime graph
    assert runtime(precision="float32", openvino="on") == "openvino"
    assert runtime(precision="float32", openvino="off") == "onnxruntime"
    assert runtime(precision="float32", openvino="off", onnx_float32="small") == "torch"


def test_float32_runtimes_that_cannot_be_built_leave_torch_with_one_warning_each(minilm_path, tmp_path, caplog):
    from opencite.store.embeddings import SMALL_BATCH_TOKENS

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the export cache would go")
    embedder = load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", precision="float32",
                                                 openvino="on", onnx_cache=blocked, batch_tokens=100_000))
    long_texts = [f"{i}. {DOCS[2]}" for i in range(SMALL_BATCH_TOKENS // 128 + 2)]
    with caplog.at_level("WARNING"):
        first, second = embedder.embed_documents(long_texts), embedder.embed_documents(long_texts[:-1])
    said = [r.getMessage() for r in caplog.records]
    assert len([m for m in said if "OpenVINO could not" in m and "OPENVINO=off" in m]) == 1
    assert len([m for m in said if "stay on torch" in m and "ONNX_FLOAT32=off" in m]) == 1
    reference = load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", precision="float32",
                                                  onnx_float32="off"))
    np.testing.assert_allclose(first, reference.embed_documents(long_texts), atol=1e-6)
    assert len(second) == len(long_texts) - 1
