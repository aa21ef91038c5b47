"""docker-compose.yml validated for every profile with Debian's `docker-compose config`
(installed by .ci/run); skipped only outside CI when the binary is missing."""

from __future__ import annotations

import copy
import functools
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
    env = {k: v for k, v in os.environ.items() if k not in ("COMPOSE_PROFILES", "COMPOSE_FILE", "PYTEST_CURRENT_TEST")}
    return copy.deepcopy(resolved(profiles, committed_env, tuple(sorted(env.items()))))


@functools.lru_cache
def resolved(profiles: tuple[str, ...], committed_env: bool, env: tuple[tuple[str, str], ...]) -> dict:
    """One `docker-compose config` run (about a second each) per distinct profiles, .env and environment."""
    args = ["docker-compose", "-f", str(ROOT / "docker-compose.yml")]
    if not committed_env:
        args += ["--env-file", str(EMPTY_ENV)]
    for p in profiles:
        args += ["--profile", p]
    proc = subprocess.run(args + ["config"], cwd=ROOT / "tests", env=dict(env), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def mounts(service: dict) -> dict[str, str]:
    """target -> source of a service's volumes (docker-compose 1.x prints `source:target:mode`)."""
    pairs = [(v["target"], v.get("source")) if isinstance(v, dict) else tuple(reversed(v.split(":")[:2]))
             for v in service.get("volumes", [])]
    return dict(pairs)


def active(cfg: dict, profiles: set[str]) -> dict:
    return {n: s for n, s in cfg["services"].items() if not s.get("profiles") or set(s["profiles"]) & profiles}


@pytest.mark.parametrize("profile", [*PROFILES, "ingest"])
def test_every_profile_is_valid_and_dependencies_are_healthy_services(profile):
    services = active(config(profile), {profile})
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on {dep}, which profile {profile} does not start"
            assert cond["condition"] == "service_healthy"
            assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
    assert {"chroma", "api", "ui", "sync"} <= set(services)
    assert ("ingest" in services) == (profile == "ingest")


def test_sync_service_keeps_every_kb_in_step_sharing_the_index_and_stops_gracefully():
    services = config()["services"]
    sync = services["sync"]
    assert not sync.get("profiles")  # every profile runs it
    assert sync["command"] == ["sync", "--all"]
    assert sync["environment"]["OPENCITE_SYNC__EVERY"] == "1h"  # KBs without their own schedule
    assert sync["restart"] == "unless-stopped" and sync["stop_grace_period"] in ("2m", "2m0s", 120)
    assert sync["depends_on"]["chroma"]["condition"] == "service_healthy"
    # One index for sync, api and ui: the Chroma server (embedded Chroma is one process) and one data volume.
    for name in ("sync", "api", "ui"):
        env = services[name]["environment"]
        assert env["OPENCITE_CHROMA__URL"] == "http://chroma:8000" and env["OPENCITE_DATA_DIR"] == "/data"
        assert mounts(services[name])["/data"] == "opencite-data"


@pytest.mark.slow  # two more `docker-compose config` runs for one interpolation; the fast tier checks the default (test_sync_service_keeps_...)
def test_sync_every_can_be_changed_or_turned_off_for_kbs_without_a_schedule(monkeypatch):
    monkeypatch.setenv("SYNC_EVERY", "30m")
    assert config()["services"]["sync"]["environment"]["OPENCITE_SYNC__EVERY"] == "30m"
    monkeypatch.setenv("SYNC_EVERY", "")
    assert config()["services"]["sync"]["environment"]["OPENCITE_SYNC__EVERY"] == ""


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
    assert "/root/.cache/huggingface" in mounts(vllm)
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
    assert {"chroma", "api", "ui", "sync"} <= set(services) and "ingest" not in services
    assert services["sync"]["command"] == ["sync", "--all"]
    command = services["cpu-llm"]["command"]
    preset = tomllib.loads((ROOT / "serving" / "presets.toml").read_text())[command[command.index("--preset") + 1]]
    env = services["api"]["environment"]
    assert env["OPENCITE_LLM__MODEL"] == preset["model"]  # what transformers serve calls it
    assert int(env["OPENCITE_LLM__CONTEXT_WINDOW"]) <= preset["context_window"]


def dotenv() -> dict:
    lines = (ROOT / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
