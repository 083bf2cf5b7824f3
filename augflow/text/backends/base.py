"""What every LLM backend takes and gives: requests in, `Generation`s out (a failed request is
`Generation(None, error)`, not an exception). Apart from the package's `build_backend` so that the
backend modules can import these without importing their own factory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class GenerationRequest:
    messages: list[dict[str, str]]          # for chat models
    prompt: str                             # the same content as flat text
    seed: int
    temperature: float = 0.7
    max_new_tokens: int = 64
    top_p: float = 0.95


@dataclass
class Generation:
    text: str | None
    error: str | None = None
    attempts: int = 1
    meta: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    kind: str
    model_id: str          # what identifies the model in cache keys

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]: ...


__all__ = ["GenerationRequest", "Generation", "Backend"]
