"""The `vllm serve` command builder against the flags vLLM documents.

vLLM cannot run here (no GPU), so the built command is parsed with a parser made from vLLM's
documented `vllm serve` arguments: https://docs.vllm.ai/en/latest/cli/serve/ (generated from
vllm/engine/arg_utils.py and vllm/entrypoints/openai/cli_args.py; checked against vLLM v0.30,
the current release on 2026-11-24). An undocumented flag or a value outside a documented
choice list fails the test.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

import pytest

from opencite.serving.commands import redact, vllm_command
from opencite.serving.presets import load_presets
from opencite.settings import Settings

# flag -> documented choices (None: free value). Only the flags opencite may emit are listed.
VLLM_SERVE_VALUE_FLAGS = {
    "--served-model-name": None,
    "--host": None,
    "--port": None,
    "--max-model-len": None,
    "--gpu-memory-utilization": None,
    "--tensor-parallel-size": None,
    "--pipeline-parallel-size": None,
    "--quantization": ["aqlm", "awq", "awq_marlin", "bitsandbytes", "compressed-tensors", "experts_int8",
                       "fp8", "gguf", "gptq", "gptq_marlin", "marlin", "modelopt", "mxfp4", "torchao"],
    "--dtype": ["auto", "half", "float16", "bfloat16", "float", "float32"],
    "--api-key": None,
    "--chat-template": None,
    "--tool-call-parser": ["deepseek_v3", "granite", "granite-20b-fc", "hermes", "internlm", "jamba",
                           "llama3_json", "llama4_json", "mistral", "phi4_mini_json", "pythonic", "qwen3_coder"],
}
VLLM_SERVE_SWITCHES = ["--enable-auto-tool-choice"]


def documented_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vllm serve", exit_on_error=False, add_help=False)
    parser.add_argument("model_tag")
    for flag, choices in VLLM_SERVE_VALUE_FLAGS.items():
        parser.add_argument(flag, choices=choices)
    for flag in VLLM_SERVE_SWITCHES:
        parser.add_argument(flag, action="store_true")
    return parser


def parse(cmd: list[str]) -> argparse.Namespace:
    assert cmd[:2] == ["vllm", "serve"]
    args, unknown = documented_parser().parse_known_args(cmd[2:])
    assert not unknown, f"flags vLLM does not document: {unknown}"
    return args


@pytest.mark.parametrize("preset", sorted(p.name for p in load_presets().values() if "vllm" in p.engines))
def test_every_vllm_preset_builds_a_documented_command(preset):
    args = parse(vllm_command(Settings(serve={"engine": "vllm", "preset": preset})))
    p = load_presets()[preset]
    assert args.model_tag == p.model
    assert args.served_model_name == p.served_model_name
    if p.tensor_parallel_size:
        assert int(args.tensor_parallel_size) == p.tensor_parallel_size
    if p.quantization:
        assert args.quantization == p.quantization


def test_every_setting_reaches_its_flag(tmp_path):
    template = tmp_path / "chatml.jinja"
    template.write_text("{{ messages }}")
    s = Settings(serve={
        "engine": "vllm", "preset": "mixtral-8x7b-instruct", "model": "org/other", "served_model_name": "mx",
        "host": "0.0.0.0", "port": 8123, "max_model_len": 8192, "gpu_memory_utilization": 0.8,
        "tensor_parallel_size": 4, "quantization": "gptq", "dtype": "float16", "api_key": "s3cret",
        "chat_template": str(template), "tool_call_parser": "hermes",
    })
    cmd = vllm_command(s)
    args = parse(cmd)
    assert (args.model_tag, args.served_model_name, args.host, args.port) == ("org/other", "mx", "0.0.0.0", "8123")
    assert (args.max_model_len, args.gpu_memory_utilization, args.tensor_parallel_size) == ("8192", "0.8", "4")
    assert (args.quantization, args.dtype, args.api_key) == ("gptq", "float16", "s3cret")
    assert args.chat_template == str(template)
    assert args.enable_auto_tool_choice and args.tool_call_parser == "hermes"
    assert "s3cret" not in shlex.join(redact(cmd))


def test_tool_choice_only_when_asked():
    args = parse(vllm_command(Settings(serve={"engine": "vllm", "preset": "qwen2.5-7b-instruct"})))
    assert not args.enable_auto_tool_choice and args.tool_call_parser is None


def test_an_unknown_flag_would_be_caught():
    with pytest.raises(AssertionError):
        parse(["vllm", "serve", "m", "--max-total-tokens", "4096"])  # TGI's spelling, not vLLM's


@pytest.mark.slow  # an `opencite serve` subprocess; the fast tier builds, redacts and overrides the same command in-process
def test_dry_run_prints_exact_command_without_vllm_installed(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "OPENCITE_SERVE__API_KEY": "k3y", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "opencite.cli", "serve", "--engine", "vllm", "--preset",
         "nous-hermes-2-mixtral-8x7b-dpo", "--port", "8001", "--dry-run"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    cmd = shlex.split(proc.stdout.strip().splitlines()[-1])
    args = parse(cmd)
    assert args.model_tag == "NousResearch/Nous-Hermes-2-Mixtral-8x7B-DPO" and args.port == "8001"
    assert args.api_key == "**********"


def test_unknown_preset_is_a_clear_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "opencite.cli", "serve", "--preset", "gpt-5", "--dry-run"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "unknown serving preset 'gpt-5'" in proc.stderr and "qwen2.5-0.5b-instruct" in proc.stderr


def test_command_line_options_keep_preset_values_for_untouched_settings():
    from opencite.cli.serve import with_overrides

    s = with_overrides(Settings(serve={"api_key": "k"}), engine="vllm", preset="qwen2.5-7b-instruct", port=9001)
    args = parse(vllm_command(s))
    assert args.gpu_memory_utilization == "0.92"  # the preset's, not the settings default
    assert args.port == "9001" and args.api_key == "k"
    with pytest.raises(ValueError):
        with_overrides(Settings(), engine="tpu")
