"""Property-based requests generated from the API's own OpenAPI schema: none may cause a 5xx.

In-process through the ASGI app, with the real chain over a small index and the scripted LLM
double behind it (bounded examples so this stays well under a minute).
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from opencite.app.api.server import create_app


pytestmark = pytest.mark.slow  # hundreds of generated requests


def test_schema_generated_requests_cause_no_server_errors(llm_settings, scripted_llm):
    # Imported here: hypothesis takes seconds to import, and the fast tier never runs this test.
    import schemathesis
    from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

    from opencite.app.rag.chain import RagChain

    llm_settings.llm.api_key = SecretStr(scripted_llm.api_key)
    scripted_llm.reply("Paris is the capital of France [1].")
    app = create_app(llm_settings, chain=RagChain(llm_settings))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/chat/completions", "/v1/models", "/health"}
    statuses: set[int] = set()

    for operation in operations:
        examples = 40 if operation.path == "/v1/chat/completions" else 5

        strategy = operation.as_strategy()
        if operation.path == "/v1/chat/completions":
            # Half the cases name the served model, so generation reaches the chain and the LLM.
            strategy = st.one_of(strategy, strategy.map(_with_served_model))

        @given(case=strategy)
        @hyp_settings(max_examples=examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call()
            statuses.add(response.status_code)
            assert response.status_code < 500, (operation.path, case.body, response.text)
            if response.status_code >= 400:
                assert set(response.json()["error"]) == {"message", "type", "param", "code"}

        run()
    assert 400 in statuses  # the generator did reach validation, not only happy paths
    assert scripted_llm.requests  # and some requests went all the way to the LLM


def _with_served_model(case):
    if isinstance(case.body, dict):
        case.body["model"] = "opencite-rag"
    return case
