"""Trainers for the models augflow ships, sharing checkpoint/progress helpers (`common`).

Imports are lazy so that `import augflow.train` stays cheap for code that only needs one trainer.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "train_histaug": "augflow.train.histaug",
    "save_checkpoint": "augflow.train.common",
    "load_checkpoint": "augflow.train.common",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'augflow.train' has no attribute {name!r}")


__all__ = list(_EXPORTS)
