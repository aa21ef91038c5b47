"""Knowledge bases: named indexes side by side in one data dir.

A knowledge base (KB) is a Chroma collection with everything that hangs off it: its sources
file, the embedding model recorded on the collection, its BM25 index, its record-manager
namespace and registry rows, and its writer lock. Everything else in opencite works on one
`Settings`; `kb_settings(settings, name)` gives the settings of one KB, so the index, ingest,
the chain and eval need no KB parameter of their own.

The KB `default` is the single collection opencite always had (`chroma.collection`, sources in
`<data_dir>/sources.txt`), so existing data keeps working. Others are recorded in
`<data_dir>/kbs/<name>/kb.json` beside their `sources.txt`; their collection is
`<chroma.collection>-<name>`. A KB's record also holds its sync schedule (`opencite kb schedule`);
the default KB's record is `<data_dir>/kb.json`, beside its sources file, written only when it gets one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from filelock import Timeout

from opencite.store.errors import IndexError_
from opencite.store.registry import Registry
from opencite.settings import Settings

DEFAULT_KB = "default"
# Lower case only: names become folder names, and two KBs differing in case would share a folder
# on case-insensitive filesystems. Also a valid part of a Chroma collection name.
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,46}[a-z0-9])?")


class KnowledgeBaseError(IndexError_):
    """A KB name that is invalid, unknown or already taken (the message names the fix)."""


@dataclass(frozen=True)
class KnowledgeBase:
    name: str
    collection: str
    sources_file: Path
    created_at: str = ""
    # The stored sync schedule as given (`--every` or `--cron`, at most one); none: not scheduled.
    every: str | None = None
    cron: str | None = None

    @property
    def schedule(self) -> dict | None:
        """As stored: {"every": "1h"} or {"cron": "0 * * * *"}; None when not scheduled."""
        return {"every": self.every} if self.every else ({"cron": self.cron} if self.cron else None)

    @property
    def schedule_text(self) -> str:
        return f"every {self.every}" if self.every else (f"cron '{self.cron}'" if self.cron else "")


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise KnowledgeBaseError(
            f"Invalid knowledge base name {name!r}. Fix: use 1-48 lower-case letters, digits, '-' or '_', "
            "starting and ending with a letter or digit (no '/', '.', spaces or other path characters)."
        )
    return name


def kbs_dir(settings: Settings) -> Path:
    return settings.data_dir / "kbs"


def collection_of(settings: Settings, name: str) -> str:
    return settings.chroma.collection if name == DEFAULT_KB else f"{settings.chroma.collection}-{name}"


def record_path(settings: Settings, name: str) -> Path:
    """The KB's record: `kb.json` beside its sources file."""
    validate_name(name)
    return settings.data_dir / "kb.json" if name == DEFAULT_KB else kbs_dir(settings) / name / "kb.json"


def describe(settings: Settings, name: str) -> KnowledgeBase:
    """The KB's names, paths and stored schedule (whether or not it exists)."""
    record = _read_record(record_path(settings, name))
    sources = settings.data_dir / "sources.txt" if name == DEFAULT_KB else kbs_dir(settings) / name / "sources.txt"
    schedule = record.get("schedule") or {}
    return KnowledgeBase(name, collection_of(settings, name), sources, record.get("created_at", ""),
                         schedule.get("every"), schedule.get("cron"))


def _read_record(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _write_record(path: Path, record: dict) -> None:
    # A temporary file per writer, then one rename: the record appears whole or not at all.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    tmp.replace(path)


def _checked_schedule(every: str | None, cron: str | None) -> dict | None:
    """Checked with the sync's own parser; raises its ScheduleError (naming the input and the fix)."""
    from opencite.store.schedule import parse_schedule

    if every or cron:
        parse_schedule(every, cron)
    return {"every": every} if every else ({"cron": cron} if cron else None)


def exists(settings: Settings, name: str) -> bool:
    return name == DEFAULT_KB or (kbs_dir(settings) / validate_name(name) / "kb.json").is_file()


def kb_names(settings: Settings) -> list[str]:
    """`default` first, then the created KBs by name."""
    names = []
    if kbs_dir(settings).is_dir():
        names = sorted(p.parent.name for p in kbs_dir(settings).glob("*/kb.json") if _NAME.fullmatch(p.parent.name))
    return [DEFAULT_KB] + [n for n in names if n != DEFAULT_KB]


def list_kbs(settings: Settings) -> list[KnowledgeBase]:
    """`default` first, then the created KBs by name."""
    return [describe(settings, n) for n in kb_names(settings)]


def kb_settings(settings: Settings, name: str) -> Settings:
    """The settings of KB `name`, made from the base settings (those of `default`).
    Unknown names are refused with the command that creates them."""
    validate_name(name)
    if name == DEFAULT_KB:
        return settings
    if not exists(settings, name):
        raise KnowledgeBaseError(
            f"There is no knowledge base {name!r} in {settings.data_dir}. Fix: create it with "
            f"`opencite kb create {name}` (`opencite kb list` shows the existing ones)."
        )
    chroma = settings.chroma.model_copy(update={"collection": collection_of(settings, name)})
    return settings.model_copy(update={"chroma": chroma})


def create(settings: Settings, name: str, every: str | None = None, cron: str | None = None) -> KnowledgeBase:
    """A new, empty KB, with a sync schedule if `every` or `cron` is given (checked before anything is written)."""
    validate_name(name)
    if exists(settings, name):
        raise KnowledgeBaseError(f"The knowledge base {name!r} already exists. Fix: pick another name, or "
                                 f"`opencite kb delete {name}` first.")
    schedule = _checked_schedule(every, cron)
    folder = kbs_dir(settings) / name
    folder.mkdir(parents=True, exist_ok=True)
    kb = describe(settings, name)
    if not kb.sources_file.exists():
        kb.sources_file.write_text(f"# Sources of the knowledge base {name!r}: one URL or path per line.\n",
                                   encoding="utf-8")
    record = {"name": name, "collection": kb.collection,
              # Microseconds: a KB deleted and created again within a second is still a new KB
              # to the API's chain cache and to sync.
              "created_at": datetime.now(timezone.utc).isoformat(timespec="microseconds")}
    if schedule:
        record["schedule"] = schedule
    _write_record(folder / "kb.json", record)
    return describe(settings, name)


def set_schedule(settings: Settings, name: str, every: str | None = None, cron: str | None = None) -> KnowledgeBase:
    """Store the KB's sync schedule (neither `every` nor `cron`: remove it). Only this KB's record
    changes; an unknown KB or a schedule that does not parse changes nothing."""
    kb_settings(settings, name)  # unknown or invalid: refused with the fix
    schedule = _checked_schedule(every, cron)
    path = record_path(settings, name)
    record = _read_record(path) or {"name": name, "collection": collection_of(settings, name)}
    record.pop("schedule", None)
    if schedule:
        record["schedule"] = schedule
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_record(path, record)
    return describe(settings, name)


def delete(settings: Settings, name: str) -> KnowledgeBase:
    """Remove the KB's collection, records, registry rows, BM25 index, lock and folder — and
    nothing of any other KB. Refused while an ingest writes to it."""
    from opencite.store.bm25 import delete_bm25_index
    from opencite.store.index import drop_index, record_namespace, writer_lock

    validate_name(name)
    if name == DEFAULT_KB:
        raise KnowledgeBaseError("The knowledge base 'default' cannot be deleted. Fix: to empty it, run "
                                 "`opencite ingest --reindex` with a new source list.")
    kb_set = kb_settings(settings, name)
    kb = describe(settings, name)
    lock = writer_lock(kb_set)
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise KnowledgeBaseError(f"An ingest is writing to the knowledge base {name!r}. Fix: wait for it "
                                 "to finish, then delete again.") from exc
    try:
        drop_index(kb_set)
        if kb_set.index_dir.exists():
            Registry(kb_set.record_manager_url, record_namespace(kb_set)).clear()
        delete_bm25_index(kb_set)
        shutil.rmtree(kbs_dir(settings) / name)
    finally:
        lock.release()
    Path(lock.lock_file).unlink(missing_ok=True)
    return kb
