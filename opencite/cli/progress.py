"""Progress the domain rooms report, drawn as rich bars on the terminal: ingest's events
(ingest/pipeline.py's `Progress`) and eval's steps (eval/progress.py's `StepProgress`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from opencite.ingest.documents import Fetched


class _Bars:
    """Counted bars (description, bar, n/total, elapsed) shown while the `with` block runs."""

    def __init__(self, console: Console, transient: bool = False, label: str = "{task.description}") -> None:
        self.bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console, transient=transient)

    def __enter__(self):
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()


class RichProgress(_Bars):
    """Two bars: fetching (per source) and embedding (per chunk)."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self._fetch = self._embed = None

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


class RichSteps(_Bars):
    """One bar for a counted job (eval's StepProgress): `with RichSteps(console) as steps: run(progress=steps)`."""

    def __init__(self, console: Console, transient: bool = False) -> None:
        super().__init__(console, transient, label="[bold]{task.description}")
        self._task = None

    def start(self, description: str, total: int) -> None:
        self._task = self.bar.add_task(description, total=total)

    def advance(self, steps: int = 1) -> None:
        self.bar.advance(self._task, steps)
