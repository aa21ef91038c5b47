"""Feedback from the web chat (👍/👎, optional note) turned into an eval questions file.

The chat appends one line per vote to `<data_dir>/runtime/feedback.jsonl` (`app/ui/render.save_feedback`);
a later line for the same answer (a changed vote, a note added to a 👎) supersedes the earlier one.
Each answer becomes one question for `opencite eval run`:

- 👍: `reference` is the answer the user approved and `sources` its cited pages, so a later run is
  scored for correctness against it and for retrieving those pages.
- 👎: no `reference` and no `sources` (the user said it was wrong, not what is right); a reviewer
  fills them in from `answer_given`, `sources_shown` and `note`.

Extra keys (`rating`, `answer_given`, `sources_shown`, `cited_sources`, `note`, `kb`, `time`) ride
along; `eval run` ignores them.
"""

from __future__ import annotations

import json
from pathlib import Path

RATINGS = ("up", "down")


class FeedbackError(ValueError):
    pass


def read_feedback(path: Path) -> list[dict]:
    """The latest record per answer (by message id), in the order answers were first rated."""
    path = Path(path)
    if not path.is_file():
        raise FeedbackError(f"No feedback file at {path}. Fix: rate answers with 👍/👎 in the web chat "
                            "(`opencite ui`) first, or pass --feedback FILE.")
    latest: dict[str, dict] = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FeedbackError(f"{path} line {line_no}: not JSON ({exc.msg}). Fix: remove or repair that line "
                                "(the chat writes one JSON object per line).") from None
        key = str(record.get("message_id") or f"line-{line_no}")
        note = record.get("note") or (latest.get(key) or {}).get("note") or ""
        latest[key] = {**record, "note": note}
    return list(latest.values())


def to_question(record: dict) -> dict | None:
    rating = record.get("rating")
    question = record.get("standalone_question") or record.get("question")
    if rating not in RATINGS or not question:
        return None
    shown = record.get("sources") or []
    cited_n = set(record.get("cited") or [])
    cited = [s["url"] for s in shown if s.get("n") in cited_n]
    out = {"id": f"fb-{record.get('message_id') or abs(hash(question))}", "question": question}
    if rating == "up" and record.get("answer") and not record.get("error"):
        out["reference"] = record["answer"]
        if cited:
            out["sources"] = list(dict.fromkeys(cited))
    out.update({
        "rating": rating,
        "note": record.get("note") or "",
        "answer_given": record.get("answer") or "",
        "sources_shown": [s.get("url") for s in shown],
        "cited_sources": cited,
        "asked": record.get("question"),
        "kb": record.get("kb") or "default",
        "time": record.get("time"),
    })
    return out


def export_questions(feedback: Path, out: Path, *, ratings: tuple[str, ...] = RATINGS,
                     kb: str | None = None) -> list[dict]:
    """Write the questions file (whole or not at all) and return its questions."""
    questions = []
    for record in read_feedback(feedback):
        q = to_question(record)
        if q is not None and q["rating"] in ratings and (kb is None or q["kb"] == kb):
            questions.append(q)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions), encoding="utf-8")
    tmp.replace(out)
    return questions
