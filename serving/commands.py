"""The exact command line each engine runs, built from settings (pure: nothing is started here)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from opencite.serving.presets import Preset, get_preset
from opencite.settings import Settings


class EngineNotInstalledError(RuntimeError):
    pass


def _executable(name: str, install_hint: str) -> str:
    # The venv's own script first, so `opencite serve` works without an activated venv.
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise EngineNotInstalledError(f"`{name}` is not installed; {install_hint}")


def vllm_command(settings: Settings, preset: Preset | None = None, executable: str = "vllm") -> list[str]:
    """`vllm serve` with every setting that differs from vLLM's own default spelled out."""
    serve = settings.serve
    preset = preset or get_preset(serve.preset)
    cmd = [executable, "serve", serve.model or preset.model]
    cmd += ["--served-model-name", serve.served_model_name or preset.served_model_name]
    cmd += ["--host", serve.host, "--port", str(serve.port)]
    max_len = serve.max_model_len or preset.max_model_len
    if max_len:
        cmd += ["--max-model-len", str(max_len)]
    # The setting's default (0.9) equals vLLM's; a preset's own value wins over the default.
    gpu_util = serve.gpu_memory_utilization
    if "gpu_memory_utilization" not in serve.model_fields_set and preset.gpu_memory_utilization:
        gpu_util = preset.gpu_memory_utilization
    cmd += ["--gpu-memory-utilization", str(gpu_util)]
    tp = serve.tensor_parallel_size or preset.tensor_parallel_size
    if tp:
        cmd += ["--tensor-parallel-size", str(tp)]
    quant = serve.quantization or preset.quantization
    if quant:
        cmd += ["--quantization", quant]
    dtype = serve.dtype or preset.dtype
    if dtype:
        cmd += ["--dtype", dtype]
    if serve.api_key is not None:
        cmd += ["--api-key", serve.api_key.get_secret_value()]
    if serve.chat_template is not None:
        cmd += ["--chat-template", str(serve.chat_template)]
    if serve.tool_call_parser:
        # Tool calls only when asked: the parser is useless without auto tool choice.
        cmd += ["--enable-auto-tool-choice", "--tool-call-parser", serve.tool_call_parser]
    return cmd


def cpu_command(settings: Settings, preset: Preset | None = None, executable: str = "transformers") -> list[str]:
    """`transformers serve` pinned to one model (the positional FORCE_MODEL), on the CPU."""
    serve = settings.serve
    preset = preset or get_preset(serve.preset)
    cmd = [executable, "serve", serve.model or preset.model, "--host", serve.host, "--port", str(serve.port)]
    cmd += ["--device", "cpu", "--dtype", serve.dtype or "auto", "--log-level", "info"]
    if serve.quantization:
        cmd += ["--quantization", serve.quantization]
    return cmd




def engine_command(settings: Settings, resolve: bool = True) -> list[str]:
    if settings.serve.engine == "auto":
        from opencite.serving.engine_choice import with_engine

        settings, _ = with_engine(settings)
    engine = settings.serve.engine
    if engine == "vllm":
        exe = _executable("vllm", "install it on a GPU machine: pip install 'opencite[gpu]'") if resolve else "vllm"
        return vllm_command(settings, executable=exe)
    if engine == "cpu":
        exe = (
            _executable("transformers", "install the CPU engine: pip install 'opencite[cpu]'")
            if resolve
            else "transformers"
        )
        return cpu_command(settings, executable=exe)
    if engine == "llamacpp":
        from opencite.serving import llamacpp

        if resolve and importlib.util.find_spec("llama_cpp") is None:
            raise EngineNotInstalledError(f"`llama_cpp` is not installed; {llamacpp.INSTALL_HINT}")
        # Resolving here fetches the preset's GGUF into the Hugging Face cache (once).
        return llamacpp.engine_command(settings, resolve=resolve)
    raise ValueError(f"engine {engine!r} does not run a local command")


def redact(cmd: list[str]) -> list[str]:
    """The command for printing: the API key value hidden."""
    out = list(cmd)
    for i, part in enumerate(out[:-1]):
        if part in ("--api-key", "--api_key"):  # vLLM's spelling, llama-cpp-python's
            out[i + 1] = "**********"
    return out
