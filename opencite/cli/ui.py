"""`opencite ui` (the web chat) and `opencite up` (the main job: ingest, LLM, chat)."""

from __future__ import annotations

import typer

from opencite.cli.kb import kb_option, settings_for_kb


def register(app: typer.Typer) -> None:
    @app.command()
    def ui(
        host: str = typer.Option(None, help="Address to bind (default: settings.ui.host)."),
        port: int = typer.Option(None, help="Port (default: settings.ui.port)."),
        open_browser: bool = typer.Option(True, "--open-browser/--no-browser",
                                          help="Open the chat in a browser."),
        kb: str = kb_option(),
    ) -> None:
        """Start the Streamlit web chat over the index (the KB picker starts on --kb)."""
        from opencite.app.launch import run_ui
        from opencite.settings import get_settings

        settings_for_kb(kb)  # a bad or unknown name stops here, not in the browser
        raise typer.Exit(run_ui(get_settings(), host=host, port=port, open_browser=open_browser, kb=kb))

    @app.command()
    def up(
        sources: str = typer.Option("data/sources.txt", "--from",
                                    help="Sources to ingest when the index is empty."),
        port: int = typer.Option(None, help="Web chat port (default: settings.ui.port)."),
        open_browser: bool = typer.Option(True, "--open-browser/--no-browser"),
    ) -> None:
        """The main job: ingest the default sources if the index is empty, start the CPU LLM
        engine unless OPENCITE_LLM__BASE_URL is set, and open the web chat."""
        from opencite.cli.up import up as run_up
        from opencite.settings import get_settings

        raise typer.Exit(run_up(get_settings(), sources=sources, port=port, open_browser=open_browser))
