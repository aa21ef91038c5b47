"""Knowledge bases as models of the RAG API.

Every KB is the model `<api.model_id>/<kb>` (`opencite-rag/docs`); the bare `opencite-rag` is
the API's default KB (`opencite api --kb`, else `default`). A key sees only the models of its
KBs: others answer exactly like unknown ones (404 `model_not_found`), so a key cannot learn
which KBs exist. One `RagChain` per KB, opened on first use and sharing one embedder.
"""

from __future__ import annotations

import functools
import os

import anyio

from opencite.app.api.errors import APIError
from opencite.app.api.keys import ApiKey
from opencite.store import kb as kbs
from opencite.settings import Settings


class KbModels:
    def __init__(self, settings: Settings, default_kb: str = kbs.DEFAULT_KB, default_chain=None,
                 open_chain=None):
        """`open_chain(kb_settings)` makes the chain of one KB (default: a `RagChain` over its
        index, sharing the default chain's embedder)."""
        self.settings = settings
        self.open_chain = open_chain or self._open
        self.base_id = settings.api.model_id
        self.default_kb = kbs.validate_name(default_kb)
        self.default_chain = default_chain
        # kb -> (its kb.json's stat, its creation time, chain): a KB deleted and made again gets a
        # new chain; the record is only read again when its stat changes (one stat per request).
        self._chains: dict[str, tuple[tuple | None, str, object]] = {}
        # Each request looks its KB's record up: its path is built (and the name checked) once.
        self._record_path = functools.lru_cache(maxsize=1024)(
            lambda kb: os.fspath(kbs.record_path(settings, kb)))

    def open_default(self):
        """The default KB's chain, its index opened now: a missing or locked index stops
        `opencite api` with its own message instead of failing every request later."""
        if self.default_chain is None:
            from opencite.app.rag.chain import RagChain

            chain = RagChain(kbs.kb_settings(self.settings, self.default_kb))
            chain.index  # noqa: B018
            self.default_chain = chain
        return self.default_chain

    def model_ids(self, key: ApiKey) -> list[str]:
        names = [k.name for k in kbs.list_kbs(self.settings) if key.allows(k.name)]
        return ([self.base_id] if self.default_kb in names else []) + [f"{self.base_id}/{n}" for n in names]

    def resolve(self, model: str, key: ApiKey) -> str:
        """The KB a model id names, if it exists and the key may read it; else 404 model_not_found."""
        return self._find(model, key)[0]

    async def answerer(self, model: str, key: ApiKey) -> tuple[str, object]:
        """(KB, its chain) for a model id, as `resolve`; the KB's record is looked at once."""
        kb, version = self._find(model, key)
        return kb, await self._chain(kb, version)

    def _find(self, model: str, key: ApiKey) -> tuple[str, tuple | None]:
        if model == self.base_id:
            kb = self.default_kb
        else:
            prefix, _, kb = model.partition("/")
            if prefix != self.base_id or not kb:
                raise self.not_found(model, key)
        if not key.allows(kb):
            raise self.not_found(model, key)
        if kb == kbs.DEFAULT_KB == self.default_kb and self.default_chain is not None:
            return kb, None  # always there, its chain opened at startup: nothing to look up
        try:
            version = self._record_version(kb)
        except kbs.KnowledgeBaseError:  # not a KB name at all
            raise self.not_found(model, key) from None
        # As kbs.exists: the default KB always exists, the others have a record.
        if version is None and kb != kbs.DEFAULT_KB:
            raise self.not_found(model, key)
        return kb, version

    async def _chain(self, kb: str, version: tuple | None):
        if kb == self.default_kb and self.default_chain is not None:
            return self.default_chain
        cached = self._chains.get(kb)
        if cached is not None and version is not None and cached[0] == version:
            return cached[2]
        created = kbs.describe(self.settings, kb).created_at
        if cached is not None and cached[1] == created:  # the record changed, not the KB (its schedule)
            chain = cached[2]
        else:
            chain = await anyio.to_thread.run_sync(self.open_chain, kbs.kb_settings(self.settings, kb))
        self._chains[kb] = (version, created, chain)
        return chain

    def _record_version(self, kb: str) -> tuple | None:
        """What changes when the KB's record is rewritten (records are replaced whole, see
        kbs.create); None when there is none."""
        try:
            stat = os.stat(self._record_path(kb))
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def _open(self, kb_set: Settings):
        from opencite.app.rag.chain import RagChain
        from opencite.store.index import open_index

        shared = self.default_chain.index.embeddings if self.default_chain is not None else None
        return RagChain(kb_set, index=open_index(kb_set, embeddings=shared))

    def not_found(self, model: str, key: ApiKey) -> APIError:
        return APIError(404, f"The model '{model}' does not exist or this API key may not use it. "
                        f"Models for this key: {', '.join(self.model_ids(key)) or 'none'} (GET /v1/models).",
                        code="model_not_found", param="model")
