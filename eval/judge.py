"""LLM-as-judge over any OpenAI-compatible endpoint.

The prompts are the `judge_<criterion>.md` files beside this module. Each asks for one JSON
object `{"score": n, "reason": "..."}`; the reply is kept verbatim (`raw`) next to the parsed
score so a surprising figure can be checked against what the judge said. A reply the parser
cannot read gives score None, never a guess.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from opencite.serving.endpoint import LLMEndpoint, resolve_llm
from opencite.settings import Settings

PROMPT_DIR = Path(__file__).parent
# criterion -> (lowest, highest) score on its scale
SCALES = {"faithfulness": (1, 5), "relevance": (1, 5), "correctness": (1, 5), "abstention": (0, 1)}
_PLACEHOLDER = re.compile(r"\{(question|context|answer|reference)\}")
_JSON_OBJECT = re.compile(r"\{.*?\}", re.DOTALL)
_SCORE = re.compile(r'"?score"?\s*[:=]\s*"?(\d+(?:\.\d+)?)', re.IGNORECASE)


@dataclass
class Verdict:
    criterion: str
    score: float | None  # on the criterion's own scale; None when the reply was unreadable
    reason: str | None
    raw: str | None  # the judge's reply, verbatim
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=None)
def prompt_template(criterion: str) -> str:
    return (PROMPT_DIR / f"judge_{criterion}.md").read_text(encoding="utf-8")


def render(criterion: str, **values: str) -> str:
    # One pass, so text inside a page or answer that looks like a placeholder stays as it is.
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1)) or "", prompt_template(criterion))


def parse_verdict(criterion: str, raw: str) -> Verdict:
    low, high = SCALES[criterion]
    score, reason = None, None
    for candidate in _JSON_OBJECT.findall(raw or ""):
        try:
            obj = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "score" in obj:
            score, reason = obj.get("score"), obj.get("reason")
            break
    if score is None:
        m = _SCORE.search(raw or "")
        score = m.group(1) if m else None
    try:
        score = float(score) if score is not None else None
    except (TypeError, ValueError):
        score = None
    if score is not None and not low <= score <= high:
        return Verdict(criterion, None, reason, raw, f"score {score:g} outside {low}-{high}")
    return Verdict(criterion, score, reason if isinstance(reason, str) else None, raw,
                   None if score is not None else "no score in the judge's reply")


def judge_endpoint(settings: Settings) -> LLMEndpoint:
    """The configured judge (settings.eval.judge_*), else the serving LLM the chain uses."""
    cfg = settings.eval
    if cfg.judge_base_url:
        key = cfg.judge_api_key.get_secret_value() if cfg.judge_api_key else "not-needed"
        model = cfg.judge_model
        if not model:
            found = LLMEndpoint(cfg.judge_base_url, key, "").probe(timeout=10)
            model = next(iter(found.models or []), None)
            if not model:
                raise ValueError(f"the judge at {cfg.judge_base_url} lists no model ({found.message}). "
                                 "Fix: set OPENCITE_EVAL__JUDGE_MODEL.")
        return LLMEndpoint(cfg.judge_base_url.rstrip("/"), key, model)
    ep = resolve_llm(settings)
    return LLMEndpoint(ep.base_url, ep.api_key, cfg.judge_model or ep.model)


class Judge:
    def __init__(self, endpoint: LLMEndpoint, timeout: float = 120.0, max_tokens: int = 256) -> None:
        self.endpoint = endpoint
        self.max_tokens = max_tokens
        self.client = endpoint.openai(timeout=timeout, max_retries=1)

    def grade(self, criterion: str, **values: str) -> Verdict:
        prompt = render(criterion, **values)
        try:
            reply = self.client.chat.completions.create(
                model=self.endpoint.model,
                messages=[{"role": "user", "content": prompt}],
                temperature=0,
                max_tokens=self.max_tokens,
            )
        except Exception as exc:  # an unreachable or failing judge is recorded, not fatal
            return Verdict(criterion, None, None, None, f"judge request failed: {exc}")
        raw = reply.choices[0].message.content or ""
        return parse_verdict(criterion, raw)

    def grade_answer(self, question: str, answer: str, context: str, reference: str | None,
                     answerable: bool | None) -> dict[str, Verdict]:
        """Every criterion that applies to this question."""
        verdicts = {
            "faithfulness": self.grade("faithfulness", question=question, answer=answer, context=context),
            "relevance": self.grade("relevance", question=question, answer=answer),
        }
        if reference:
            verdicts["correctness"] = self.grade("correctness", question=question, answer=answer, reference=reference)
        if answerable is False:
            verdicts["abstention"] = self.grade("abstention", question=question, answer=answer)
        return verdicts
