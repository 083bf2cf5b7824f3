"""Which compile backend runs which op: the one table that `augflow ops` and `compile` both read.

The registry stores each op's backends in `OpSpec.backends` when the op registers, from this
table; `augflow.list_ops()`, `augflow ops` and the compiler's backend check
(`augflow/compile/backends/__init__.py`) read that field and nothing else. The implementations
follow the table, never the reverse: a Kornia kernel (`@kernel` in `augflow/ops/batch/kernels.py`)
may only be registered for an op declared `kornia` here, and tests/test_op_backends.py checks that
every declared op has its kernel or DALI translation.

- `albumentations`: the per-sample CPU path (albumentations through augflow's adapter, and
  augflow's own numpy ops) in loader workers. Every op has it, except ops that mix the images of a
  batch, which exist only in the batch stage.
- `kornia`: torch kernels with per-element parameters: the batch stage, on the loader's device.
  An op has it through a kernel in `augflow/ops/batch/kernels.py` or its own `apply_batch`.
- `dali`: the sample stage compiled into an NVIDIA DALI pipeline
  (`augflow/compile/backends/dali.py`).
"""

from __future__ import annotations

from typing import Any, Iterable

BACKENDS = ("albumentations", "kornia", "dali")
PER_SAMPLE = ("albumentations",)            # an op that is not in the table: Pipeline's own op.apply

_ALL = ("albumentations", "kornia", "dali")
_KORNIA = ("albumentations", "kornia")
_BATCH_ONLY = ("kornia",)

# canonical op name -> its backends, for every built-in op with more than the per-sample one
TABLE: dict[str, tuple[str, ...]] = {
    # Kornia kernels and DALI operators
    "albumentations.RandomResizedCrop": _ALL,
    "albumentations.Resize": _ALL,
    "albumentations.HorizontalFlip": _ALL,
    "albumentations.VerticalFlip": _ALL,
    "albumentations.ColorJitter": _ALL,
    "albumentations.Normalize": _ALL,
    "to_tensor": _ALL,
    # Kornia kernels only
    "albumentations.Affine": _KORNIA,
    "albumentations.ShiftScaleRotate": _KORNIA,
    "albumentations.Rotate": _KORNIA,
    "albumentations.ToGray": _KORNIA,
    # model-backed ops that batch their model calls (`apply_batch`)
    "augmented_conditioning": _KORNIA,
    "mask_conditioned_diffusion": _KORNIA,
    "day_to_night": _KORNIA,
    "night": _KORNIA,
    "histaug": _KORNIA,
    # ops that mix the images of a batch: the batch stage only
    "mixup": _BATCH_ONLY,
    "cutmix": _BATCH_ONLY,
    "resizemix": _BATCH_ONLY,
    "mosaic": _BATCH_ONLY,
    "copy_paste": _BATCH_ONLY,
}


def declared(name: str, cls: Any = None, backends: Iterable[str] | None = None) -> tuple[str, ...]:
    """The backends of the op `name`: `backends` when the op's `register` call names them (custom
    ops), else its row in TABLE, else the per-sample path (plus `kornia` for a class with its own
    `apply_batch`)."""
    if backends is not None:
        out = tuple(backends)
        unknown = [b for b in out if b not in BACKENDS]
        if unknown or not out:
            raise ValueError(f"op {name!r}: backends must be one or more of {', '.join(BACKENDS)}, got {list(out)}")
        if name in TABLE and out != TABLE[name]:
            raise ValueError(f"op {name!r}: its backends are declared in augflow/op_backends.py as {TABLE[name]}; "
                             f"change them there, not in its registration ({out})")
        return out
    if name in TABLE:
        return TABLE[name]
    if cls is not None and hasattr(cls, "apply_batch"):
        return _KORNIA
    return PER_SAMPLE


def ops_on(backend: str) -> frozenset[str]:
    """The built-in ops TABLE declares on `backend` (beyond the per-sample default)."""
    return frozenset(name for name, have in TABLE.items() if backend in have)


def batch_only(backends: Iterable[str]) -> bool:
    """An op on kornia without the per-sample path mixes images of a batch: it runs only in the
    batch stage."""
    have = tuple(backends)
    return "kornia" in have and "albumentations" not in have
