"""Per-source records of what the index holds: one row per indexed page.

Lives in the record manager's database (SQLAlchemy), namespaced by collection. It is written
LAST for a page (after the vector store and the record manager), so after a crash it can only
lag behind the index — the next run then re-indexes that page, which embeds nothing new.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import (Column, Integer, MetaData, String, Table, bindparam, create_engine, delete, inspect, select,
                        text)
from sqlalchemy.engine import Engine

_meta = MetaData()
sources_table = Table(
    "opencite_sources",
    _meta,
    Column("namespace", String, primary_key=True),
    Column("url", String, primary_key=True),  # the source key every chunk carries (constants.SOURCE)
    Column("requested_url", String, index=True),  # as listed by the user: matches re-runs and --prune
    Column("title", String),
    Column("etag", String),
    Column("last_modified", String),
    Column("content_hash", String),
    Column("chunks", Integer),
    Column("fetched_at", String),
    Column("outcome", String),
    Column("reason", String),
    Column("lastmod", String),  # the sitemap's <lastmod> when the page was last fetched successfully
    Column("failed_at", String),  # the last failed fetch or extraction (reason in `reason`)
    Column("gone", Integer),  # 404/410 answers in a row (pruned at 2)
)
# Columns added after the first release: added to an older table in place (all nullable).
_ADDED = {"lastmod": "VARCHAR", "failed_at": "VARCHAR", "gone": "INTEGER"}


@dataclass
class SourceRecord:
    url: str
    requested_url: str
    title: str = ""
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str = ""
    chunks: int = 0
    fetched_at: str = ""
    outcome: str = ""
    reason: str = ""
    lastmod: str | None = None
    failed_at: str | None = None
    gone: int = 0


class Registry:
    def __init__(self, db_url: str, namespace: str, engine: Engine | None = None) -> None:
        self.namespace = namespace
        self.engine = engine or create_engine(db_url)
        _meta.create_all(self.engine)
        present = {c["name"] for c in inspect(self.engine).get_columns(sources_table.name)}
        with self.engine.begin() as conn:
            for name, sql_type in _ADDED.items():
                if name not in present:
                    conn.execute(text(f"ALTER TABLE {sources_table.name} ADD COLUMN {name} {sql_type}"))

    def all(self) -> list[SourceRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(sources_table).where(sources_table.c.namespace == self.namespace).order_by(sources_table.c.url)
            ).mappings()
            return [_record(row) for row in rows]

    def get(self, url: str) -> SourceRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(sources_table).where(
                    sources_table.c.namespace == self.namespace, sources_table.c.url == url
                )
            ).mappings().first()
            return _record(row) if row else None

    def by_requested(self) -> dict[str, SourceRecord]:
        """requested URL -> record (the most recent when several listed URLs led to one page)."""
        return {r.requested_url: r for r in sorted(self.all(), key=lambda r: r.fetched_at)}

    def put(self, *records: SourceRecord) -> None:
        """Insert or replace records, all in one transaction (one commit for a whole re-run's
        unchanged pages rather than one each)."""
        if not records:
            return
        # Two executemany statements, compiled once: a statement per row built with `.values()`
        # is compiled afresh every time, which cost ~3 ms a page at index-build speed.
        rows = list({r.url: dict(asdict(r), namespace=self.namespace) for r in records}.values())
        with self.engine.begin() as conn:
            conn.execute(
                delete(sources_table).where(
                    sources_table.c.namespace == bindparam("ns"), sources_table.c.url == bindparam("key")
                ),
                [{"ns": self.namespace, "key": row["url"]} for row in rows],
            )
            conn.execute(sources_table.insert(), rows)

    def delete(self, url: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(sources_table).where(
                    sources_table.c.namespace == self.namespace, sources_table.c.url == url
                )
            )

    def clear(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sources_table).where(sources_table.c.namespace == self.namespace))


def _record(row) -> SourceRecord:
    data = {k: row[k] for k in SourceRecord.__dataclass_fields__}
    data["gone"] = data["gone"] or 0
    return SourceRecord(**data)
