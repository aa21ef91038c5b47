"""The eval set: one JSON object per line.

    {"id": "q1", "question": "...", "reference": "optional answer", "sources": ["/blog/x", "https://..."]}

`sources` absent: relevance unknown (no retrieval metrics). `sources: []`: the corpus does not
answer the question (the answer should say so). Path-only sources are joined onto `base_url`.
URLs are compared after `normalize_url`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit


class QuestionsError(ValueError):
    pass


@dataclass
class Question:
    id: str
    question: str
    reference: str | None = None
    sources: list[str] | None = None  # normalised absolute URLs; [] = not answerable

    @property
    def answerable(self) -> bool | None:
        return None if self.sources is None else bool(self.sources)


def normalize_url(url: str) -> str:
    """Scheme and host lower-cased, default port, fragment and trailing slash dropped
    (`HTTPS://Blog.Example/a/#x` == `https://blog.example/a`)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    if parts.username:
        host = f"{parts.username}@{host}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, host, path, parts.query, ""))


def resolve_source(source: str, base_url: str | None, where: str) -> str:
    if urlsplit(source).scheme:
        return normalize_url(source)
    if not base_url:
        raise QuestionsError(
            f"{where}: source {source!r} is a path without a site. Fix: pass --base-url "
            "(e.g. --base-url http://127.0.0.1:8765) or write full URLs.")
    return normalize_url(urljoin(base_url.rstrip("/") + "/", source.lstrip("/")))


def load_questions(path: Path, base_url: str | None = None) -> list[Question]:
    path = Path(path)
    if not path.is_file():
        raise QuestionsError(f"questions file {path} does not exist. Fix: give a .jsonl file, one question per line.")
    questions: list[Question] = []
    seen: set[str] = set()
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {line_no}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionsError(f"{where}: not JSON ({exc.msg}). Fix: one JSON object per line.") from exc
        if not isinstance(obj, dict):
            raise QuestionsError(f"{where}: expected a JSON object with 'id' and 'question'.")
        qid, text = obj.get("id"), obj.get("question")
        if qid is None or not isinstance(text, str) or not text.strip():
            raise QuestionsError(f"{where}: needs 'id' and a non-empty 'question'.")
        qid = str(qid)
        if qid in seen:
            raise QuestionsError(f"{where}: id {qid!r} is used twice. Fix: give every question its own id.")
        seen.add(qid)
        reference = obj.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise QuestionsError(f"{where}: 'reference' must be a string.")
        sources = obj.get("sources")
        if sources is not None:
            if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
                raise QuestionsError(f"{where}: 'sources' must be a list of URLs or paths.")
            sources = list(dict.fromkeys(resolve_source(s, base_url, where) for s in sources))
        questions.append(Question(qid, text.strip(), reference, sources))
    if not questions:
        raise QuestionsError(f"{path} holds no questions.")
    return questions
