"""LLM backends for rewriting: a local transformers model directory, or an OpenAI-compatible endpoint.

A backend turns generation requests into texts; a failed request gives `Generation(None, error)`
instead of raising, so the rewriter can fall back to the original text and keep evaluating.
"""

from __future__ import annotations

from typing import Any

from augflow.text.backends.base import Backend, Generation, GenerationRequest


def build_backend(config: dict[str, Any]) -> Backend:
    """A backend from its YAML mapping: `{kind: transformers, model: DIR, ...}` or `{kind: openai, ...}`."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind in ("transformers", "local"):
        from augflow.text.backends.local import TransformersBackend
        return TransformersBackend(**config)
    if kind in ("openai", "http"):
        from augflow.text.backends.http import OpenAIBackend
        return OpenAIBackend(**config)
    raise ValueError(f"backend kind must be 'transformers' (a local model directory) or 'openai' "
                     f"(an OpenAI-compatible HTTP endpoint), got {kind!r}")


__all__ = ["GenerationRequest", "Generation", "Backend", "build_backend"]
