"""Table rows as evidence: a row speaks for the thing its first cell names, and each of its cells
for the column above it ("the same place" of a figure, for a table).

A table row window (a row, with its table's header row as context; see `sentences`) holds figures
of many columns and names only one row's thing, while a claim's names are otherwise looked for in
the whole source. So, for a claim that names some row of the table (by its first cell):
- `off_row`: a window of rows none of which it names is about other things ("Gemini 1.0 Pro"
  beside "Gemini 1.5 Pro"): it neither supports nor contradicts the claim;
- `cell_conflict`: in a row it names, the cell under the one column it names holds figures and
  none of the claim's is among them: the claim is contradicted there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from opencite.app.citations.figures import Figure, figure_found, figures_in
from opencite.app.citations.names import Name, flat, name_found, name_haystack

_TAG = re.compile(r"<[^>]*>")
_ASIDE = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


@dataclass(frozen=True)
class TableRows:
    """A window's rows (as written) under their header row, and the first cells of every row of
    that table in the source (what the table is about)."""

    header: str
    rows: tuple[str, ...]
    keys: tuple[str, ...]


def cells(row: str) -> list[str]:
    return [c.strip() for c in _CELL_SPLIT.split(row.strip().strip("|"))]


@lru_cache(maxsize=8192)
def label(cell: str) -> str:
    """What a cell names, without markup, asides and footnote marks: "**Idefics2** (w/o im.
    split)*" -> "Idefics2", "<nobr>DocVQA <br>(test)</nobr>" -> "DocVQA"; "" when that has fewer
    than two letters (a figure, a mark, an empty cell)."""
    text = _ASIDE.sub(" ", _TAG.sub(" ", cell)).replace("*", " ").replace("`", " ").replace("_", " ")
    text = " ".join(text.split())
    return text if len(re.findall(r"[^\W\d_]", text)) >= 2 else ""


def _named(claim: str, labels) -> list[str]:
    """The labels the claim writes, whole (as names compare: any case and separators)."""
    hay = _claim_haystack(claim)
    return [x for x in labels if x and name_found(Name(x, (flat(x),), ""), hay)]


@lru_cache(maxsize=4096)
def _claim_haystack(claim: str) -> str:
    return name_haystack(claim)


@lru_cache(maxsize=8192)
def named_rows(claim: str, keys: tuple[str, ...]) -> frozenset[str]:
    """The row names (labels of the first cells) the claim writes: whole, or by their first word
    when it writes no whole name starting with that word ("Gemini" for both "Gemini 1.0 Pro" and
    "Gemini 1.5 Pro"; after "Gemini 1.5 Pro", only that one)."""
    labels = sorted({label(k) for k in keys} - {""})
    whole = set(_named(claim, labels))
    firsts = {x.split()[0] for x in whole}
    loose = [x for x in labels if x not in whole and " " in x and x.split()[0] not in firsts
             and len(x.split()[0]) >= 3]
    by_first = set(_named(claim, sorted({x.split()[0] for x in loose})))
    return frozenset(whole | {x for x in loose if x.split()[0] in by_first})


def off_row(claim: str, table: TableRows) -> bool:
    """The claim names a row of the table, and none of this window's."""
    named = named_rows(claim, table.keys)
    return bool(named) and not named & {label(cells(r)[0]) for r in table.rows}


def cell_conflict(claim: str, figures: tuple[Figure, ...], table: TableRows) -> tuple[str, str] | None:
    """(the claim's figures, "row, column: cell") when a row of the window the claim names holds,
    under the one column the claim names, figures none of the claim's is among; else None."""
    if not figures:
        return None
    head = cells(table.header)
    columns = [i for i in range(1, len(head)) if _named(claim, [label(head[i])])]
    if len(columns) != 1:
        return None
    named = named_rows(claim, table.keys)
    for row in map(cells, table.rows):
        if len(row) != len(head) or label(row[0]) not in named:
            continue
        key = flat(row[0])
        own = tuple(f for f in figures if flat(f.text) not in key)  # not the "1.5" of "Gemini 1.5 Pro"
        stated = figures_in(row[columns[0]])
        if own and stated and not any(figure_found(f, stated) for f in own):
            return ", ".join(f.text for f in own), f"{label(row[0])}, {label(head[columns[0]])}: {row[columns[0]]}"
    return None


_NO = frozenset({"❌", "✗", "✘", "✖", "no", "false"})


def says_no(table: TableRows) -> bool:
    """A cell of the window's rows says "no" (❌, ✗, "no", "false"): a negative the rows state."""
    return any(_cell_value(cell) in _NO for row in table.rows for cell in cells(row)[1:])


def _cell_value(cell: str) -> str:
    return _TAG.sub(" ", cell).replace("*", " ").strip().lower()
