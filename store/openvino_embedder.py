"""OpenVINO inference of a sentence-transformers model's plain float32 ONNX export, at float32 or
bf16: what runs ingest-sized batches on CPUs with AVX512 (`OPENCITE_EMBEDDING__OPENVINO=auto`).

On a 2-core Sapphire Rapids Xeon, MiniLM over the blog's chunks in 4,096-token batches: float32
1.21x torch, where ONNX Runtime's fused graph runs at 0.97x (OpenVINO fuses the attention and the
element-wise ops between the matmuls into a few kernels and plans its buffers once); bf16 1.4x
torch's autocast, at cosine 0.99997 to float32 (autocast: 0.99995). On an AVX2-only Zen 3
OpenVINO's float32 measured 1.05x torch and ONNX Runtime's fused graph 1.18x, so ONNX Runtime
keeps those CPUs. Few-sentence batches stay where they were (1x24 tokens: ONNX Runtime 4.7 ms,
OpenVINO 9.1 ms). docs/benchmarks/embedding.md has the runs.

The graph is the one ONNX Runtime reads before its fusions (`onnx_model_path(..., "float32-plain")`:
OpenVINO reads no ONNX Runtime contrib ops); OpenVINO compiles it for this CPU when the embedder
first needs it (about a second), with dynamic batch and length."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from opencite.store.onnx_embedder import OnnxEncoder


class OpenVinoEncoder(OnnxEncoder):
    """OnnxEncoder's tokenisation and pooling, OpenVINO's CPU plugin for the forward pass."""

    def __init__(self, model, path: Path, threads: int, hint: str = "f32"):
        import openvino as ov

        self.model = model
        # Named always: on CPUs with AMX or AVX512-BF16 OpenVINO runs bf16 unless told f32.
        self.compiled = ov.Core().compile_model(str(path), "CPU", {
            "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
        self.inputs = [port.get_any_name() for port in self.compiled.inputs]
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request; the readers' threads may share the embedder

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        with self._lock:
            return self._request.infer(feeds)[0].copy()  # the request's buffer is reused by the next call
