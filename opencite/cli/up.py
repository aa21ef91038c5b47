"""`opencite up`: the main job in one command.

It ingests the default sources when the index is empty, starts the CPU engine
(`opencite serve --engine cpu`) unless an LLM URL is configured, starts the API (`opencite
api`, so `opencite ask` answers through a warm process), then runs the web chat. It
composes the other commands as child processes, so it lives with the CLI, on top of every room.
Each part that needs a download says which model failed and how to use local files instead.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console

from opencite.app.launch import run_ui, stop
from opencite.serving.endpoint import resolve_llm
from opencite.settings import Settings

console = Console(stderr=True, soft_wrap=True)  # commands stay copy-pasteable


def _opencite(*args: str) -> list[str]:
    return [sys.executable, "-m", "opencite.cli", *args]


def check_embedding_model(settings: Settings) -> str | None:
    """None when the embedding model is a local folder or downloadable, else the fix."""
    from opencite.store.embedder_choice import resolve_embedder  # loads torch; only `up` needs it

    model = resolve_embedder(settings.embedding).model
    if Path(model).expanduser().exists():
        return None
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(repo_id=model, cache_dir=settings.embedding.cache_folder)
        return None
    except Exception as exc:
        return (f"The embedding model {model!r} could not be downloaded ({type(exc).__name__}). "
                "Copy it to this machine and point at the folder: "
                "OPENCITE_EMBEDDING__MODEL=/path/to/model")


def index_count(settings: Settings) -> int:
    """Chunks in the collection, without loading the embedder (0 when it does not exist)."""
    from opencite.store.index import find_collection, chroma_client

    collection = find_collection(chroma_client(settings), settings.chroma.collection)
    return collection.count() if collection is not None else 0


def llm_models_url(settings: Settings) -> str:
    return resolve_llm(settings).base_url + "/models"


def llm_answers(settings: Settings) -> bool:
    return resolve_llm(settings).probe(timeout=3).ok


def serve_model_hint(settings: Settings) -> str:
    model = settings.serve.model or f"the preset {settings.serve.preset!r}"
    return (f"The CPU LLM engine could not start {model} (no download possible?). Copy the model to "
            "this machine and set OPENCITE_SERVE__MODEL=/path/to/model (a .gguf file for llama.cpp, a "
            "Hugging Face folder for transformers serve), or use a running OpenAI-compatible server: "
            "OPENCITE_LLM__BASE_URL=http://host:port/v1")


def warm_up(settings: Settings) -> str | None:
    """One 1-token answer, so a model the server loads lazily is loaded (or downloaded) now,
    under `up`'s progress, rather than on the first question. None when it answered."""
    try:
        r = resolve_llm(settings).one_token(timeout=settings.serve.startup_timeout)
    except httpx.HTTPError as exc:
        return f"the first request failed: {type(exc).__name__}: {exc}"
    return None if r.status_code == 200 else f"the first request failed: HTTP {r.status_code} {r.text[:300]}"


def start_engine(settings: Settings) -> subprocess.Popen | None:
    """Start `opencite serve --engine cpu` and wait until it answers; None (after printing
    the fix) when it cannot start."""
    # Attached (--foreground) so the engine stops with `up`.
    # `up` runs a CPU engine: the configured one, or auto (llama.cpp where it loads).
    engine = settings.serve.engine if settings.serve.engine in ("auto", "llamacpp", "cpu") else "auto"
    proc = subprocess.Popen(_opencite("serve", "--engine", engine, "--foreground"))
    try:
        return _wait_engine(settings, proc)
    except BaseException:  # Ctrl-C / SIGTERM while starting: do not leave the engine behind
        stop(proc)
        raise


def _wait_engine(settings: Settings, proc: subprocess.Popen) -> subprocess.Popen | None:
    deadline = time.monotonic() + settings.serve.startup_timeout
    with console.status(f"Starting the CPU LLM engine ({settings.serve.model or settings.serve.preset})…"):
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                console.print(f"[red]{serve_model_hint(settings)}[/]")
                return None
            if llm_answers(settings):
                problem = warm_up(settings)
                if problem is None:
                    return proc
                console.print(f"[red]{serve_model_hint(settings)}[/]\n{problem}")
                stop(proc)
                return None
            time.sleep(1)
    stop(proc)
    console.print(f"[red]The CPU LLM engine did not answer within {settings.serve.startup_timeout:.0f}s.[/] "
                  + serve_model_hint(settings))
    return None


def up(settings: Settings, sources: str = "data/sources.txt", port: int | None = None,
       open_browser: bool = True) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the engine
    problem = check_embedding_model(settings)
    if problem:
        console.print(f"[red]{problem}[/]")
        return 1

    count = index_count(settings)
    if count == 0:
        if not Path(sources).is_file():
            console.print(f"[red]The index is empty and the sources file {sources!r} does not exist.[/] "
                          "Create it (one URL per line) or pass --from PATH.")
            return 1
        console.print(f"The index is empty: ingesting [bold]{sources}[/]…")
        code = subprocess.call(_opencite("ingest", "--from", sources))
        if code != 0:
            console.print(f"[red]Ingest failed (exit {code}).[/] Fix the problem above and run "
                          f"`opencite ingest --from {sources}`, then `opencite up` again.")
            return code
        count = index_count(settings)
    console.print(f"index: {count} chunks")

    engine = _llm(settings)
    if engine is False:
        return 1
    api = start_api(settings)
    try:
        return run_ui(settings, port=port, open_browser=open_browser)
    finally:
        for child in (api, engine):
            if child:
                stop(child)


def start_api(settings: Settings) -> subprocess.Popen | None:
    """`opencite api` beside the chat (None when one already reads this index). Not waited for:
    until it answers, `opencite ask` answers in its own process."""
    from opencite.cli.api_client import running_api

    url = f"http://{settings.api.host}:{settings.api.port}/v1"
    if running_api(settings) is not None:
        console.print(f"API: already running at {url}")
        return None
    console.print(f"API: {url} (OpenAI-compatible; `opencite ask` answers through it)")
    return subprocess.Popen(_opencite("api", "--log-level", "warning"))


def _llm(settings: Settings):
    """The configured LLM (None: nothing to stop), a started engine, or False on failure."""
    if settings.llm.base_url:
        state = "answers" if llm_answers(settings) else "[yellow]does not answer yet[/]"
        console.print(f"LLM: {settings.llm.base_url} {state}")
        return None
    if llm_answers(settings):
        console.print(f"LLM: already running at {llm_models_url(settings).removesuffix('/models')}")
        return None
    return start_engine(settings) or False
