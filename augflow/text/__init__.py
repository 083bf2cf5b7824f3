"""Text augmentation with LLMs: in-context rewriting (`Rewriter`), backends, cache, meaning filter.

Heavy libraries (transformers, httpx, sentence-transformers) load only when a backend or filter
is used; `pip install augflow[llm]` brings them.
"""

from augflow.text.cache import RewriteCache
from augflow.text.prompt import Example, FewShotPrompt
from augflow.text.rewriter import Rewrite, Rewriter, RewriteStats

__all__ = ["Rewriter", "Rewrite", "RewriteStats", "FewShotPrompt", "Example", "RewriteCache", "MeaningFilter",
           "TransformersBackend", "OpenAIBackend"]


def __getattr__(name):
    if name == "MeaningFilter":
        from augflow.text.meaning import MeaningFilter
        return MeaningFilter
    if name == "TransformersBackend":
        from augflow.text.backends.local import TransformersBackend
        return TransformersBackend
    if name == "OpenAIBackend":
        from augflow.text.backends.http import OpenAIBackend
        return OpenAIBackend
    raise AttributeError(name)
