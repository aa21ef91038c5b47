"""Which embedder runs here: the model, device and precision the settings' `auto` values mean on
this machine, read from the CPU flags. Apart from store/embeddings.py, which loads
sentence-transformers and LangChain (seconds): naming the choice must not wait for them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from opencite.cpu import CPUINFO, cpu_flags
from opencite.settings import EmbeddingSettings

BGE_QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "


class EmbeddingModelError(RuntimeError):
    pass


@dataclass(frozen=True)
class EmbedderChoice:
    """What the embedding settings' `auto` values mean on this machine."""

    model: str
    device: str
    precision: str  # float32 | bfloat16 | onnx-int8
    query_instruction: str


BF16_FLAGS = {"amx_bf16", "avx512_bf16"}
VNNI_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8"}


def cpu_has_native_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """AMX or AVX512-BF16 units. Without them bf16 is emulated and slower than float32."""
    return bool(cpu_flags(cpuinfo) & BF16_FLAGS)


def cpu_has_vnni(cpuinfo: Path = CPUINFO) -> bool:
    """int8 dot-product units (AVX512-VNNI, AVX-VNNI, AMX-INT8): ONNX Runtime's fast int8 kernels."""
    return bool(cpu_flags(cpuinfo) & VNNI_FLAGS)


def cpu_has_avx512(cpuinfo: Path = CPUINFO) -> bool:
    """AVX512 (F): where OpenVINO runs ingest-sized batches faster than torch and ONNX Runtime."""
    return "avx512f" in cpu_flags(cpuinfo)


def auto_precision(device: str) -> str:
    """What `precision=auto` runs: the fastest path that keeps agreement, decided by CPU flags
    (measured in docs/benchmarks/embedding.md, MiniLM on a Zen 4 EPYC with AVX512-BF16 and VNNI:
    bf16 autocast ~2.6x float32 at cosine >= 0.999, int8 ONNX ~1.6x float32, SciFact nDCG@10
    within 0.5 of float32; on AVX2-only EPYCs int8 measured 0.9-1.17x float32 at cosine 0.975 min:
    not worth the agreement it gives up).
    - native bf16 units: bfloat16 (the fastest measured, the closest to float32);
    - VNNI without them: onnx-int8;
    - neither, or not a CPU: float32."""
    if device != "cpu":
        return "float32"
    if cpu_has_native_bf16():
        return "bfloat16"
    if cpu_has_vnni():
        return "onnx-int8"
    return "float32"


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_embedder(cfg: EmbeddingSettings) -> EmbedderChoice:
    device = resolve_device(cfg.device)
    model = cfg.model or (cfg.cpu_model if device == "cpu" else cfg.gpu_model)
    precision = cfg.precision
    if precision == "auto":
        precision = auto_precision(device)
    if precision == "onnx-int8" and device != "cpu":
        raise EmbeddingModelError(
            f"OPENCITE_EMBEDDING__PRECISION=onnx-int8 runs on the CPU only, but the device is {device!r}. "
            "Fix: set OPENCITE_EMBEDDING__DEVICE=cpu, or another precision (float32, bfloat16, auto)."
        )
    instruction = cfg.query_instruction
    if instruction is None:
        name = model.lower()
        instruction = BGE_QUERY_INSTRUCTION if "bge-" in name and "-en" in name else ""
    return EmbedderChoice(model, device, precision, instruction)
