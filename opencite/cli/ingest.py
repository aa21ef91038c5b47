"""`opencite ingest` and `opencite sources`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from opencite.cli.errors import exits_on, fail
from opencite.cli.kb import kb_option, settings_for_kb
from opencite.settings import get_settings

EXIT_FAILED_SOURCES = 1


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        sources: list[str] = typer.Argument(None, help="URLs, local files or folders (.html .md .txt .pdf)."),
        sitemap: list[str] = typer.Option([], "--sitemap", help="A sitemap or sitemap index URL (repeatable)."),
        crawl: list[str] = typer.Option([], "--crawl", help="Crawl same-site links from this URL (repeatable)."),
        max_pages: int = typer.Option(50, "--max-pages", help="At most this many pages per --crawl root."),
        max_requests: int | None = typer.Option(None, "--max-requests",
                                                help="At most this many pages tried per --crawl root, failures included [default: 3 x --max-pages]."),
        max_depth: int = typer.Option(10, "--max-depth", help="Follow links at most this many steps from a --crawl root."),
        from_file: list[Path] = typer.Option([], "--from", help="A file listing one URL or path per line."),
        prune: bool = typer.Option(False, "--prune", help="Remove indexed pages that left the source set."),
        reindex: bool = typer.Option(False, "--reindex", help="Drop the index and embed every source again."),
        report: Path | None = typer.Option(None, "--report", help="Also write the per-source report as JSON."),
        kb: str = kb_option(),
    ) -> None:
        """Fetch, clean, chunk and index sources; unchanged pages cost nothing on re-runs.

        With no sources given, ingests the KB's list (<data_dir>/sources.txt for `default`,
        <data_dir>/kbs/NAME/sources.txt for others). Exit status: 0 all
        went well, 1 some source failed (see the report), 2 bad input or set-up (one message)."""
        from opencite.ingest.pipeline import SourceSet, run_ingest, setup_errors
        from opencite.cli.progress import RichProgress

        console, err = Console(), Console(stderr=True)
        settings = settings_for_kb(kb)
        source_set = SourceSet(sources or (), sitemap, crawl, max_pages, from_file, max_requests, max_depth)
        if source_set.is_empty():
            from opencite.store.kb import describe

            default = describe(get_settings(), kb).sources_file
            if not default.is_file():
                fail(f"no sources given and no default list at {default} — give URLs or paths, "
                      "--sitemap URL, --crawl URL or --from FILE")
            source_set.from_files = [default]
        with exits_on(*setup_errors()), RichProgress(err) as progress:
            result = run_ingest(settings, source_set, prune=prune, reindex=reindex, progress=progress)
        console.print(result.table())
        console.print(result.summary_line(), highlight=False)
        if report is not None:
            result.write_json(report)
        if result.failed:
            raise typer.Exit(EXIT_FAILED_SOURCES)

    @app.command("sources")
    def sources_cmd(
        delete: list[str] = typer.Option([], "--delete", help="Remove this page (its URL as listed here) from the index."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
        kb: str = kb_option(),
    ) -> None:
        """List the indexed pages (URL, title, chunks, last fetched), or delete some."""
        from opencite.store.registry import Registry

        console = Console()
        settings = settings_for_kb(kb)
        if delete:
            _delete(settings, delete, console)
            return
        from opencite.store.index import record_namespace

        if not settings.index_dir.exists():
            records = []
        else:
            records = Registry(settings.record_manager_url, record_namespace(settings)).all()
        if as_json:
            typer.echo(json.dumps([r.__dict__ for r in records], indent=2))
            return
        table = Table("url", "title", "chunks", "last success", "last failure", "last outcome",
                      title=f"{len(records)} sources")
        for r in records:
            failure = f"{r.failed_at}\n{r.reason}" if r.failed_at and r.outcome == "failed" else (r.failed_at or "")
            table.add_row(r.url, r.title, str(r.chunks), r.fetched_at, failure, r.outcome)
        console.print(table)


def _delete(settings, urls: list[str], console: Console) -> None:
    from opencite.store.index import open_index
    from opencite.ingest.pages import delete_page
    from opencite.ingest.pipeline import registry_for, setup_errors

    with exits_on(*setup_errors()), open_index(settings, write=True) as idx:
        registry = registry_for(idx)
        by_requested = registry.by_requested()
        for url in urls:
            record = registry.get(url) or by_requested.get(url)
            if record is None:
                fail(f"{url} is not in the index — `opencite sources` lists the indexed URLs")
            n = delete_page(idx, registry, record.url)
            console.print(f"deleted {record.url} ({n} chunks)", highlight=False)
