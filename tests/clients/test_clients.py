"""The notebook's client snippets against both local CPU engines: `opencite serve --engine cpu`
serving the tiny model, and llama.cpp serving the tiny GGUF."""

from __future__ import annotations

import pytest

from tests.fixtures.clients import CLIENTS


@pytest.mark.slow
@pytest.mark.parametrize("snippet", list(CLIENTS))
def test_notebook_snippet_gets_text_from_cpu_engine(snippet, cpu_engine):
    text = CLIENTS[snippet](cpu_engine)
    assert isinstance(text, str)
    assert text.strip(), f"{snippet} returned no text"


@pytest.mark.slow
@pytest.mark.parametrize("snippet", list(CLIENTS))
def test_notebook_snippet_gets_text_from_llamacpp(snippet, llamacpp_engine):
    text = CLIENTS[snippet](llamacpp_engine)
    assert isinstance(text, str)
    assert text.strip(), f"{snippet} returned no text"
