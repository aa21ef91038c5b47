"""`opencite kb create | list | schedule | delete`, and the `--kb` option every index command takes."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from opencite.cli.errors import exits_on, fail
from opencite.settings import Settings, get_settings

KB_HELP = "Knowledge base to use (`opencite kb list`); `default` is the original single index."


def kb_option() -> str:
    return typer.Option("default", "--kb", help=KB_HELP)


def settings_for_kb(name: str, settings: Settings | None = None) -> Settings:
    """The settings of KB `name`, or exit 2 with the KB error's message (bad or unknown name)."""
    from opencite.store.kb import KnowledgeBaseError, kb_settings

    with exits_on(KnowledgeBaseError):
        return kb_settings(settings or get_settings(), name)


def register(app: typer.Typer) -> None:
    kb_app = typer.Typer(help="Knowledge bases: named indexes, each with its own sources, model and data.",
                         no_args_is_help=True)
    app.add_typer(kb_app, name="kb")

    @kb_app.command("create")
    def create_cmd(
        name: str = typer.Argument(..., help="Lower-case letters, digits, '-' or '_'."),
        every: str | None = typer.Option(None, "--every", help="Sync schedule: this often, e.g. 30m, 1h, 1d."),
        cron: str | None = typer.Option(None, "--cron", help="Sync schedule: at these times (UTC), e.g. '0 * * * *'."),
    ) -> None:
        """Create an empty knowledge base; fill it with `opencite ingest --kb NAME ...`, or give it a
        sync schedule and let `opencite sync --all` keep it in step with its sources file."""
        from opencite.store import kb

        settings = get_settings()
        created = _run(lambda: kb.create(settings, name, every, cron))
        Console().print(f"created knowledge base [bold]{created.name}[/] (collection {created.collection}); "
                        f"sources file {created.sources_file}"
                        + (f"; synced {created.schedule_text}" if created.schedule_text else ""), highlight=False)

    @kb_app.command("schedule")
    def schedule_cmd(
        name: str = typer.Argument(..., help="The knowledge base (`default` too)."),
        every: str | None = typer.Option(None, "--every", help="Sync this often, e.g. 30m, 1h, 1d."),
        cron: str | None = typer.Option(None, "--cron", help="Sync at these times (UTC), e.g. '0 * * * *'."),
        off: bool = typer.Option(False, "--off", help="Remove the stored schedule (`sync --all` then leaves the KB "
                                                      "alone unless OPENCITE_SYNC__EVERY/__CRON is set)."),
    ) -> None:
        """Store the knowledge base's sync schedule, used by `opencite sync --all` and by
        `opencite sync --kb NAME` without --every/--cron."""
        from opencite.store import kb

        if sum(map(bool, (every, cron, off))) != 1:
            fail(f"give exactly one of --every 1h (s, m, h or d), --cron '0 * * * *' or --off, e.g. "
                 f"`opencite kb schedule {name} --every 1h`")
        settings = get_settings()
        changed = _run(lambda: kb.set_schedule(settings, name, every, cron))
        Console().print(f"knowledge base [bold]{changed.name}[/]: "
                        + (f"synced {changed.schedule_text}" if changed.schedule_text else "no sync schedule"),
                        highlight=False)

    @kb_app.command("list")
    def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
        """The knowledge bases with their collection, pages, chunks and sync schedule."""
        from opencite.store import kb
        from opencite.store.index import chroma_client, find_collection, record_namespace
        from opencite.store.registry import Registry

        settings = get_settings()
        rows, schedules = [], []
        client = _run(lambda: chroma_client(settings))
        for item in kb.list_kbs(settings):
            kb_set = kb.kb_settings(settings, item.name)
            collection = find_collection(client, item.collection)
            pages = (len(Registry(kb_set.record_manager_url, record_namespace(kb_set)).all())
                     if kb_set.index_dir.exists() else 0)
            schedules.append(item.schedule_text or "-")
            rows.append({"name": item.name, "collection": item.collection, "pages": pages,
                         "chunks": collection.count() if collection is not None else 0,
                         "sources_file": str(item.sources_file), "created_at": item.created_at,
                         "schedule": item.schedule})
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        table = Table("name", "collection", "pages", "chunks", "sync schedule", "sources file",
                      title=f"{len(rows)} knowledge bases")
        for r, when in zip(rows, schedules):
            table.add_row(r["name"], r["collection"], str(r["pages"]), str(r["chunks"]), when, r["sources_file"])
        Console().print(table)

    @kb_app.command("delete")
    def delete_cmd(
        name: str = typer.Argument(...),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    ) -> None:
        """Delete a knowledge base and all its data (index, records, BM25, sources file); others are untouched."""
        from opencite.store import kb

        settings = get_settings()
        _run(lambda: kb.kb_settings(settings, name))  # unknown or invalid: say so before asking
        if not yes:
            typer.confirm(f"Delete the knowledge base {name!r} and all of its data?", abort=True)
        deleted = _run(lambda: kb.delete(settings, name))
        Console().print(f"deleted knowledge base [bold]{deleted.name}[/] (collection {deleted.collection})",
                        highlight=False)


def _run(fn):
    from opencite.ingest.pipeline import setup_errors
    from opencite.store.schedule import ScheduleError

    with exits_on(*setup_errors(), ScheduleError):
        return fn()
