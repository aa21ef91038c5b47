"""`opencite eval compare A.json B.json`: two runs' summaries side by side with B - A."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table


class CompareError(ValueError):
    pass


def load_summary(path: Path) -> dict[str, float | int | None]:
    """The numeric figures of an `eval run` results.json (summary) or `eval beir` result (metrics)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CompareError(f"{path} does not exist. Fix: give the results.json of a run.") from exc
    except json.JSONDecodeError as exc:
        raise CompareError(f"{path} is not JSON ({exc.msg}).") from exc
    body = data.get("summary") if isinstance(data, dict) else None
    if body is None and isinstance(data, dict):
        body = data.get("metrics")
    if not isinstance(body, dict):
        raise CompareError(f"{path} has no 'summary' (eval run) or 'metrics' (eval beir). Fix: give a results.json.")
    return dict(flatten_numbers(body))


def flatten_numbers(d: dict, prefix: str = ""):
    """("section.metric", number or None) for every figure of a nested summary."""
    for key, value in d.items():
        if isinstance(value, dict):
            yield from flatten_numbers(value, f"{prefix}{key}.")
        elif value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            yield f"{prefix}{key}", value


def compare_rows(a: dict, b: dict) -> list[tuple[str, object, object, float | None]]:
    rows = []
    for key in list(dict.fromkeys([*a, *b])):
        va, vb = a.get(key), b.get(key)
        diff = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
        rows.append((key, va, vb, diff))
    return rows


def _fmt(v) -> str:
    if v is None:
        return "–"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def compare_table(path_a: Path, path_b: Path) -> Table:
    rows = compare_rows(load_summary(path_a), load_summary(path_b))
    table = Table("metric", f"A {Path(path_a).parent.name or path_a}", f"B {Path(path_b).parent.name or path_b}", "B - A",
                  title="eval compare")
    for key, va, vb, diff in rows:
        # Latency and error counts are better lower; everything else better higher.
        lower_better = key.startswith("latency.") or key == "errors" or key.endswith("_unreadable") \
            or key.endswith("cites_anyway")
        style = ""
        if diff:
            style = "green" if (diff < 0) == lower_better else "red"
        shown = "–" if diff is None else (f"{diff:+.3f}" if isinstance(diff, float) else f"{diff:+d}")
        table.add_row(key, _fmt(va), _fmt(vb), f"[{style}]{shown}[/{style}]" if style else shown)
    return table
