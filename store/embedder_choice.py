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


def cpu_has_native_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """AMX or AVX512-BF16 units. Without them bf16 is emulated and slower than float32."""
    return bool(cpu_flags(cpuinfo) & BF16_FLAGS)


def cpu_has_avx512(cpuinfo: Path = CPUINFO) -> bool:
    """AVX512 (F): where OpenVINO runs ingest-sized batches faster than torch and ONNX Runtime."""
    return "avx512f" in cpu_flags(cpuinfo)


def auto_precision(device: str) -> str:
    """What `precision=auto` runs: the fastest path that keeps agreement, decided by CPU flags
    (docs/benchmarks/embedding.md, "What `auto` picks"):
    - native bf16 units: bfloat16 (2.5-3.3x torch float32 on the CPUs with them, cosine >= 0.999);
    - anything else: float32 (through OpenVINO or ONNX Runtime's fused graph, by CPU). int8 is
      never picked: on the VNNI CPUs without bf16 units it would serve, it measured 0.80x float32
      (an Ice Lake Xeon) at cosine 0.974 min, and 0.77x on a Sapphire Rapids Xeon; it stays opt-in
      (`onnx-int8`)."""
    if device != "cpu":
        return "float32"
    if cpu_has_native_bf16():
        return "bfloat16"
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
