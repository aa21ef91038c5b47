"""The CMAKE_ARGS that build llama.cpp (llama-cpp-python) for the CPU it is built on.

llama-cpp-python compiles llama.cpp with `-march=native` by default (GGML_NATIVE). That build
uses every instruction of the builder's CPU, so it dies of SIGILL when the venv or image moves to
an older CPU, and on AMX CPUs it can crash in llama.cpp's AMX kernels. A portable AVX2 build runs everywhere but leaves AVX512 idle. This names each ggml
instruction set explicitly from the CPU's flags: AVX512 (with VNNI and BF16) where the CPU has it,
AVX2 where not, never AMX (measured in docs/benchmarks/cpu-engines.md).

    CMAKE_ARGS="$(python -m opencite.serving.llamacpp_build)" pip install 'opencite[llamacpp]'
"""

from __future__ import annotations

import platform
import re

from opencite.cpu import cpu_flags

# ggml's option: the /proc/cpuinfo flags it needs (all of them).
X86_OPTIONS: dict[str, frozenset[str]] = {
    "GGML_SSE42": frozenset({"sse4_2"}),
    "GGML_AVX": frozenset({"avx"}),
    "GGML_AVX2": frozenset({"avx2"}),
    "GGML_BMI2": frozenset({"bmi2"}),
    "GGML_FMA": frozenset({"fma"}),
    "GGML_F16C": frozenset({"f16c"}),
    "GGML_AVX_VNNI": frozenset({"avx_vnni"}),
    # ggml's AVX512 is -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw
    "GGML_AVX512": frozenset({"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"}),
    "GGML_AVX512_VBMI": frozenset({"avx512f", "avx512vbmi"}),
    "GGML_AVX512_VNNI": frozenset({"avx512f", "avx512_vnni"}),
    "GGML_AVX512_BF16": frozenset({"avx512f", "avx512_bf16"}),
}
# Off whatever the CPU says: llama.cpp's AMX kernels crash on some machines (SIGSEGV at ldtilecfg,
# seen on a Sapphire Rapids VM; llama.cpp issue #20824, unfixed: the tile config is kept on the
# stack, and tile permission is requested for the main thread only, per its pull request #26954).
ALWAYS_OFF = ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")


def cmake_args(flags: set[str] | None = None, machine: str | None = None) -> str:
    """CMAKE_ARGS for this CPU. Every option is given ON or OFF: with GGML_NATIVE off, ggml turns
    AVX, AVX2, BMI2, FMA and F16C on by default, which an older CPU lacks."""
    machine = (machine or platform.machine()).lower()
    if machine not in {"x86_64", "amd64", "i686", "x86"}:
        return "-DGGML_NATIVE=OFF"  # ARM and others: ggml's own portable defaults
    flags = cpu_flags() if flags is None else flags
    args = ["-DGGML_NATIVE=OFF"]
    args += [f"-D{option}={'ON' if needs <= flags else 'OFF'}" for option, needs in X86_OPTIONS.items()]
    args += [f"-D{option}=OFF" for option in ALWAYS_OFF]
    return " ".join(args)


def missing_instructions(system_info: str, flags: set[str] | None = None) -> list[str]:
    """The instruction sets a llama.cpp build uses (named in `llama_print_system_info()`, such as
    "AVX2 = 1 | AVX512 = 1") that this CPU lacks."""
    flags = cpu_flags() if flags is None else flags
    if not flags:
        return []  # flags unreadable (not Linux): nothing to compare
    # Only the features the build turned on: some llama.cpp versions list the others as "= 0".
    compiled = set(re.findall(r"\b([A-Z][A-Z0-9_]+)\s*=\s*1\b", system_info))
    return [option.removeprefix("GGML_") for option, needs in X86_OPTIONS.items()
            if option.removeprefix("GGML_") in compiled and not needs <= flags]


if __name__ == "__main__":
    print(cmake_args())
