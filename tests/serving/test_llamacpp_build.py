"""The CMAKE_ARGS named for a CPU from its flags, and what a build uses that a CPU lacks."""

from __future__ import annotations

import subprocess
import sys

from opencite.serving.llamacpp_build import cmake_args, missing_instructions

AVX2_EPYC = {"sse4_2", "avx", "avx2", "bmi2", "fma", "f16c"}
ZEN4 = AVX2_EPYC | {"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx512vbmi", "avx512_vnni",
                    "avx512_bf16"}
SAPPHIRE_RAPIDS = ZEN4 | {"avx_vnni", "amx_tile", "amx_int8", "amx_bf16"}


def options(args: str) -> dict[str, str]:
    return dict(arg.removeprefix("-D").split("=") for arg in args.split())


def test_an_avx2_cpu_gets_avx2_and_every_avx512_option_off():
    got = options(cmake_args(AVX2_EPYC, "x86_64"))
    assert got["GGML_NATIVE"] == "OFF"
    assert all(got[o] == "ON" for o in ("GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C", "GGML_BMI2"))
    assert all(got[o] == "OFF" for o in got if o.startswith(("GGML_AVX512", "GGML_AMX")) or o == "GGML_AVX_VNNI")


def test_an_avx512_cpu_gets_its_extensions_and_never_amx():
    got = options(cmake_args(SAPPHIRE_RAPIDS, "x86_64"))
    assert all(got[o] == "ON" for o in ("GGML_AVX512", "GGML_AVX512_VNNI", "GGML_AVX512_BF16", "GGML_AVX_VNNI"))
    assert got["GGML_AMX_TILE"] == got["GGML_AMX_INT8"] == got["GGML_AMX_BF16"] == "OFF"


def test_avx512_needs_all_five_of_ggmls_subsets():
    assert options(cmake_args(AVX2_EPYC | {"avx512f"}, "x86_64"))["GGML_AVX512"] == "OFF"


def test_an_old_cpu_is_not_given_what_ggml_turns_on_by_default():
    got = options(cmake_args({"sse4_2", "avx"}, "x86_64"))
    assert got["GGML_AVX"] == "ON" and got["GGML_AVX2"] == got["GGML_FMA"] == got["GGML_F16C"] == "OFF"


def test_other_architectures_keep_ggmls_portable_defaults():
    assert cmake_args(set(), "aarch64") == "-DGGML_NATIVE=OFF"


def test_missing_instructions_reads_llamas_system_info():
    info = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 1 | AVX512_VNNI = 1 |"
    assert missing_instructions(info, ZEN4) == []
    assert missing_instructions(info, AVX2_EPYC) == ["AVX512", "AVX512_VNNI"]
    assert missing_instructions(info, set()) == []  # flags unreadable: nothing to compare
    # A build that lists what it left out ("= 0") does not use it.
    assert missing_instructions("CPU : AVX2 = 1 | AVX512 = 0 | AVX512_BF16 = 0 | FMA = 1 |", AVX2_EPYC) == []


def test_the_module_prints_the_args_for_this_machine():
    done = subprocess.run([sys.executable, "-m", "opencite.serving.llamacpp_build"], capture_output=True,
                          text=True, check=True)
    assert done.stdout.startswith("-DGGML_NATIVE=OFF")
    assert done.stdout.strip() == cmake_args()
