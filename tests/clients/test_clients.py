"""The notebook's client snippets against both local CPU engines: `opencite serve --engine cpu`
serving the tiny model, and llama.cpp serving the tiny GGUF."""

from __future__ import annotations

import pytest

from tests.fixtures.clients import CLIENTS


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["cpu_engine", "llamacpp_engine"])
@pytest.mark.parametrize("snippet", list(CLIENTS))
def test_notebook_snippet_gets_text_from_the_engine(snippet, engine, request):
    text = CLIENTS[snippet](request.getfixturevalue(engine))
    assert isinstance(text, str)
    assert text.strip(), f"{snippet} returned no text from {engine}"
