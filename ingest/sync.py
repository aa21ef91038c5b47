"""`opencite sync`: ingest the configured sources on a schedule, unattended, one run at a time.

Works on one settings object (its collection) and one sources file; a knowledge base picks both.
Each run is a normal `run_ingest` (so a killed run is repaired by the next run's `reconcile`) with
`--prune` on by default, and leaves its report in <data_dir>/runtime/sync/. SIGTERM or SIGINT
ends the process between groups of pages (nothing half-stored) or at once while it waits."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from opencite.ingest.pipeline import Progress, SourceSet, run_ingest
from opencite.settings import Settings

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$", re.I)
_UNIT = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, None: 1}


class ScheduleError(ValueError):
    """The schedule does not parse; the message says what was given and what is accepted."""


@dataclass(frozen=True)
class Schedule:
    every: float | None = None  # seconds between run starts
    cron: str | None = None  # a 5-field cron expression, in UTC

    def next_after(self, moment: datetime) -> datetime:
        if self.every is not None:
            return moment + timedelta(seconds=self.every)
        from croniter import croniter

        return croniter(self.cron, moment).get_next(datetime)

    def describe(self) -> str:
        return f"every {self.every:g}s" if self.every is not None else f"cron '{self.cron}' (UTC)"


def parse_schedule(every: str | None, cron: str | None) -> Schedule:
    """`--every 1h` (s, m, h, d; plain seconds) or `--cron '0 * * * *'`, exactly one."""
    from croniter import croniter

    if bool(every) == bool(cron):
        raise ScheduleError("give one schedule: --every 1h (s, m, h or d) or --cron '0 * * * *' "
                            "(or OPENCITE_SYNC__EVERY / OPENCITE_SYNC__CRON)")
    if every:
        match = _DURATION.match(every)
        if not match or float(match.group(1)) <= 0:
            raise ScheduleError(f"--every {every!r} is not a duration — give a number with s, m, h or d, e.g. 30m or 1h")
        return Schedule(every=float(match.group(1)) * _UNIT[(match.group(2) or "s").lower()])
    if not croniter.is_valid(cron) or len(cron.split()) != 5:
        raise ScheduleError(f"--cron {cron!r} is not a cron expression — give five fields "
                            "(minute hour day month weekday), e.g. '0 * * * *' for every hour")
    return Schedule(cron=cron)


@dataclass
class RunRecord:
    """What one scheduled run did, kept as JSON in <data_dir>/runtime/sync/."""

    started: str
    finished: str = ""
    status: str = "running"  # ok | failed-sources | error | stopped
    error: str = ""
    report: dict = field(default_factory=dict)

    def write(self, folder: Path, keep: int) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        # Milliseconds in the name: runs started within one second (a failing run retried at
        # once) each keep their report instead of overwriting the previous one.
        path = folder / f"{re.sub(r'[-:]', '', self.started).replace('+0000', 'Z')}.json"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)  # never a half-written report
        for old in sorted(folder.glob("*.json"))[:-keep]:
            old.unlink(missing_ok=True)
        return path


class StopFlag:
    """Set by SIGTERM / SIGINT: the run in progress ends between groups of pages, a wait ends at once."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.event.set())

    def __call__(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float) -> bool:
        return self.event.wait(max(seconds, 0))


def sync_once(settings: Settings, sources_file: Path, *, prune: bool = True, stop: Callable[[], bool] = lambda: False,
              progress: Progress | None = None) -> RunRecord:
    """One run: never raises for bad input or set-up (the record says what went wrong)."""
    from opencite.ingest.cli import clear_errors

    record = RunRecord(started=_now())
    if not Path(sources_file).is_file():
        record.status = "error"
        record.error = (f"sources file {sources_file} is missing — restore it or point the sync at another "
                        "(nothing indexed was touched)")
    else:
        try:
            report = run_ingest(settings, SourceSet(from_files=[Path(sources_file)]), prune=prune,
                                progress=progress, should_stop=stop)
            record.report = report.to_json()
            record.status = "stopped" if report.interrupted else ("failed-sources" if report.failed else "ok")
        except clear_errors() as exc:
            record.status, record.error = "error", f"{exc} (nothing indexed was touched)"
    record.finished = _now()
    record.write(reports_dir(settings), settings.sync.keep_reports)
    return record


def reports_dir(settings: Settings) -> Path:
    """<data_dir>/runtime/sync/<collection>: one folder per index, so knowledge bases never mix."""
    return settings.runtime_dir / "sync" / settings.chroma.collection


def sync_forever(settings: Settings, sources_file: Path, schedule: Schedule, *, prune: bool, stop: StopFlag,
                 on_run: Callable[[RunRecord], None], progress_factory: Callable[[], object] | None = None) -> None:
    """Run now, then at every scheduled time, until stopped. A run that overruns its next start
    time is followed by the next scheduled one (runs never overlap)."""
    while not stop():
        if progress_factory is not None:
            with progress_factory() as progress:
                record = sync_once(settings, sources_file, prune=prune, stop=stop, progress=progress)
        else:
            record = sync_once(settings, sources_file, prune=prune, stop=stop)
        on_run(record)
        now = datetime.now(timezone.utc)
        upcoming = schedule.next_after(datetime.fromisoformat(record.started))
        while upcoming <= now:  # missed slots are skipped, not run back to back
            upcoming = schedule.next_after(upcoming)
        if stop.wait((upcoming - now).total_seconds()):
            break
        time.sleep(0)  # let a signal handler run before the next run starts


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
