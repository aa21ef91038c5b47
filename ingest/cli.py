"""`opencite ingest` and `opencite sources`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest() -> None:
        """Scrape, clean, chunk and index sources (not yet implemented)."""
        raise typer.Exit(2)
