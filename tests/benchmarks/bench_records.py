"""Record-manager writes as the records grow: opencite's `RecordManager` against LangChain's own
`SQLRecordManager` as it comes (rollback journal, its schema, uuid4 keys), each filling a fresh
SQLite file in the same run.

Each group is what `opencite ingest` asks of the records per stored group: `update` of 256 new keys
(pages of 10 chunks, so ~26 group ids) and `list_keys` of those pages. Prints the mean time per group
over each stretch of --every groups, the totals, the ratio opencite / LangChain and the database
sizes, and the 1-minute load average before and after (figures are "loaded" unless it stays
below ~1).

    python tests/benchmarks/bench_records.py [--records 200000] [--every 200]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from langchain_classic.indexes import SQLRecordManager

from opencite.store.records import RecordManager

GROUP = 256


def fill(manager, records: int, every: int) -> tuple[float, list[float]]:
    """Total seconds, and the mean seconds per group over each whole stretch of `every` groups."""
    manager.create_schema()
    times = []
    for g in range(records // GROUP):
        keys = [hashlib.sha256(f"{g}-{i}".encode()).hexdigest() for i in range(GROUP)]
        groups = [f"https://bench.example/post/{(g * GROUP + i) // 10}" for i in range(GROUP)]
        t = time.perf_counter()
        manager.update(keys, group_ids=groups)
        manager.list_keys(group_ids=sorted(set(groups)))
        times.append(time.perf_counter() - t)
    return sum(times), [sum(times[i:i + every]) / every for i in range(0, len(times) - every + 1, every)]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--every", type=int, default=200, help="groups per reported stretch")
    args = p.parse_args()
    load_before = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="opencite-records-"))
    totals = {}
    try:
        for name, cls in (("langchain", SQLRecordManager), ("opencite", RecordManager)):
            path = root / f"{name}.sqlite"
            totals[name], stretches = fill(cls("bench", db_url=f"sqlite:///{path}"), args.records, args.every)
            size = sum(f.stat().st_size for f in root.glob(f"{name}.sqlite*")) / 2**20
            curve = "  ".join(f"{(i + 1) * args.every * GROUP // 1000}k:{s * 1000:.0f}"
                              for i, s in enumerate(stretches))
            print(f"{name:>9}: {totals[name]:6.1f} s, {size:5.0f} MB;  ms per group at  {curve}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{args.records:,} records in groups of {GROUP}: opencite / langchain = "
          f"{totals['opencite'] / totals['langchain']:.2f}x  load avg 1-min before {load_before:.1f} / "
          f"after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
