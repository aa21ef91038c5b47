"""The record manager's batched `update` writes what LangChain's own writes, and the registry's
batched `put` replaces rows as one-by-one puts did — on a SQLite file (the default) and on a real
PostgreSQL server (the records URL several hosts share)."""

from __future__ import annotations

import time
import uuid

import pytest
from langchain_classic.indexes import SQLRecordManager
from sqlalchemy import inspect, text

from opencite.store.records import REDUNDANT_INDEXES, TABLE, RecordManager
from opencite.store.registry import Registry, SourceRecord


def _rows(rm) -> set[tuple]:
    with rm.engine.connect() as conn:
        return set(conn.execute(text("SELECT key, namespace, group_id FROM upsertion_record")).all())


@pytest.fixture(params=["sqlite", "postgresql"])
def new_records_url(request, tmp_path):
    """Makes a records database URL, each call a new, empty database."""
    if request.param == "postgresql":
        return request.getfixturevalue("new_postgres_database")
    return lambda: f"sqlite:///{tmp_path / uuid.uuid4().hex}.sqlite"


@pytest.fixture
def managers(new_records_url):
    ours = RecordManager("chroma/docs", db_url=new_records_url())
    theirs = SQLRecordManager("chroma/docs", db_url=new_records_url())
    for rm in (ours, theirs):
        rm.create_schema()
    return ours, theirs


def test_update_matches_langchains(managers):
    ours, theirs = managers
    for rm in (ours, theirs):
        rm.update(["a", "b", "c"], group_ids=["p1", "p1", "p2"])
        rm.update(["b", "d"], group_ids=["p3", "p3"])  # b moves to another group
        rm.update(["e"])  # no group
    assert _rows(ours) == _rows(theirs)
    assert ours.list_keys(group_ids=["p3"]) == theirs.list_keys(group_ids=["p3"]) == ["b", "d"]


def test_update_moves_the_time_forward_and_cleanup_sees_it(managers):
    ours, _ = managers
    ours.update(["a", "b"], group_ids=["p", "p"])
    time.sleep(0.01)  # the database clock has millisecond steps
    start = ours.get_time()
    ours.update(["b"], group_ids=["p"], time_at_least=start)
    # what an incremental cleanup deletes: the page's keys not written since `start`
    assert ours.list_keys(group_ids=["p"], before=start) == ["a"]


def test_update_refuses_a_clock_behind_the_run(managers):
    ours, _ = managers
    with pytest.raises(AssertionError, match="Time sync"):
        ours.update(["a"], time_at_least=ours.get_time() + 3600)
    assert ours.list_keys() == []


def test_create_schema_drops_langchains_duplicate_indexes_and_keeps_the_rows(new_records_url):
    url = new_records_url()
    theirs = SQLRecordManager("chroma/docs", db_url=url)  # a database made before the indexes went
    theirs.create_schema()
    theirs.update(["a", "b"], group_ids=["p", "p"])
    assert set(REDUNDANT_INDEXES) <= {ix["name"] for ix in inspect(theirs.engine).get_indexes(TABLE)}

    ours = RecordManager("chroma/docs", db_url=url)
    ours.create_schema()
    ours.create_schema()  # every writer's open_index asks again
    left = {ix["name"] for ix in inspect(ours.engine).get_indexes(TABLE)}
    assert not left & set(REDUNDANT_INDEXES)
    assert {"ix_upsertion_record_group_id", "ix_upsertion_record_updated_at"} <= left
    assert [u["column_names"] for u in inspect(ours.engine).get_unique_constraints(TABLE)] == [["key", "namespace"]]
    assert ours.exists(["a", "b", "c"]) == [True, True, False]
    ours.update(["a"], group_ids=["q"])  # the upsert still finds its conflict target
    assert ours.list_keys(group_ids=["q"]) == ["a"] and ours.list_keys(group_ids=["p"]) == ["b"]


def test_a_sqlite_records_database_answers_key_lookups_from_an_index(tmp_path):
    ours = RecordManager("chroma/docs", db_url=f"sqlite:///{tmp_path / 'records.sqlite'}")
    ours.create_schema()
    with ours.engine.connect() as conn:
        plan = " ".join(row[-1] for row in conn.execute(text(
            f"EXPLAIN QUERY PLAN SELECT key FROM {TABLE} WHERE key IN ('a', 'b') AND namespace = 'chroma/docs'")))
    assert "INDEX" in plan and "SCAN" not in plan, plan


def test_new_records_get_primary_keys_that_grow_with_time(managers):
    """New rows append to the primary-key index instead of landing on a random page of it."""
    ours, _ = managers
    ours.update(["a", "b"], group_ids=["p", "p"])
    time.sleep(0.01)
    ours.update(["c"], group_ids=["p"])
    with ours.engine.connect() as conn:
        uuids = dict(conn.execute(text(f"SELECT key, uuid FROM {TABLE}")).all())
    assert max(uuids["a"], uuids["b"]) < uuids["c"]
    assert all(uuid.UUID(u).version == 7 for u in uuids.values())


def test_a_sqlite_records_database_runs_in_wal_mode(tmp_path):
    ours = RecordManager("chroma/docs", db_url=f"sqlite:///{tmp_path / 'records.sqlite'}")
    ours.create_schema()
    with ours.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_registry_put_replaces_rows_in_one_call(new_records_url):
    url = new_records_url()
    registry = Registry(url, "chroma/docs")
    registry.put(SourceRecord("https://a", "https://a", chunks=1), SourceRecord("https://b", "https://b", chunks=2))
    registry.put(SourceRecord("https://b", "https://b", chunks=5, title="new"),
                 SourceRecord("https://c", "https://c", chunks=3),
                 SourceRecord("https://c", "https://c", chunks=4))  # the later of two rows for one URL wins
    rows = {r.url: (r.chunks, r.title) for r in registry.all()}
    assert rows == {"https://a": (1, ""), "https://b": (5, "new"), "https://c": (4, "")}
    other = Registry(url, "chroma/other")
    other.put(SourceRecord("https://a", "https://a", chunks=9))
    assert registry.get("https://a").chunks == 1  # namespaces stay apart
