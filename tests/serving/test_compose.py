"""docker-compose.yml validated for every profile with Debian's `docker-compose config`
(installed by .ci/run); skipped only outside CI when the binary is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.serving.test_vllm_command import parse

ROOT = Path(__file__).resolve().parents[2]
PROFILES = {"gpu": "vllm", "cpu": "cpu-llm", "tgi": "tgi"}
EMPTY_ENV = ROOT / "tests" / "fixtures" / "empty.env"

if shutil.which("docker-compose") is None:
    if os.environ.get("CI"):
        pytest.fail("docker-compose is required in CI (apt-get install -y docker-compose)", pytrace=False)
    pytest.skip("docker-compose is not installed (apt-get install -y docker-compose)", allow_module_level=True)


def config(*profiles: str, committed_env: bool = False) -> dict:
    """The resolved compose file. Without `committed_env`, the project's .env is replaced by an empty
    one: the compose file's own defaults must make it valid, and the .env's COMPOSE_PROFILES would
    add its profile to the ones asked for."""
    args = ["docker-compose", "-f", str(ROOT / "docker-compose.yml")]
    if not committed_env:
        args += ["--env-file", str(EMPTY_ENV)]
    for p in profiles:
        args += ["--profile", p]
    env = {k: v for k, v in os.environ.items() if k not in ("COMPOSE_PROFILES", "COMPOSE_FILE")}
    proc = subprocess.run(args + ["config"], cwd=ROOT / "tests", env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def active(cfg: dict, profiles: set[str]) -> dict:
    return {n: s for n, s in cfg["services"].items() if not s.get("profiles") or set(s["profiles"]) & profiles}


@pytest.mark.parametrize("profile", [*PROFILES, "ingest", "sync"])
def test_every_profile_is_valid_and_dependencies_are_healthy_services(profile):
    services = active(config(profile), {profile})
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on {dep}, which profile {profile} does not start"
            assert cond["condition"] == "service_healthy"
            assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
    assert {"chroma", "api", "ui"} <= set(services)
    assert ("ingest" in services) == (profile == "ingest")
    assert ("sync" in services) == (profile == "sync")


def test_sync_service_runs_on_a_schedule_and_stops_gracefully():
    sync = config("sync")["services"]["sync"]
    assert sync["command"] == ["sync", "--every", "1h"]
    assert sync["restart"] == "unless-stopped" and sync["stop_grace_period"] in ("2m", "2m0s", 120)
    assert sync["environment"]["OPENCITE_DATA_DIR"] == "/data"
    assert sync["depends_on"]["chroma"]["condition"] == "service_healthy"


@pytest.mark.parametrize("profile,engine", PROFILES.items())
def test_each_llm_profile_starts_exactly_one_engine_named_llm(profile, engine):
    services = active(config(profile), {profile})
    llms = [n for n, s in services.items() if "llm" in (s.get("networks", {}).get("default") or {}).get("aliases", [])]
    assert llms == [engine]
    assert "healthcheck" in services[engine]
    assert services["api"]["environment"]["OPENCITE_LLM__BASE_URL"] == "http://llm:8000/v1"


def test_vllm_service_uses_official_image_gpu_hf_cache_token_and_documented_flags():
    vllm = config("gpu")["services"]["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai")
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    targets = [v["target"] if isinstance(v, dict) else v.split(":")[1] for v in vllm["volumes"]]
    assert "/root/.cache/huggingface" in targets
    assert "HF_TOKEN" in vllm["environment"]
    # The image's entrypoint takes the model as --model; the rest must be documented `vllm serve` flags.
    assert vllm["command"][0] == "--model"
    parse(["vllm", "serve", *[str(a) for a in vllm["command"][1:]]])


def test_tgi_profile_uses_tgi_messages_api_image_and_chroma_official_image():
    cfg = config("tgi")
    assert cfg["services"]["tgi"]["image"].startswith("ghcr.io/huggingface/text-generation-inference")
    assert cfg["services"]["chroma"]["image"].startswith("chromadb/chroma")
    assert cfg["services"]["chroma"]["volumes"]


def test_no_profile_starts_a_working_cpu_stack_from_the_committed_env():
    """`docker compose up` with nothing set: the committed .env picks the CPU engine and names its model."""
    import tomllib

    cfg = config(committed_env=True)
    services = active(cfg, set(dotenv()["COMPOSE_PROFILES"].split(",")))
    llms = [n for n, s in services.items() if "llm" in (s.get("networks", {}).get("default") or {}).get("aliases", [])]
    assert llms == ["cpu-llm"]
    assert {"chroma", "api", "ui"} <= set(services) and "ingest" not in services
    command = services["cpu-llm"]["command"]
    preset = tomllib.loads((ROOT / "serving" / "presets.toml").read_text())[command[command.index("--preset") + 1]]
    env = services["api"]["environment"]
    assert env["OPENCITE_LLM__MODEL"] == preset["model"]  # what transformers serve calls it
    assert int(env["OPENCITE_LLM__CONTEXT_WINDOW"]) <= preset["context_window"]


def dotenv() -> dict:
    lines = (ROOT / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
