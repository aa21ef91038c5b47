"""The ingest report stays readable at any size: failures grouped by reason with counts, the
first few of each shown; the JSON keeps every line."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from opencite.ingest.documents import Outcome
from opencite.ingest.report import IngestReport, SourceReport


def render(table) -> str:
    out = io.StringIO()
    Console(file=out, width=200).print(table)
    return out.getvalue()


@pytest.mark.slow  # 50,000 generated sources: the full suite runs it
def test_fifty_thousand_failures_make_a_short_table_and_a_full_json(tmp_path):
    report = IngestReport()
    for i in range(50_000):
        reason = "HTTP 404 Not Found" if i % 2 else "timed out: no complete answer within 20s"
        report.add(SourceReport(f"http://s.test/p{i}", f"http://s.test/p{i}", Outcome.FAILED, reason))
    report.add(SourceReport("http://s.test/ok", "http://s.test/ok", Outcome.NEW, "", "Fine post", 3))
    report.add(SourceReport("http://s.test/old", "http://s.test/old", Outcome.FAILED,
                            "HTTP 404 Not Found (kept its 7 indexed chunks)", "Old", 7))
    text = render(report.table(first=3))
    assert len(text.splitlines()) < 40
    assert "25001" in text and "25000" in text  # the 404 group holds the page that kept its chunks
    assert "… and 24998 more" in text and "… and 24997 more" in text
    assert "http://s.test/ok" in text and "Fine post, 3 chunks" in text
    assert text.index("new") < text.index("failed")
    report.write_json(tmp_path / "r.json")
    import json

    data = json.loads((tmp_path / "r.json").read_text())
    assert len(data["sources"]) == 50_002 and data["summary"]["failed"] == 50_001
    assert data["sources"][-1]["reason"].endswith("(kept its 7 indexed chunks)")
