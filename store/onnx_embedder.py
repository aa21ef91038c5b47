"""ONNX Runtime inference for a sentence-transformers model: the int8 graph (precision `onnx-int8`,
opt-in: on the VNNI CPUs without bf16 units where it could be the default it ran slower than
float32, docs/benchmarks/embedding.md) and the float32 graph that runs float32 on CPU
(`OPENCITE_EMBEDDING__ONNX_FLOAT32`): for BERT-family models fused by ONNX Runtime's optimizer,
1.16-1.31x torch at ingest's batches and 1.5-2.5x on a few sentences on an AVX2 CPU, for the same
vectors (docs/benchmarks/embedding.md).

The SentenceTransformer itself (transformer, pooling, its own normalisation) is exported with
`torch.onnx.export`, so the graph pools exactly as the model folder says (mean for MiniLM, CLS
for bge); for int8 its weight matmuls are then quantised with ONNX Runtime's dynamic quantisation.
Both run once per model: the result is cached under a key of the model's weights and modules,
written atomically under a file lock, so parallel first uses export it once.

Why not sentence-transformers' own `backend="onnx"`: it needs optimum, whose releases pin
transformers below 5 (`pip install --dry-run optimum-onnx` would downgrade it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Bump when the export or quantisation recipe changes: older cached files are then ignored.
RECIPE = "st-export-opset17-dynamic-int8-perchannel-v1"


def default_cache_dir() -> Path:
    """Derived model files, shared by every data dir on the machine (like the HF cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "opencite" / "onnx"


def model_key(model) -> str:
    """Changes whenever the weights, the modules' configuration or the recipe change."""
    digest = hashlib.sha256(RECIPE.encode())
    digest.update(repr(model).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def onnx_model_path(model, model_name: str, cache_dir: Path, precision: str = "int8") -> Path:
    """The cached ONNX file of `model`, exported on first use. `precision`: "int8", "float32"
    (ONNX Runtime's fused graph where the fusions apply) or "float32-plain" (standard ONNX ops
    only, for OpenVINO, which reads no ONNX Runtime contrib ops)."""
    from filelock import FileLock

    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name.rstrip("/").split("/")[-1])[:60] or "model"
    folder = cache_dir / f"{slug}-{model_key(model)}"
    path = folder / f"model-{precision}.onnx"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".export.lock")):
        if not path.exists():
            export_onnx(model, path, quantize=precision == "int8", fuse=precision == "float32")
    return path


def _example_features(model) -> dict[str, Any]:
    # Two texts of different lengths: the traced graph must take the padded (masked) path.
    return model.preprocess(["an example", "a longer example sentence, padded against the first one"])


def export_onnx(model, path: Path, quantize: bool, fuse: bool = True) -> None:
    import torch

    features = _example_features(model)
    names = [k for k, v in features.items() if isinstance(v, torch.Tensor)]
    extra = {k: v for k, v in features.items() if k not in names}

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *tensors):
            return self.inner({**dict(zip(names, tensors)), **extra})["sentence_embedding"]

    transformer = getattr(model[0], "auto_model", None)
    config = getattr(transformer, "config", None)
    # ONNX Runtime fuses BERT's attention only as the eager attention exports it (SDPA's export
    # is left unfused); the float32 graphs are exported that way, to be fused by ONNX Runtime or,
    # plain, by OpenVINO as it compiles them.
    fusable = not quantize and getattr(config, "model_type", "") == "bert" and hasattr(transformer, "set_attn_implementation")
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        fp32, int8, fused = Path(tmp) / "model.onnx", Path(tmp) / "int8.onnx", Path(tmp) / "fused.onnx"
        previous = getattr(config, "_attn_implementation", None) or "sdpa"
        try:
            if fusable:
                transformer.set_attn_implementation("eager")
            # Not the user's concern: the shape checks the tracer freezes hold for every input the
            # embedder gives (a tokenizer's mask has its ids' length), and the index warning is
            # about negative indices, which this graph never takes.
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                warnings.filterwarnings("ignore", message="Exporting aten::index operator", category=UserWarning)
                torch.onnx.export(
                    SentenceEmbedding(model).eval(), tuple(features[n] for n in names), str(fp32),
                    input_names=names, output_names=["sentence_embedding"],
                    dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "sentence_embedding": {0: "batch"}},
                    opset_version=17, dynamo=False,  # the dynamo exporter needs onnxscript
                )
        finally:
            if fusable:
                transformer.set_attn_implementation(previous)
        if not quantize:
            os.replace(fused if fuse and fusable and _fuse_bert(model, config, fp32, fused) else fp32, path)
            return
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # Weights only (activations are quantised per batch at run time), per output channel and
        # unsigned: signed int8 weights saturate AVX2's u8*s8 multiply-add and cost accuracy.
        quantize_dynamic(fp32, int8, weight_type=QuantType.QUInt8, per_channel=True, op_types_to_quantize=["MatMul"],
                         extra_options={"DefaultTensorType": 1})  # 1 = float: types the exporter left unset
        os.replace(int8, path)


def _fuse_bert(model, config, source: Path, target: Path) -> bool:
    """ONNX Runtime's BERT fusions (attention, skip layer norm, bias GELU, the embedding layer
    norm) written to `target`, kept only if the fused graph gives the model's own vectors:
    1.16-1.31x the unfused graph's speed at 4,096-token batches on an AVX2 CPU
    (docs/benchmarks/embedding.md). False, with a log line, when fusing fails or disagrees."""
    try:
        import onnx
        import torch
        from onnxruntime.transformers import optimizer

        fused = optimizer.optimize_model(str(source), model_type="bert", num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size)
        onnx.helper.set_model_props(fused.model, {FUSED_KEY: "bert"})
        fused.save_model_to_file(str(target))
        agreement = cosine_to_model(model, OnnxEncoder(model, target, threads=torch.get_num_threads()))
    except Exception as exc:  # the optimizer raises many kinds on graphs it does not know
        log.info("ONNX Runtime's BERT fusions not applied to %s: %s", source.name, exc)
        return False
    if agreement < FUSED_COSINE:
        log.info("ONNX Runtime's fused graph disagrees with the model (cosine %.6f): the unfused one is kept", agreement)
        return False
    return True


# Fusion reorders float32 sums and nothing else: measured 1.000000 on real text.
FUSED_COSINE = 0.99999
FUSED_KEY = "opencite_fused"  # in the graph's metadata: which fusions it carries


def cosine_to_model(model, encoder: "OnnxEncoder", blank: bool = True) -> float:
    """The lowest cosine between `encoder`'s vectors and the model's own on test texts (one long,
    one blank unless `blank` is False): how a graph or a runtime other than torch is checked
    before it is used."""
    import torch

    texts = ["A short one.", "Mixtral 8x7B routes each token to two of its eight experts per layer. " * 4,
             "Chroma stores embeddings and answers nearest-neighbour queries over them."] + ([""] if blank else [])
    with torch.inference_mode():
        reference = model.encode(texts, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
    out = encoder.encode(texts, normalize=True)
    return float((reference * out).sum(axis=1).min())


class OnnxEncoder:
    """Runs a cached graph with ONNX Runtime; tokenisation stays the SentenceTransformer's own."""

    fused = False

    def __init__(self, model, path: Path, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.model = model
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.fused = FUSED_KEY in self.session.get_modelmeta().custom_metadata_map

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, feeds)[0]

    def encode(self, texts: list[str], normalize: bool, prompt: str | None = None) -> np.ndarray:
        """One forward pass over `texts` (the embedder hands over one token-budget batch at a time)."""
        if not texts:
            return np.empty((0, 0), dtype=np.float32)
        features = self.model.preprocess(texts, prompt=prompt or None)
        out = self._run({n: features[n].numpy() for n in self.inputs}).astype(np.float32, copy=False)
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
