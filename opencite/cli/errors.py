"""Errors that mean "fix the input or the set-up": one red line on stderr, exit 2, no traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console

EXIT_USAGE = 2


def print_error(message: str) -> None:
    console = Console(stderr=True)
    console.print("[bold red]error:[/] ", end="")
    # The message may quote input or a server's log: no markup parsing, no re-wrapping.
    console.print(message, markup=False, highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    print_error(message)
    raise typer.Exit(code)


@contextmanager
def exits_on(*errors: type[BaseException], code: int = EXIT_USAGE) -> Iterator[None]:
    """Inside, any of `errors` ends the command with its message (the errors' messages name the
    input and the fix)."""
    try:
        yield
    except errors as exc:
        fail(str(exc), code)


def invalid_settings(exc) -> str:
    """A pydantic ValidationError of the settings as one line: each bad OPENCITE_* value, what was
    wrong with it, and the fix."""
    bad = [f"OPENCITE_{'__'.join(str(part) for part in error['loc']).upper()}={error.get('input')!r}: {error['msg']}"
           for error in exc.errors()]
    them = "them" if len(bad) > 1 else "it"
    return (f"invalid setting{'s' if len(bad) > 1 else ''}: {'; '.join(bad)}. Fix: give {them} an allowed value, "
            f"or unset {them}, in the environment or in .env / .env.local (docs/configuration.md lists every setting).")
