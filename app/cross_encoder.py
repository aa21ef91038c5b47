"""Cross-encoders, loaded once per process: retrieval reranks with one (app/rag/fusion.py) and the
citation checker can score support with one (app/citations/support.py)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=2)
def load_cross_encoder(model: str, device: str = "cpu", setting: str = "OPENCITE_RETRIEVAL__RERANKER_MODEL"):
    """A sentence-transformers CrossEncoder from a local folder or a hub id; a failure names the
    setting that chose the model."""
    from sentence_transformers import CrossEncoder

    try:
        return CrossEncoder(model, device=device)
    except Exception as exc:  # OSError, ValueError, HF hub errors...
        raise RuntimeError(
            f"Could not load the cross-encoder {model!r}: {exc}\nFix: set {setting} "
            "to a local CrossEncoder folder (or unset it to go without)."
        ) from exc
