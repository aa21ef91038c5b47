"""`opencite sync`: the long-running, scheduled ingest of the configured sources."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from opencite.cli.errors import exits_on, fail, print_error
from opencite.cli.kb import kb_option, settings_for_kb


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
        all_kbs: bool = typer.Option(False, "--all", help="Keep every knowledge base that has a schedule in step, "
                                                          "each on its own (`opencite kb schedule`), in this one process."),
    ) -> None:
        """Keep the index in step with its sources file, unattended: run now, then on the schedule.

        The schedule: --every/--cron, else the KB's own (`opencite kb schedule`), else
        OPENCITE_SYNC__EVERY / __CRON. Stays in the foreground, one run at a time; SIGTERM/Ctrl-C
        stop it between groups of pages. Each run's report goes to <data_dir>/runtime/sync/<collection>/.
        Exit status: 0 when stopped, 2 for a schedule that does not parse or a missing sources file at start."""
        from opencite.store.kb import DEFAULT_KB, describe
        from opencite.cli.progress import RichProgress
        from opencite.ingest.sync import (StopFlag, SyncTarget, effective_schedule, reports_dir, scheduled_targets,
                                          sync_forever, sync_once)
        from opencite.store.schedule import ScheduleError
        from opencite.settings import get_settings

        console, err = Console(), Console(stderr=True)
        if all_kbs:
            given = [flag for flag, value in (("--every", every), ("--cron", cron), ("--once", once),
                                              ("--sources", sources_file), ("--kb", kb != DEFAULT_KB)) if value]
            if given:
                fail(f"--all runs each knowledge base on its own schedule with its own sources file, so it takes no "
                     f"{' / '.join(given)} — set a KB's schedule with `opencite kb schedule NAME --every 1h`, or "
                     "sync one KB with `opencite sync --kb NAME ...`")
        settings = settings_for_kb(DEFAULT_KB if all_kbs else kb)
        prune = settings.sync.prune if prune is None else prune
        stop = StopFlag()  # its signal handlers go in once the input is checked

        def on_run(target_kb: str, record) -> None:
            summary = record.report.get("summary", {})
            counts = ", ".join(f"{n} {k}" for k, n in summary.items() if isinstance(n, int) and n and k != "interrupted")
            line = f"sync run {target_kb} {record.started}: {record.status}" + (f" — {counts}" if counts else "")
            console.print(line + (f" — {record.error}" if record.error else ""), highlight=False, soft_wrap=True)

        if all_kbs:
            seen_errors: set[str] = set()

            def on_error(message: str) -> None:
                if message not in seen_errors:  # once per distinct problem, not at every wake-up
                    seen_errors.add(message)
                    print_error(message)

            def targets() -> list:
                return scheduled_targets(settings, on_error)

            start = targets()
            listed = ", ".join(f"{t.kb} {t.schedule.describe()}" for t in start) or (
                "none has a schedule yet — give one with `opencite kb schedule NAME --every 1h`")
            console.print(f"syncing every scheduled knowledge base ({listed}); reports in "
                          f"{reports_dir(settings).parent}/<collection>; the list is read again at each wake-up; "
                          "SIGTERM or Ctrl-C stops", highlight=False, soft_wrap=True)
        else:
            described = describe(get_settings(), kb)
            sources_file = sources_file or described.sources_file
            schedule = None
            if not once:
                with exits_on(ScheduleError):
                    schedule = effective_schedule(settings, described, every, cron)
                if schedule is None:
                    fail(f"no schedule for the knowledge base {kb!r} — give --every 1h (s, m, h or d) or "
                         f"--cron '0 * * * *', store one with `opencite kb schedule {kb} --every 1h`, or set "
                         "OPENCITE_SYNC__EVERY / OPENCITE_SYNC__CRON")
            if not sources_file.is_file():
                fail(f"sources file {sources_file} not found — create it (one URL, `sitemap URL` or "
                     "`crawl URL` per line) or give --sources FILE")
            if once:
                stop.install()
                with RichProgress(err) as progress:
                    record = sync_once(settings, sources_file, prune=prune, stop=stop, progress=progress)
                on_run(kb, record)
                raise typer.Exit(0 if record.status in ("ok", "stopped") else 1)
            only = [SyncTarget(kb, settings, sources_file, schedule)]

            def targets() -> list:
                return only

            console.print(f"syncing {sources_file} into {settings.chroma.collection} {schedule.describe()}; "
                          f"reports in {reports_dir(settings)}; SIGTERM or Ctrl-C stops", highlight=False, soft_wrap=True)
        stop.install()
        sync_forever(targets, prune=prune, stop=stop, on_run=lambda target, record: on_run(target.kb, record),
                     progress_factory=lambda: RichProgress(err))
        console.print("sync stopped", highlight=False)
