"""The local engine `--engine auto` (the default) runs: llama.cpp where llama-cpp-python is
installed and loads on this CPU, else `transformers serve`.

llama.cpp is what CPU users already run (Ollama, LM Studio, llama-server): quantised GGUF weights
decode several times faster than torch float32 (docs/benchmarks/cpu-engines.md). It is an extra
that compiles, so it may be missing, or built for another CPU (a `-march=native` build dies of
SIGILL on a CPU without the builder's instructions; serving/llamacpp_build.py names the build
options for the CPU at hand): then one line says why and the CPU engine takes over. A model given
as a Hugging Face folder or id (not a .gguf) always means `cpu`.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from functools import lru_cache

from opencite.serving.llamacpp_build import missing_instructions
from opencite.settings import Settings

INSTALL_HINT = ("CMAKE_ARGS=\"$(python -m opencite.serving.llamacpp_build)\" pip install --force-reinstall "
                "--no-cache-dir 'llama-cpp-python[server]' (a build for this CPU)")


@lru_cache(maxsize=1)
def llamacpp_loads() -> tuple[bool, str]:
    """(loads, why not). The library is loaded in a child process: a build for another CPU kills
    the process that loads it."""
    if importlib.util.find_spec("llama_cpp") is None:
        return False, f"llama-cpp-python is not installed ({INSTALL_HINT})"
    try:
        done = subprocess.run([sys.executable, "-c", "import llama_cpp; llama_cpp.llama_backend_init(); "
                               "print(llama_cpp.llama_print_system_info().decode())"],
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return False, "loading llama-cpp-python took over 120 s"
    if done.returncode == 0:
        # A build for another CPU often loads and dies later, on the first kernel that uses what
        # the CPU lacks: compare what it was built with against what the CPU has.
        missing = missing_instructions(done.stdout)
        if missing:
            return False, (f"this llama-cpp-python build uses {', '.join(missing)}, which this CPU lacks; "
                           f"reinstall: {INSTALL_HINT}")
        return True, ""
    if done.returncode == -signal.SIGILL:
        return False, f"this llama-cpp-python build uses CPU instructions this machine lacks; reinstall: {INSTALL_HINT}"
    last = (done.stderr.strip().splitlines() or ["no message"])[-1]
    return False, f"llama-cpp-python does not load ({last[:300]})"


def choose_engine(settings: Settings) -> tuple[str, str]:
    """(the engine to run, why llama.cpp was passed over: "" when it was not)."""
    engine = settings.serve.engine
    if engine != "auto":
        return engine, ""
    model = settings.serve.model
    if model and not model.endswith(".gguf"):
        return "cpu", ""  # a Hugging Face model: what `transformers serve` runs
    loads, why = llamacpp_loads()
    return ("llamacpp", "") if loads else ("cpu", why)


def with_engine(settings: Settings) -> tuple[Settings, str]:
    """The settings with `serve.engine` chosen, and the reason llama.cpp was passed over, if it was."""
    engine, why = choose_engine(settings)
    if engine == settings.serve.engine:
        return settings, why
    serve = settings.serve.model_copy(update={"engine": engine})
    return settings.model_copy(update={"serve": serve}), why
