"""How eval reports progress: a step count the caller draws (the CLI draws rich bars,
opencite/cli/progress.py); tests and benchmarks pass nothing and see nothing."""

from __future__ import annotations

from typing import Protocol


class StepProgress(Protocol):
    def start(self, description: str, total: int) -> None: ...
    def advance(self, steps: int = 1) -> None: ...


class Silent:
    def start(self, description: str, total: int) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass
