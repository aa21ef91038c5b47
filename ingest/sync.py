"""`opencite sync`: ingest the configured sources on a schedule, unattended, one run at a time.

A run works on one settings object (its collection) and one sources file; a knowledge base picks
both. `sync_forever` keeps a list of such targets in step, each on its own schedule: one KB
(`--kb`) or every scheduled KB (`--all`, the list read again at each wake-up). Each run is a
normal `run_ingest` (so a killed run is repaired by the next run's `reconcile`) with `--prune` on
by default, and leaves its report in <data_dir>/runtime/sync/<collection>/. SIGTERM or SIGINT ends
the process between groups of pages (nothing half-stored) or at once while it waits."""

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
from typing import TYPE_CHECKING

from opencite.ingest.pipeline import Progress, SourceSet, run_ingest, setup_errors
from opencite.store.schedule import Schedule, ScheduleError, parse_schedule
from opencite.settings import Settings

if TYPE_CHECKING:
    from opencite.store.kb import KnowledgeBase

# The longest sleep between two readings of the KB list (`sync --all` picks up new KBs by then).
RESCAN_SECONDS = 60.0


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
        except setup_errors() as exc:
            record.status, record.error = "error", f"{exc} (nothing indexed was touched)"
    record.finished = _now()
    record.write(reports_dir(settings), settings.sync.keep_reports)
    return record


def reports_dir(settings: Settings) -> Path:
    """<data_dir>/runtime/sync/<collection>: one folder per index, so knowledge bases never mix."""
    return settings.runtime_dir / "sync" / settings.chroma.collection


@dataclass(frozen=True)
class SyncTarget:
    """One knowledge base to keep in step: its settings, its sources file, its schedule."""

    kb: str
    settings: Settings
    sources_file: Path
    schedule: Schedule
    created_at: str = ""  # a KB deleted and created again under the same name is a new target

    @property
    def key(self) -> tuple:
        # A new schedule makes a new key: a rescheduled KB runs at the next wake-up, then on it.
        return (self.kb, self.created_at, self.schedule)


def effective_schedule(settings: Settings, kb: KnowledgeBase, every: str | None = None, cron: str | None = None) -> Schedule | None:
    """The schedule a KB syncs on: the command's --every/--cron, else the KB's stored one
    (`opencite kb schedule`), else OPENCITE_SYNC__EVERY / __CRON; None when there is none."""
    for pair in ((every, cron), (kb.every, kb.cron), (settings.sync.every, settings.sync.cron)):
        if any(pair):
            return parse_schedule(*pair)
    return None


def scheduled_targets(settings: Settings, on_error: Callable[[str], None]) -> list[SyncTarget]:
    """Every KB that has a schedule (its own, else the settings'), read now. A KB whose record
    cannot be read is reported through `on_error` and left out; the others are kept."""
    from opencite.store import kb as kbs

    targets = []
    for name in kbs.kb_names(settings):
        try:
            item = kbs.describe(settings, name)
            schedule = effective_schedule(settings, item)
            if schedule is not None:
                targets.append(SyncTarget(name, kbs.kb_settings(settings, name), item.sources_file, schedule,
                                          item.created_at))
        except (ScheduleError, kbs.KnowledgeBaseError, ValueError) as exc:
            on_error(f"knowledge base {name!r} left out of this wake-up: {exc}")
    return targets


def sync_forever(targets: Callable[[], list[SyncTarget]], *, prune: bool, stop: StopFlag,
                 on_run: Callable[[SyncTarget, RunRecord], None],
                 progress_factory: Callable[[], object] | None = None) -> None:
    """Run each target now, then at each of its scheduled times, until stopped. One run at a time:
    when several are due, the longest-waiting goes first; a run that overruns a target's next start
    time is followed by that target's next scheduled one (missed slots are skipped, not run back to
    back). `targets()` is called at every wake-up — at least every RESCAN_SECONDS — so a KB created,
    rescheduled or deleted meanwhile is picked up then."""
    due: dict[tuple, datetime] = {}
    while not stop():
        now = datetime.now(timezone.utc)
        current = {t.key: t for t in targets()}
        due = {key: due.get(key, now) for key in current}  # new targets are due now, gone ones forgotten
        key, when = min(due.items(), key=lambda item: item[1], default=(None, now + timedelta(seconds=RESCAN_SECONDS)))
        if key is None or when > now:
            wake = min(when, now + timedelta(seconds=RESCAN_SECONDS))
            if stop.wait((wake - now).total_seconds()):
                break
            continue
        target = current[key]
        if progress_factory is not None:
            with progress_factory() as progress:
                record = sync_once(target.settings, target.sources_file, prune=prune, stop=stop, progress=progress)
        else:
            record = sync_once(target.settings, target.sources_file, prune=prune, stop=stop)
        on_run(target, record)
        now = datetime.now(timezone.utc)
        upcoming = target.schedule.next_after(datetime.fromisoformat(record.started))
        while upcoming <= now:
            upcoming = target.schedule.next_after(upcoming)
        due[target.key] = upcoming
        time.sleep(0)  # let a signal handler run before the next run starts


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
