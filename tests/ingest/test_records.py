"""The record manager's batched `update` writes what LangChain's own writes, and the registry's
batched `put` replaces rows as one-by-one puts did — on a SQLite file (the default) and on a real
PostgreSQL server (the records URL several hosts share)."""

from __future__ import annotations

import time
import uuid

import pytest
from langchain_classic.indexes import SQLRecordManager
from sqlalchemy import text

from opencite.ingest.records import RecordManager
from opencite.ingest.registry import Registry, SourceRecord


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
