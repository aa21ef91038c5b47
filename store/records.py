"""The record manager: LangChain's SQL record manager, with one write made fit for large groups.

LangChain's `SQLRecordManager.update` builds one INSERT with a VALUES row per key through the ORM,
and SQLAlchemy compiles that statement afresh on every call: ~0.5 ms a key, about a third of what
an index build spent beyond Chroma's own time. `update` here writes the same rows (same table, same
upsert on (key, namespace), same clock and clock check) as one executemany of a statement compiled
once. Everything else (schema, reads, deletes, the other dialect checks) stays LangChain's.

`list_keys` by page (what every stored group asks, to find its pages' old chunks) is LangChain's
query with the namespace test written so no database can answer it from the namespace index:
SQLite's planner picked that index (one namespace holds every row) and scanned the whole
collection's records per group, 150 ms at 100k records against 13 ms through the group index.

A SQLite records database runs in WAL mode with synchronous=NORMAL: a commit then costs no fsync
of its own (a rollback journal fsyncs several times per commit, ~25 ms each on a busy disk, two
commits per stored group). A process killed at any point loses no committed transaction; only a
power cut can roll back the last few, which leaves Chroma ids without records — the strays that
`pages.reconcile` removes at the start of every run.

Two changes keep a write cheap as the records grow (a group of 256 keys written and its pages'
keys listed: 85 ms at 300k records before, 24 ms after). LangChain's schema indexes the primary
key, the key and (key, namespace) twice each: `create_schema` drops the three copies, and every
query LangChain or opencite runs is still answered by an index. The primary key was a random
uuid4, so each new row landed on a random page of the largest index; a uuid7 starts with the
time, so new rows append to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

from langchain_classic.indexes import SQLRecordManager
from sqlalchemy import MetaData, Table, event, select
from uuid_utils import uuid7

TABLE = "upsertion_record"  # LangChain's table name (also read directly by `pages.chunk_counts`)
# Copies of another index in LangChain's schema: of the primary key, of the unique (key, namespace)
# (twice: on key alone, and the same pair again).
REDUNDANT_INDEXES = ("ix_upsertion_record_uuid", "ix_upsertion_record_key", "ix_key_namespace")


class RecordManager(SQLRecordManager):
    def __init__(self, namespace: str, **kwargs) -> None:
        super().__init__(namespace, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_wal)

    def create_schema(self) -> None:
        super().create_schema()
        with self.engine.begin() as conn:  # also for databases made before the indexes were dropped
            for name in REDUNDANT_INDEXES:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")

    @cached_property
    def _table(self) -> Table:
        return Table(TABLE, MetaData(), autoload_with=self.engine)

    def update(
        self,
        keys: Sequence[str],
        *,
        group_ids: Sequence[str | None] | None = None,
        time_at_least: float | None = None,
    ) -> None:
        if group_ids is None:
            group_ids = [None] * len(keys)
        if len(keys) != len(group_ids):
            raise ValueError(f"Number of keys ({len(keys)}) does not match number of group_ids ({len(group_ids)})")
        update_time = self.get_time()  # the database's clock, checked as LangChain checks it
        if time_at_least and update_time < time_at_least:
            raise AssertionError(f"Time sync issue: {update_time} < {time_at_least}")
        if not keys:
            return
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            raise NotImplementedError(f"Unsupported dialect {self.dialect}")
        stmt = insert(self._table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key", "namespace"],
            set_={"updated_at": stmt.excluded.updated_at, "group_id": stmt.excluded.group_id},
        )
        # One row per key: a key twice in one statement would be upserted twice (PostgreSQL refuses).
        rows = {key: group for key, group in zip(keys, group_ids)}
        with self.engine.begin() as conn:
            conn.execute(stmt, [{"uuid": str(uuid7()), "key": key, "namespace": self.namespace,
                                 "group_id": group, "updated_at": update_time} for key, group in rows.items()])

    def list_keys(
        self,
        *,
        before: float | None = None,
        after: float | None = None,
        group_ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[str]:
        if not group_ids:
            return super().list_keys(before=before, after=after, limit=limit)
        t = self._table
        # `namespace || ''` equals the namespace but is no indexed column: the group index leads.
        query = select(t.c.key).where(t.c.group_id.in_(group_ids), t.c.namespace.concat("") == self.namespace)
        if after:
            query = query.where(t.c.updated_at > after)
        if before:
            query = query.where(t.c.updated_at < before)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())


def _sqlite_wal(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
