"""`opencite config`: the effective settings, secrets masked."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from opencite.settings import get_settings, masked_dump


def register(app: typer.Typer) -> None:
    @app.command()
    def config(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
        """Print the effective settings (defaults < .env < OPENCITE_* environment), secrets masked."""
        data = masked_dump(get_settings())
        if as_json:
            typer.echo(json.dumps(data, indent=2))
            return
        from rich.table import Table

        table = Table("setting", "value", title="opencite settings")
        for key, value in _flatten(data):
            table.add_row(key, "" if value is None else str(value))
        Console().print(table)


def _flatten(data: dict, prefix: str = ""):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value
