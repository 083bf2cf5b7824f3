"""The backends' check of an op (from the one table, augflow/op_backends.py) and the measurements
`auto` chooses by.

- `albumentations`: the per-sample CPU path (albumentations through augflow's adapter, and
  augflow's own numpy ops), in loader workers.
- `kornia`: torch kernels with per-element parameters (augflow/ops/batch/kernels.py); runs the
  batch stage on the loader's device, or the sample stage on CPU tensors.
- `dali`: the sample stage compiled into an NVIDIA DALI pipeline (decode included).
"""

from __future__ import annotations

from augflow import op_backends, registry
from augflow.errors import AugflowError

# Measured on this project's 2-core CPU machine (bench/compile_loader.py, results in
# bench/RESULTS.md): the ImageNet-style training pipeline on 500x375 JPEGs, decode
# included, one core, images per second of CPU time (three runs: 410-440 / 119-169 / 168-178).
# On a GPU the balance changes (DALI's nvJPEG, Kornia on the device); `auto` quotes these in
# explain().
MEASURED_IMG_PER_S = {"albumentations": 430.0, "kornia": 150.0, "dali": 175.0}
MEASURED_SOURCE = ("bench/compile_loader.py: augflow's own backends, one CPU core, ImageNet-style pipeline on "
                   "500x375 JPEGs")


class BackendError(AugflowError, ValueError):
    """An op that the chosen backend does not have, or a stage a backend cannot run."""


def backends_of(name: str) -> tuple[str, ...]:
    """Backends that can run the op with this canonical name: its `OpSpec.backends`, the same
    field `augflow ops` lists (declared in augflow/op_backends.py)."""
    try:
        return registry.get(name).backends
    except registry.UnknownOpError:
        return ()


def require(step, backend: str, stage: str) -> None:
    """Raise a BackendError naming the op, where it is and the backends that have it."""
    name = step.op.name
    have = backends_of(name)
    if stage == "sample" and op_backends.batch_only(have):
        raise BackendError(f"op {step.name!r} at {step.path} mixes images of a batch, so it runs only in the batch "
                           "stage: move it under 'batch: ops:'")
    if backend not in have:
        where = ", ".join(have) if have else "none (it runs only through Pipeline.__call__)"
        raise BackendError(f"op {step.name!r} at {step.path} is not available on backend {backend!r}; "
                           f"backends that have it: {where}")
