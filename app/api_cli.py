"""`opencite api`: serve the OpenAI-compatible RAG API with uvicorn."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def api(
        host: str = typer.Option(None, help="Bind address (default: settings api.host)."),
        port: int = typer.Option(None, help="Port (default: settings api.port)."),
        log_level: str = typer.Option("info", help="uvicorn log level."),
    ) -> None:
        """Serve cited answers to any OpenAI client at http://HOST:PORT/v1 (model id: api.model_id)."""
        import uvicorn
        from rich.console import Console

        from opencite.app.api import create_app
        from opencite.settings import get_settings

        settings = get_settings()
        host = host or settings.api.host
        port = port or settings.api.port
        Console(stderr=True).print(
            f"[bold]opencite api[/] on http://{host}:{port}/v1 — model [cyan]{settings.api.model_id}[/]"
            + (" — API key required" if settings.api.api_key else ""))
        uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)
