"""Adaptive augmentation: policies the trainer feeds back through the loader (model in the loop).

    loader = pipe.compile(data, batch_size=64, shuffle=True, policy=augflow.adaptive.LossCurriculum())
    ...
    loader.feedback(batch, losses=per_sample_losses, features=optional_embeddings)

- `LossCurriculum`: magnitude per sample from its recent loss (easy-to-hard).
- `AugmentSubset`: augment only a facility-location coreset of per-sample last-layer gradients.
- `MADAug`: a policy network on model features picks op and magnitude, trained by one-step
  look-ahead on a held-out batch.
- `HardAugment`: a learned, bounded differentiable augmenter that maximises teacher-student
  disagreement (a batch op for distillation).
- `shifts`: crafted validation shifts per augmentation family and a family k-fold split.

The channel (decisions sent with the indices, feedback keyed by (index, epoch)) is
`augflow/compile/feedback.py`; a decision's meaning is `augflow/decision.py`.
"""

from __future__ import annotations

_LAZY = {
    "Policy": "augflow.adaptive.base",
    "LossCurriculum": "augflow.adaptive.loss_curriculum",
    "AugmentSubset": "augflow.adaptive.subset",
    "last_layer_gradients": "augflow.adaptive.subset",
    "MADAug": "augflow.adaptive.madaug",
    "HardAugment": "augflow.adaptive.hard",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'augflow.adaptive' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(module), name)


__all__ = list(_LAZY)
