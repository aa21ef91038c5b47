"""`opencite sync`: the long-running, scheduled ingest of the configured sources."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from opencite.cli_errors import exits_on, fail
from opencite.ingest.kb_cli import kb_option, settings_for_kb


def register(app: typer.Typer) -> None:
    @app.command()
    def sync(
        every: str | None = typer.Option(None, "--every", help="Run this often, e.g. 30m, 1h, 1d."),
        cron: str | None = typer.Option(None, "--cron", help="Run at these times (UTC), e.g. '0 * * * *'."),
        once: bool = typer.Option(False, "--once", help="One run now, then exit (for an outside scheduler)."),
        prune: bool | None = typer.Option(None, "--prune/--no-prune",
                                          help="Remove pages that left the sources or were gone (404/410) twice "
                                               "(default: on, OPENCITE_SYNC__PRUNE)."),
        sources_file: Path | None = typer.Option(None, "--sources", help="The sources file (default: the KB's sources.txt)."),
        kb: str = kb_option(),
    ) -> None:
        """Keep the index in step with its sources file, unattended: run now, then on the schedule.

        Stays in the foreground, one run at a time; SIGTERM/Ctrl-C stop it between groups of pages.
        Each run's report goes to <data_dir>/runtime/sync/<collection>/. Exit status: 0 when
        stopped, 2 for a schedule that does not parse or a missing sources file at start."""
        from opencite.ingest.kb import describe
        from opencite.ingest.report import RichProgress
        from opencite.ingest.sync import ScheduleError, StopFlag, parse_schedule, reports_dir, sync_forever, sync_once
        from opencite.settings import get_settings

        console, err = Console(), Console(stderr=True)
        settings = settings_for_kb(kb)
        sources_file = sources_file or describe(get_settings(), kb).sources_file
        prune = settings.sync.prune if prune is None else prune
        schedule = None
        if not once:
            with exits_on(ScheduleError):
                schedule = parse_schedule(every or (None if cron else settings.sync.every),
                                          cron or (None if every else settings.sync.cron))
        if not sources_file.is_file():
            fail(f"sources file {sources_file} not found — create it (one URL, `sitemap URL` or "
                      "`crawl URL` per line) or give --sources FILE")
        stop = StopFlag()
        stop.install()

        def on_run(record) -> None:
            summary = record.report.get("summary", {})
            counts = ", ".join(f"{n} {k}" for k, n in summary.items() if isinstance(n, int) and n and k != "interrupted")
            line = f"sync run {record.started}: {record.status}" + (f" — {counts}" if counts else "")
            console.print(line + (f" — {record.error}" if record.error else ""), highlight=False, soft_wrap=True)

        where = reports_dir(settings)
        if once:
            with RichProgress(err) as progress:
                record = sync_once(settings, sources_file, prune=prune, stop=stop, progress=progress)
            on_run(record)
            raise typer.Exit(0 if record.status in ("ok", "stopped") else 1)
        console.print(f"syncing {sources_file} into {settings.chroma.collection} {schedule.describe()}; "
                      f"reports in {where}; SIGTERM or Ctrl-C stops", highlight=False, soft_wrap=True)
        sync_forever(settings, sources_file, schedule, prune=prune, stop=stop, on_run=on_run,
                     progress_factory=lambda: RichProgress(err))
        console.print("sync stopped", highlight=False)
