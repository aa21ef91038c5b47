"""What an ingest tells the user after it ran: a per-source table, a summary line and JSON (the
progress while it runs is drawn by the CLI: opencite/cli/progress.py)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.table import Table

from opencite.ingest.documents import Outcome

_STYLE = {Outcome.NEW: "green", Outcome.UPDATED: "cyan", Outcome.UNCHANGED: "dim",
          Outcome.SKIPPED: "yellow", Outcome.FAILED: "red", Outcome.PRUNED: "magenta"}


_KEPT = re.compile(r" \(kept its \d+ indexed chunks\)$")


def _source_line(s: "SourceReport") -> str:
    line = s.url if s.url == s.requested_url else f"{s.url} (listed as {s.requested_url})"
    details = ", ".join(x for x in (s.title, f"{s.chunks} chunks" if s.chunks else "") if x)
    return f"{line}\n  {details}" if details else line


@dataclass
class SourceReport:
    url: str  # the page key in the index (canonical URL when declared)
    requested_url: str  # as listed
    outcome: Outcome
    reason: str = ""
    title: str = ""
    chunks: int = 0


@dataclass
class IngestReport:
    sources: list[SourceReport] = field(default_factory=list)
    embedded: int = 0  # chunks embedded and added this run
    deleted: int = 0  # chunks removed this run (replaced or pruned)
    repaired: dict = field(default_factory=dict)  # what reconcile fixed after an earlier crash
    interrupted: bool = False  # stopped (SIGTERM) before every page was fetched and stored

    def add(self, source: SourceReport) -> None:
        self.sources.append(source)

    @property
    def failed(self) -> list[SourceReport]:
        return [s for s in self.sources if s.outcome == Outcome.FAILED]

    def counts(self) -> dict[str, int]:
        out = {o.value: 0 for o in Outcome}
        for s in self.sources:
            out[s.outcome.value] += 1
        return out

    def to_json(self) -> dict:
        return {
            "summary": {**self.counts(), "chunks_embedded": self.embedded, "chunks_deleted": self.deleted,
                        "repaired": self.repaired, "interrupted": self.interrupted},
            "sources": [dict(asdict(s), outcome=s.outcome.value) for s in self.sources],
        }

    def write_json(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)  # never a half-written report

    def groups(self) -> list[tuple[Outcome, str, list[SourceReport]]]:
        """Sources grouped by outcome and reason (the per-page "kept its N chunks" note aside),
        outcomes in their fixed order, the biggest group of an outcome first."""
        grouped: dict[tuple[Outcome, str], list[SourceReport]] = {}
        for s in self.sources:
            grouped.setdefault((s.outcome, _KEPT.sub("", s.reason)), []).append(s)
        order = list(Outcome)
        keys = sorted(grouped, key=lambda k: (order.index(k[0]), -len(grouped[k]), k[1]))
        return [(outcome, reason, grouped[(outcome, reason)]) for outcome, reason in keys]

    def table(self, first: int = 5) -> Table:
        """One row per (outcome, reason) with its count and its first `first` sources: readable
        for 5 pages or 50,000 (the JSON report keeps every line)."""
        table = Table(title="ingest report")
        table.add_column("outcome")
        table.add_column("pages", justify="right")
        table.add_column("reason", ratio=1)
        table.add_column("sources", ratio=2)
        for outcome, reason, members in self.groups():
            lines = [_source_line(s) for s in members[:first]]
            if len(members) > first:
                lines.append(f"… and {len(members) - first} more (--report FILE lists every page)")
            style = _STYLE[outcome]
            table.add_row(f"[{style}]{outcome.value}[/]", str(len(members)), reason, "\n".join(lines))
        return table

    def summary_line(self) -> str:
        counts = ", ".join(f"{n} {k}" for k, n in self.counts().items() if n)
        return f"{counts or 'no sources'}; {self.embedded} chunks embedded, {self.deleted} removed"
