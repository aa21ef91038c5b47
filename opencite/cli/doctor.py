"""`opencite doctor`: checks each configured part — LLM, Chroma, embedding model — and says
exactly what is wrong and how to fix it. Exit status 1 when any check fails.

Lives with the CLI because it composes rooms (serving's health probes, the store's index and
embedder) that must not import each other."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import typer
from rich.console import Console
from rich.table import Table

from opencite.cli.errors import fail
from opencite.settings import Settings, get_settings

CHECKS = ("llm", "chroma", "embedding")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_llm(settings: Settings) -> Check:
    from opencite.serving.endpoint import resolve_llm

    try:
        ep = resolve_llm(settings)
    except ValueError as exc:
        return Check("llm", False, str(exc), "set OPENCITE_SERVE__PRESET to a preset from `opencite presets`")
    reach = ep.probe()
    if not reach.ok:
        fix = (
            "start the local server: `opencite serve` (or `opencite wait "
            f"{ep.base_url} --timeout 600` if it is still starting)"
            if settings.llm.base_url is None
            else "check OPENCITE_LLM__BASE_URL / OPENCITE_LLM__API_KEY, or start that server"
        )
        return Check("llm", False, reach.message, fix)
    served = ep.check_model(reach.models)
    if not served.ok:
        return Check("llm", False, served.message, "set OPENCITE_LLM__MODEL to the served model, or serve that model")
    from opencite.serving.server_info import describe_server

    server = describe_server(ep.base_url, ep.model, ep.api_key)
    window = f"context window {ep.context_window}"
    if server.context_window and server.context_window != ep.context_window:
        configured = "OPENCITE_LLM__CONTEXT_WINDOW" if settings.llm.context_window else "the preset's"
        window = (f"the server gives {server.context_window} tokens, {configured} says {ep.context_window}: "
                  f"set OPENCITE_LLM__CONTEXT_WINDOW={server.context_window}")
        if server.context_window < ep.context_window:
            return Check("llm", False, f"{server.kind} at {ep.base_url} {served.message}; {window}",
                         "prompts sized for the larger window would be cut by the server")
    detail = f"{server.kind} at {ep.base_url} {served.message} ({window})"
    return Check("llm", True, detail + (f"; {server.note}" if server.note else ""))


def check_chroma(settings: Settings) -> Check:
    if settings.chroma.url:
        from opencite.store.index import ChromaUnreachableError, chroma_client

        try:
            chroma_client(settings)
        except ChromaUnreachableError as exc:
            message, _, fix = str(exc).partition(" Fix: ")
            return Check("chroma", False, message, fix)
        return Check("chroma", True, f"Chroma server {settings.chroma.url} answers its heartbeat")
    path = settings.chroma_path
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check(
            "chroma", False, f"embedded index folder {path} is not writable ({exc.strerror})",
            "make it writable, set OPENCITE_CHROMA__PATH to a writable folder, or OPENCITE_CHROMA__URL to a Chroma server",
        )
    return Check("chroma", True, f"embedded index folder {path} is writable")


def check_embedding(settings: Settings) -> Check:
    from opencite.store.embeddings import load_embeddings
    from opencite.store.embedder_choice import resolve_embedder

    choice = resolve_embedder(settings.embedding)
    model = choice.model
    try:
        embeddings = load_embeddings(settings.embedding)
        dims = len(embeddings.embed_query("doctor"))
    except Exception as exc:  # any loader failure is the finding itself
        return Check(
            "embedding", False, f"embedding model {model!r} did not load: {str(exc).splitlines()[0][:300]}",
            "set OPENCITE_EMBEDDING__MODEL to a local folder or reachable hub id (see `opencite config`)",
        )
    runtime = embeddings.large_batch_runtime() if choice.device == "cpu" else "torch"
    names = {"openvino": "OpenVINO", "onnxruntime": "ONNX Runtime", "torch": "torch"}
    return Check("embedding", True, f"{model} loads on {choice.device} ({dims} dims, {choice.precision}; "
                                    f"ingest's batches through {names[runtime]})")


def run_checks(settings: Settings, only: list[str] | None = None) -> list[Check]:
    runners = {"llm": check_llm, "chroma": check_chroma, "embedding": check_embedding}
    return [runners[name](settings) for name in (only or CHECKS)]


def doctor(
    only: list[str] = typer.Option(None, "--only", help="Run only these checks: llm, chroma, embedding."),
) -> None:
    """Check the LLM (reachable, serving the configured model), Chroma and the embedding model."""
    unknown = set(only or []) - set(CHECKS)
    if unknown:
        fail(f"unknown check(s) {', '.join(sorted(unknown))}; choose from {', '.join(CHECKS)}")
    checks = run_checks(get_settings(), only)
    table = Table("check", "status", "detail", "fix", title="opencite doctor")
    for c in checks:
        table.add_row(c.name, "[green]ok[/green]" if c.ok else "[red]FAIL[/red]", c.detail, c.fix)
    Console(width=200).print(table)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(doctor)
