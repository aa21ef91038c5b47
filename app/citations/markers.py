"""Citation markers: `[n]` (or `[n, m]`) checked against the numbered sources, in the stream.

`CitationFilter.feed()` holds text back from a `[` until the bracket closes (a marker: keep
the valid numbers, drop the rest and count them) or proves not to be a marker (a non-digit
arrives, e.g. a Markdown link `[text](url)`), so an invalid marker never reaches a client.
"""

from __future__ import annotations

import re

_MARKER_BODY = re.compile(r"^\s*\d+(\s*,\s*\d+)*\s*$")
# "[" + up to a few numbers; anything longer is not a citation marker.
_MAX_HOLD = 24


class CitationFilter:
    def __init__(self, n_sources: int) -> None:
        self.n_sources = n_sources
        self.cited: set[int] = set()
        self.dropped = 0
        self._held = ""

    def feed(self, text: str) -> str:
        """Text that is safe to emit now; a possible marker stays held."""
        out: list[str] = []
        for ch in text:
            if not self._held:
                if ch == "[":
                    self._held = "["
                else:
                    out.append(ch)
                continue
            if ch == "]":
                out.append(self._resolve(self._held + "]"))
                self._held = ""
            elif ch == "[":  # "[[1]" : the first "[" is plain text
                out.append(self._held)
                self._held = "["
            elif ch.isdigit() or ch in ", ":
                self._held += ch
                if len(self._held) > _MAX_HOLD:
                    out.append(self._held)
                    self._held = ""
            else:
                out.append(self._held + ch)
                self._held = ""
        return "".join(out)

    def flush(self) -> str:
        """End of stream: an unclosed "[12" is plain text, not a marker."""
        held, self._held = self._held, ""
        return held

    def _resolve(self, marker: str) -> str:
        body = marker[1:-1]
        if not _MARKER_BODY.match(body):
            return marker  # "[]" or "[ , ]": not a citation
        numbers = [int(x) for x in re.findall(r"\d+", body)]
        valid = [n for n in numbers if 1 <= n <= self.n_sources]
        self.dropped += len(numbers) - len(valid)
        self.cited.update(valid)
        return "[" + ", ".join(str(n) for n in valid) + "]" if valid else ""


def check_citations(text: str, n_sources: int) -> tuple[str, list[int], int]:
    """Whole-text version: (text with invalid markers removed, cited numbers sorted, dropped)."""
    f = CitationFilter(n_sources)
    clean = f.feed(text) + f.flush()
    return clean, sorted(f.cited), f.dropped
