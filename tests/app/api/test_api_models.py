"""KbModels without HTTP: which KB a model id names for a key, and which chain answers it, as KBs
are created, rescheduled, deleted and made again while the API runs (the per-request look-up is a
stat of the KB's record; these check that it still notices every change)."""

from __future__ import annotations

import anyio
import pytest

from opencite.app.api.errors import APIError
from opencite.app.api.keys import OPEN_ACCESS, ApiKey
from opencite.app.api.models import KbModels
from opencite.store import kb


class OpenedChains:
    """Stands in for opening a KB's RagChain: a new object per call, remembering the KB's collection."""

    def __init__(self):
        self.opened: list[str] = []

    def __call__(self, kb_settings):
        self.opened.append(kb_settings.chroma.collection)
        return object()


@pytest.fixture
def models(settings):
    opened = OpenedChains()
    return KbModels(settings, default_chain=object(), open_chain=opened), opened


def chain(models: KbModels, model: str, key=OPEN_ACCESS):
    kb, found = anyio.run(models.answerer, model, key)
    assert kb == models.resolve(model, key)
    return found


def not_found(models: KbModels, model: str, key=OPEN_ACCESS) -> None:
    with pytest.raises(APIError) as err:
        models.resolve(model, key)
    assert err.value.status == 404 and err.value.code == "model_not_found"
    with pytest.raises(APIError) as err:
        anyio.run(models.answerer, model, key)
    assert err.value.status == 404 and err.value.code == "model_not_found"


def test_a_kb_chain_is_opened_once_and_kept_across_a_schedule_change(settings, models):
    m, opened = models
    not_found(m, "opencite-rag/docs")  # not yet created: found once it is, without a restart
    kb.create(settings, "docs")
    first = chain(m, "opencite-rag/docs")
    assert chain(m, "opencite-rag/docs") is first
    kb.set_schedule(settings, "docs", every="1h")  # the record is rewritten; the KB is the same
    assert chain(m, "opencite-rag/docs") is first
    assert opened.opened == ["opencite-docs"]


def test_a_kb_deleted_is_gone_and_made_again_at_once_gets_a_new_chain(settings, models):
    m, opened = models
    kb.create(settings, "docs")
    first = chain(m, "opencite-rag/docs")
    kb.delete(settings, "docs")
    not_found(m, "opencite-rag/docs")
    kb.create(settings, "docs")  # well within the same second
    second = chain(m, "opencite-rag/docs")
    assert second is not first and chain(m, "opencite-rag/docs") is second
    assert opened.opened == ["opencite-docs", "opencite-docs"]


@pytest.mark.parametrize("model", ["opencite-rag", "opencite-rag/default", "opencite-rag/blog",
                                   "opencite-rag/nope", "opencite-rag/../docs", "opencite-rag/Docs", "gpt-4o"])
def test_a_scoped_key_resolves_only_its_own_kbs(settings, models, model):
    m, _ = models
    for name in ("docs", "blog"):
        kb.create(settings, name)
    docs_only = ApiKey("docs-team", frozenset({"docs"}))
    assert m.resolve("opencite-rag/docs", docs_only) == "docs"
    not_found(m, model, docs_only)
    if model in ("opencite-rag", "opencite-rag/default", "opencite-rag/blog"):
        assert m.resolve(model, OPEN_ACCESS) in ("default", "blog")
