"""The judge through the ScriptedLLMDouble (a real OpenAI-compatible HTTP server)."""

import pytest
from pydantic import SecretStr

from opencite.serving.endpoint import LLMEndpoint
from opencite.eval.judge import PROMPT_DIR, SCALES, Judge, judge_endpoint, parse_verdict, render
from tests.conftest import free_port


def _judge(scripted_llm):
    return Judge(LLMEndpoint(scripted_llm.base_url, scripted_llm.api_key, scripted_llm.model), timeout=10)


def test_prompts_are_files_in_the_repository():
    for criterion in SCALES:
        text = (PROMPT_DIR / f"judge_{criterion}.md").read_text()
        assert "{answer}" in text and '"score"' in text


def test_grade_sends_the_filled_prompt_and_keeps_the_raw_verdict(scripted_llm):
    scripted_llm.reply('Sure. {"score": 4, "reason": "one claim lacks support"}')
    v = _judge(scripted_llm).grade("faithfulness", question="Q?", answer="A [1].", context="[1] ctx")
    assert v.score == 4 and v.reason == "one claim lacks support" and v.error is None
    assert v.raw == 'Sure. {"score": 4, "reason": "one claim lacks support"}'
    body = scripted_llm.requests[-1]
    assert body["model"] == scripted_llm.model and body["temperature"] == 0
    prompt = body["messages"][0]["content"]
    assert "<context>\n[1] ctx\n</context>" in prompt and "<answer>\nA [1].\n</answer>" in prompt


def test_placeholders_inside_values_are_not_expanded():
    text = render("correctness", question="{reference}", answer="x", reference="REF")
    assert "<question>\n{reference}\n</question>" in text and text.count("REF") == 1


def test_grade_answer_picks_criteria_per_question(scripted_llm):
    scripted_llm.reply('{"score": 1}')
    j = _judge(scripted_llm)
    assert set(j.grade_answer("q", "a", "c", None, True)) == {"faithfulness", "relevance"}
    assert set(j.grade_answer("q", "a", "c", "ref", None)) == {"faithfulness", "relevance", "correctness"}
    assert set(j.grade_answer("q", "a", "c", None, False)) == {"faithfulness", "relevance", "abstention"}


@pytest.mark.parametrize("raw,score,error", [
    ('{"score": 5, "reason": "ok"}', 5.0, None),
    ('```json\n{"score": "3"}\n```', 3.0, None),
    ("score: 2 because", 2.0, None),
    ("I cannot grade this.", None, "no score"),
    ('{"score": 9}', None, "outside 1-5"),
])
def test_parse_verdict(raw, score, error):
    v = parse_verdict("relevance", raw)
    assert v.score == score and v.raw == raw
    assert (v.error is None) if error is None else (error in v.error)


def test_unreachable_judge_is_recorded_not_raised(scripted_llm):
    scripted_llm.fail(500)
    v = _judge(scripted_llm).grade("relevance", question="q", answer="a")
    assert v.score is None and "judge request failed" in v.error


def test_judge_endpoint_is_the_serving_llm_unless_configured(settings, scripted_llm):
    settings.llm.base_url = scripted_llm.base_url
    settings.llm.model = "served-model"
    settings.llm.context_window = 4096
    ep = judge_endpoint(settings)
    assert ep.base_url.rstrip("/") == scripted_llm.base_url.rstrip("/") and ep.model == "served-model"
    settings.eval.judge_base_url = scripted_llm.base_url
    settings.eval.judge_api_key = SecretStr("judge-key")
    ep = judge_endpoint(settings)  # no judge_model: the judge server's first listed model
    assert ep.model == scripted_llm.model and ep.api_key == "judge-key"


def test_a_judge_that_lists_no_model_asks_for_one(settings):
    settings.eval.judge_base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(ValueError, match=r"lists no model \(nothing answers.*OPENCITE_EVAL__JUDGE_MODEL"):
        judge_endpoint(settings)
