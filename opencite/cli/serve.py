"""`opencite serve`, `opencite wait`, `opencite presets`: the LLM server side of the CLI."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from opencite.cli.errors import fail
from opencite.serving.commands import EngineNotInstalledError, engine_command, redact
from opencite.serving.endpoint import resolve_llm, served_base_url
from opencite.serving.engine_choice import with_engine
from opencite.serving.llamacpp import GGUFModelError
from opencite.serving.health import wait_ready
from opencite.serving.presets import UnknownPresetError, get_preset, load_presets
from opencite.settings import Settings, get_settings

console = Console(stderr=True)


def with_overrides(settings: Settings, **values) -> Settings:
    """Settings with the command line's serve options on top (only the options given)."""
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        return settings
    # Validated like an env var would be; only fields really set stay "set", so preset values
    # still win over untouched defaults (see commands.vllm_command).
    serve = type(settings.serve).model_validate({**settings.serve.model_dump(exclude_unset=True), **given})
    return settings.model_copy(update={"serve": serve})


def serve(
    engine: Optional[str] = typer.Option(None, help="auto | llamacpp | cpu | vllm | hf-endpoint (default: settings "
                                         "serve.engine, auto: llama.cpp where installed, else cpu)."),
    preset: Optional[str] = typer.Option(None, help="Model preset from serving/presets.toml (see `opencite presets`)."),
    model: Optional[str] = typer.Option(None, help="Hub id or local folder overriding the preset's model."),
    host: Optional[str] = typer.Option(None),
    port: Optional[int] = typer.Option(None),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the exact command and exit."),
    foreground: bool = typer.Option(False, "--foreground", help="Run attached (logs on the terminal) instead of detached."),
    stop: bool = typer.Option(False, "--stop", help="Stop the server `opencite serve` started for this data dir."),
    timeout: Optional[float] = typer.Option(None, help="Seconds to wait for the server (default serve.startup_timeout)."),
) -> None:
    """Start the LLM server and return once it answers (detached; logs and pid in <data_dir>/runtime/)."""
    from opencite.serving import process

    try:
        settings = with_overrides(get_settings(), engine=engine, preset=preset, model=model, host=host, port=port)
    except ValueError as exc:
        fail(f"bad serve option: {exc}", code=1)
    settings, passed_over = with_engine(settings)
    if passed_over:
        console.print(f"[yellow]llama.cpp is not used:[/yellow] {passed_over} — running `transformers serve` instead",
                      highlight=False)
    if stop:
        state = process.stop(settings)
        console.print(f"stopped pid {state['pid']} ({state['url']})" if state else "no server was running")
        return
    try:
        if settings.serve.engine == "hf-endpoint":
            _deploy_hf_endpoint(settings, dry_run=dry_run, timeout=timeout, console=console)
            return
        cmd = engine_command(settings, resolve=not dry_run)
    except (UnknownPresetError, EngineNotInstalledError, GGUFModelError) as exc:
        fail(str(exc), code=1)
    if dry_run:
        typer.echo(shlex.join(redact(cmd)))
        return
    chosen = settings.serve.model or ""
    if chosen.startswith(("/", "./", "../", "~")) and not Path(chosen).expanduser().exists():
        what = "GGUF file" if chosen.endswith(".gguf") else "model folder"
        fail(f"{what} {chosen} does not exist; give a Hugging Face model id, an existing folder or a .gguf file (--model)",
             code=1)
    if settings.serve.engine == "cpu" and settings.serve.api_key is not None:
        console.print("[yellow]note:[/yellow] `transformers serve` does not check API keys; bind it to 127.0.0.1 "
                      "or put it behind a proxy that does")
    if foreground:
        console.print(f"running: {shlex.join(redact(cmd))}", highlight=False)
        process.run_foreground(cmd)
    endpoint = resolve_llm(settings.model_copy(update={"llm": type(settings.llm)()}))
    url = served_base_url(settings)
    console.print(f"starting: {shlex.join(redact(cmd))}", highlight=False)
    with console.status(f"waiting for {url} (log: {process.runtime_files(settings).log})"):
        try:
            process.start_detached(
                settings, cmd, url, endpoint.api_key, timeout or settings.serve.startup_timeout
            )
        except process.ServeError as exc:
            fail(str(exc), code=1)
    console.print(f"[green]ready[/green]: base URL {url}  model {endpoint.model!r}")
    typer.echo(url)


def wait(
    url: str = typer.Argument(..., help="Server root or OpenAI base URL (…/v1)."),
    timeout: float = typer.Option(300.0, help="Give up after this many seconds."),
    api_key: Optional[str] = typer.Option(None, envvar="OPENCITE_LLM__API_KEY"),
    model: Optional[str] = typer.Option(None, help="Also require this model to be served."),
) -> None:
    """Poll /health and /v1/models until the server answers (the notebook's endpoint.wait())."""
    from opencite.serving.health import check_model

    with console.status(f"waiting for {url}"):
        result = wait_ready(url, timeout, api_key)
    if not result.ok:
        fail(f"{url} is not ready: {result.message}", code=1)
    if model:
        check = check_model(url, model, api_key, result.models)
        if not check.ok:
            fail(check.message, code=1)
    console.print(f"[green]ready[/green]: {result.message}" + (f"; models: {', '.join(result.models)}" if result.models else ""))


def presets() -> None:
    """List the model presets: model, context window, hardware."""
    from rich.table import Table

    table = Table("preset", "model", "context", "engines", "hardware")
    for p in load_presets().values():
        table.add_row(p.name, p.model, str(p.context_window), ", ".join(p.engines), p.hardware)
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(wait)
    app.command()(presets)


def _deploy_hf_endpoint(settings: Settings, dry_run: bool, timeout: float | None, console: Console) -> None:
    from opencite.serving.hf_endpoint import (EndpointDeployError, deploy, deployed_context_window,
                                              endpoint_spec, served_name)

    preset = get_preset(settings.serve.preset)
    try:
        if dry_run:
            typer.echo(json.dumps(endpoint_spec(settings, preset), indent=2))
            return
        with console.status(f"deploying {preset.model} to Inference Endpoints"):
            endpoint = deploy(settings, timeout)
    except EndpointDeployError as exc:
        fail(str(exc), code=1)
    base_url = endpoint.url.rstrip("/") + "/v1"
    console.print(f"[green]running[/green]: {endpoint.name} ({endpoint.repository})")
    typer.echo(
        f"OPENCITE_LLM__BASE_URL={base_url}\n"
        f"OPENCITE_LLM__MODEL={served_name(settings, preset)}\n"
        "OPENCITE_LLM__API_KEY=<your Hugging Face token>\n"
        f"OPENCITE_LLM__CONTEXT_WINDOW={deployed_context_window(settings, preset)}"
    )
