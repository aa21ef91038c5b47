"""ONNX Runtime inference for a sentence-transformers model: the int8 graph (precision
`onnx-int8`; what `auto` picks on a CPU with VNNI but no bf16 units) and the float32 graph that
runs float32's small batches (the chat's queries, the citation checker's sentences), where ONNX
Runtime's fused graph is 2-5x faster than torch on CPU for the same vectors
(docs/benchmarks/embedding.md).

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
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

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
    """The cached ONNX file of `model` (`precision` "int8" or "float32"), exported on first use."""
    from filelock import FileLock

    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name.rstrip("/").split("/")[-1])[:60] or "model"
    folder = cache_dir / f"{slug}-{model_key(model)}"
    path = folder / f"model-{precision}.onnx"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".export.lock")):
        if not path.exists():
            export_onnx(model, path, quantize=precision == "int8")
    return path


def _example_features(model) -> dict[str, Any]:
    # Two texts of different lengths: the traced graph must take the padded (masked) path.
    return model.preprocess(["an example", "a longer example sentence, padded against the first one"])


def export_onnx(model, path: Path, quantize: bool) -> None:
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

    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        fp32, int8 = Path(tmp) / "model.onnx", Path(tmp) / "int8.onnx"
        with torch.no_grad():
            torch.onnx.export(
                SentenceEmbedding(model).eval(), tuple(features[n] for n in names), str(fp32),
                input_names=names, output_names=["sentence_embedding"],
                dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "sentence_embedding": {0: "batch"}},
                opset_version=17, dynamo=False,  # the dynamo exporter needs onnxscript
            )
        if not quantize:
            os.replace(fp32, path)
            return
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # Weights only (activations are quantised per batch at run time), per output channel and
        # unsigned: signed int8 weights saturate AVX2's u8*s8 multiply-add and cost accuracy.
        quantize_dynamic(fp32, int8, weight_type=QuantType.QUInt8, per_channel=True, op_types_to_quantize=["MatMul"],
                         extra_options={"DefaultTensorType": 1})  # 1 = float: types the exporter left unset
        os.replace(int8, path)


class OnnxEncoder:
    """Runs a cached graph; tokenisation stays the SentenceTransformer's own."""

    def __init__(self, model, path: Path, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.model = model
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def encode(self, texts: list[str], normalize: bool, prompt: str | None = None) -> np.ndarray:
        """One forward pass over `texts` (the embedder hands over one token-budget batch at a time)."""
        if not texts:
            return np.empty((0, 0), dtype=np.float32)
        features = self.model.preprocess(texts, prompt=prompt or None)
        out = self.session.run(None, {n: features[n].numpy() for n in self.inputs})[0].astype(np.float32, copy=False)
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
