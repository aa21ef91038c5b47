"""The `opencite` command: each module of this package registers its own command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="opencite",
    help="Cited answers over your team's web pages, from an open LLM you run yourself.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _settings_are_valid() -> None:
    """Every command reads the settings: a bad OPENCITE_* value ends it here, with one line naming
    the value and the fix, not with a traceback from wherever the command first read them."""
    from pydantic import ValidationError

    from opencite.cli.errors import fail, invalid_settings
    from opencite.settings import get_settings

    try:
        get_settings()
    except ValidationError as exc:
        fail(invalid_settings(exc))


def _register() -> None:
    from opencite.cli import api, ask, config, doctor, eval, ingest, kb, serve, sync, ui

    for group in (config, ingest, kb, sync, serve, doctor, ask, ui, api, eval):
        group.register(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
