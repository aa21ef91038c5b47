"""A non-streamed answer in OpenAI's `chat.completion` shape, with opencite's extension fields
(citations, sources, attributions): what the API returns and what `opencite ask --json` prints."""

from __future__ import annotations

import time
import uuid

from opencite.app.api.stream import attribution_fields, finish_reason_of, source_json, usage_of


def completion_json(answer, model: str, completion_id: str | None = None, created: int | None = None) -> dict:
    annotations, attributions = attribution_fields(answer)
    return {
        "id": completion_id or f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": answer.answer, "refusal": None,
                        "annotations": annotations},
            "logprobs": None,
            "finish_reason": finish_reason_of(answer),
        }],
        "usage": usage_of(answer),
        "citations": [source_json(s) for s in answer.cited],
        "sources": [source_json(s) for s in answer.sources],
        "standalone_question": answer.standalone_question,
        "attributions": attributions,
    }
