"""`opencite api`: serve the OpenAI-compatible RAG API with uvicorn."""

from __future__ import annotations

import typer

from opencite.cli.errors import exits_on
from opencite.cli.kb import kb_option, settings_for_kb


def register(app: typer.Typer) -> None:
    @app.command()
    def api(
        host: str = typer.Option(None, help="Bind address (default: settings api.host)."),
        port: int = typer.Option(None, help="Port (default: settings api.port)."),
        log_level: str = typer.Option("info", help="uvicorn log level."),
        kb: str = kb_option(),
    ) -> None:
        """Serve cited answers to any OpenAI client at http://HOST:PORT/v1: every knowledge base is the
        model <api.model_id>/<kb>; the bare <api.model_id> answers from --kb."""
        import uvicorn
        from rich.console import Console

        from opencite.app.launch import KeysFileError, api_app, api_log_config
        from opencite.settings import get_settings

        settings = get_settings()
        settings_for_kb(kb, settings)  # a bad or unknown name stops here
        host = host or settings.api.host
        port = port or settings.api.port
        err = Console(stderr=True)
        with exits_on(KeysFileError):
            app = api_app(settings, default_kb=kb)
        keys = settings.api.keys_file or settings.api.api_key
        err.print(f"[bold]opencite api[/] on http://{host}:{port}/v1 — model [cyan]{settings.api.model_id}[/] "
                  f"= knowledge base {kb!r}" + (" — API key required" if keys else ""))
        uvicorn.run(app, host=host, port=port, log_level=log_level,
                    log_config=api_log_config(settings.api.log_format == "json", log_level))
