"""Augmentation in latent space: ops on `embedding` fields.

    from augflow.latent import HistAug, train_histaug
    model = train_histaug(patches, encoder, "pipelines/histaug_patch.yaml", epochs=20, device="cuda")
    model.save("runs/histaug")        # then, in a pipeline: - histaug: {checkpoint: runs/histaug, mode: bag}

Imports are lazy: the op registry imports `augflow.latent.op` while augflow itself is loading.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "HistAug": "augflow.latent.model",
    "Vocabulary": "augflow.latent.vocab",
    "VocabularyError": "augflow.latent.vocab",
    "train_histaug": "augflow.train.histaug",
    "HistAugOp": "augflow.latent.op",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'augflow.latent' has no attribute {name!r}")


__all__ = list(_EXPORTS)
