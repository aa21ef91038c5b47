"""The `opencite` command. Each component registers its own subcommands here."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from opencite.settings import get_settings, masked_dump

app = typer.Typer(
    name="opencite",
    help="Cited answers over your team's web pages, from an open LLM you run yourself.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()


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
    console.print(table)


def _flatten(data: dict, prefix: str = ""):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _register() -> None:
    # Components add their commands; a missing optional part must not break the others.
    from opencite.cli.ingest import register as register_ingest

    register_ingest(app)
    for module in ("opencite.cli.serve", "opencite.cli.doctor", "opencite.cli.ui", "opencite.cli.api", "opencite.cli.eval"):
        try:
            mod = __import__(module, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.register(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
