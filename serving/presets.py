"""Model presets: one TOML data file (`presets.toml`) read into `Preset` objects."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, Field


class Preset(BaseModel):
    name: str
    model: str
    served_model_name: str
    context_window: int = Field(gt=0)
    engines: list[str]
    hardware: str
    dtype: str | None = None
    quantization: str | None = None
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int | None = None
    tool_call_parser: str | None = None
    hf_instance_type: str | None = None
    hf_instance_size: str | None = None
    # --engine llamacpp: a GGUF on the Hub (the first shard's name for a split file).
    gguf_repo: str | None = None
    gguf_file: str | None = None


class UnknownPresetError(ValueError):
    pass


@lru_cache
def load_presets() -> dict[str, Preset]:
    text = resources.files("opencite.serving").joinpath("presets.toml").read_text(encoding="utf-8")
    return {name: Preset(name=name, **table) for name, table in tomllib.loads(text).items()}


def get_preset(name: str) -> Preset:
    presets = load_presets()
    if name not in presets:
        raise UnknownPresetError(
            f"unknown serving preset {name!r}; choose one of {', '.join(sorted(presets))} "
            "(set OPENCITE_SERVE__PRESET or pass --preset)"
        )
    return presets[name]
