"""A sync schedule: `--every 1h` or `--cron '0 * * * *'`. Stored with each knowledge base (store/kb.py)
and followed by the sync loop (ingest/sync.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

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
