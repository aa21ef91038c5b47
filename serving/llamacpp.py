"""`--engine llamacpp`: llama-cpp-python's OpenAI-compatible server on one GGUF file, for CPU users.

The GGUF is a local file (`serve.model` ending in .gguf) or a preset's / the settings' Hub repo and
file, fetched into the Hugging Face cache before the server starts: a multi-GB download inside the
detached server would only show as a long silent wait for /v1/models.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opencite.serving.endpoint import served_context_window, served_model
from opencite.serving.presets import Preset, get_preset
from opencite.settings import Settings

INSTALL_HINT = "install the llama.cpp engine: pip install 'opencite[llamacpp]'"
# Large GGUFs are published in shards (Qwen2.5-7B q4_k_m: "...-00001-of-00002.gguf"); llama.cpp
# opens the first and finds the rest beside it, so every shard must land in the same folder.
SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")


class GGUFModelError(ValueError):
    pass


@dataclass(frozen=True)
class GGUFSource:
    local: Path | None = None
    repo: str | None = None
    file: str | None = None

    def __str__(self) -> str:
        return str(self.local) if self.local else f"{self.repo}/{self.file}"


def gguf_source(settings: Settings, preset: Preset | None = None) -> GGUFSource:
    serve = settings.serve
    preset = preset or get_preset(serve.preset)
    if serve.model and serve.model.endswith(".gguf"):
        return GGUFSource(local=Path(serve.model).expanduser())
    repo = serve.model or preset.gguf_repo
    # The preset's file name only means something in the preset's own repo.
    file = serve.gguf_file or (preset.gguf_file if repo == preset.gguf_repo else None)
    if not repo or not file:
        raise GGUFModelError(
            f"the llamacpp engine needs a GGUF file: preset {preset.name!r} has none "
            f"(presets with one: `opencite presets`, engine llamacpp), so give a local .gguf path "
            "as the model, or a Hub repo as the model plus serve.gguf_file"
        )
    return GGUFSource(repo=repo, file=file)


def shard_names(file: str) -> list[str]:
    m = SHARD.search(file)
    if not m:
        return [file]
    stem, total = file[: m.start()], int(m.group(2))
    return [f"{stem}-{i:05d}-of-{total:05d}.gguf" for i in range(1, total + 1)]


def fetch_gguf(source: GGUFSource, download: Callable[..., str] | None = None) -> Path:
    """The local path of the GGUF (its first shard), downloading it into the HF cache if needed."""
    if source.local is not None:
        if not source.local.is_file():
            raise GGUFModelError(f"GGUF file {source.local} does not exist")
        return source.local
    if download is None:
        from huggingface_hub import hf_hub_download as download
    paths = [download(repo_id=source.repo, filename=name) for name in shard_names(source.file)]
    return Path(paths[0])


def cached_gguf(source: GGUFSource) -> Path | None:
    """Where the GGUF already is, without downloading (for --dry-run)."""
    if source.local is not None:
        return source.local
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(source.repo, source.file)
    return Path(found) if isinstance(found, str) else None


def _cpu_quota() -> int | None:
    # A container's --cpus is a cgroup quota, invisible to the affinity mask.
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else max(1, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        return None


def physical_cores() -> int:
    """Cores (not SMT threads) this process may run on.

    llama.cpp's threads meet at a barrier after every operation, so the step is as slow as its
    slowest thread; two threads on SMT siblings share one core's FMA units and caches, and the
    sibling that loses that contest stalls all the others. One thread per physical core is what
    llama.cpp itself recommends, and on shared machines it leaves the siblings to other work."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores: set[tuple[str, str]] = set()
    for cpu in cpus or ():
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topo / "physical_package_id").read_text().strip(), (topo / "core_id").read_text().strip()))
        except OSError:
            cores = set()
            break
    count = len(cores)
    if not count:
        try:
            import psutil

            count = psutil.cpu_count(logical=False) or 0
        except ImportError:
            count = 0
    count = count or len(cpus or ()) or os.cpu_count() or 1
    quota = _cpu_quota()
    return min(count, quota) if quota else count


def llamacpp_command(
    settings: Settings, preset: Preset | None = None, model_path: str | Path | None = None, python: str | None = None
) -> list[str]:
    """`python -m llama_cpp.server` for the GGUF at `model_path` (see `fetch_gguf`)."""
    serve = settings.serve
    preset = preset or get_preset(serve.preset)
    if model_path is None:
        model_path = gguf_source(settings, preset).local
        if model_path is None:
            raise GGUFModelError("a Hub GGUF must be fetched first: pass model_path=fetch_gguf(...)")
    threads = serve.threads or physical_cores()
    cmd = [python or sys.executable, "-m", "llama_cpp.server", "--model", str(model_path)]
    cmd += ["--model_alias", served_model(settings)]
    cmd += ["--host", serve.host, "--port", str(serve.port)]
    # The whole window is allocated up front as KV cache; it is what the app budgets prompts for.
    cmd += ["--n_ctx", str(served_context_window(settings))]
    # Prefill (batch) is compute-bound like decode on a CPU: the same thread count for both.
    cmd += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    cmd += ["--flash_attn", "True"]
    # Logits for every prompt token cost n_vocab floats per token and nothing here reads them.
    cmd += ["--logits_all", "False"]
    # RAG prompts share the system prompt; the RAM cache keeps evaluated prefixes across requests.
    cmd += ["--cache", "True", "--cache_type", "ram"]
    if serve.api_key is not None:
        cmd += ["--api_key", serve.api_key.get_secret_value()]
    # No --chat_format: the GGUF's own tokenizer.chat_template is then used.
    return cmd


def engine_command(settings: Settings, resolve: bool = True, download: Callable[..., str] | None = None) -> list[str]:
    """The command `opencite serve --engine llamacpp` runs; with `resolve`, the GGUF is fetched."""
    source = gguf_source(settings)
    if not resolve:
        path = cached_gguf(source)
        return llamacpp_command(settings, model_path=path or f"<downloaded from {source}>")
    return llamacpp_command(settings, model_path=fetch_gguf(source, download))
