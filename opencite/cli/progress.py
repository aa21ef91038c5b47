"""Ingest's progress events (ingest/pipeline.py's `Progress`) drawn as rich bars on the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from opencite.ingest.documents import Fetched


class RichProgress:
    """Two bars: fetching (per source) and embedding (per chunk)."""

    def __init__(self, console: Console) -> None:
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=False)
        self._fetch = self._embed = None

    def __enter__(self) -> "RichProgress":
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()

    def start_fetch(self, total: int | None) -> None:
        """None: as many as a crawl finds (no total yet); called again, the total grows by `total`."""
        if self._fetch is None:
            self._fetch = self.bar.add_task("fetching", total=total)
        elif total is not None:
            done = next(t.completed for t in self.bar.tasks if t.id == self._fetch)
            self.bar.update(self._fetch, total=done + total)

    def fetched(self, fetched: Fetched) -> None:
        self.bar.advance(self._fetch)

    def start_embed(self, total: int) -> None:
        self._embed = self.bar.add_task("embedding", total=total)

    def embedded(self, n: int) -> None:
        self.bar.advance(self._embed, n)


class RichSteps:
    """One bar for a counted job (eval's StepProgress): `with RichSteps(console) as steps: run(progress=steps)`."""

    def __init__(self, console: Console, transient: bool = False) -> None:
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=transient)
        self._task = None

    def __enter__(self) -> "RichSteps":
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()

    def start(self, description: str, total: int) -> None:
        self._task = self.bar.add_task(description, total=total)

    def advance(self, steps: int = 1) -> None:
        self.bar.advance(self._task, steps)
