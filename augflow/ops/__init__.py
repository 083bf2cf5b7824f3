"""Built-in op families. Importing this package registers them all.

Each family is one module; adding an op means copying the shape of a neighbour in its family
module and decorating it with `@register`.
"""

import importlib
import sys
import types

from augflow.ops.base import Op, Schema


class _OpsPackage(types.ModuleType):
    """`augflow.ops` is this package *and* the catalogue function: `augflow.ops()` lists every op,
    while `import augflow.ops.auto` still imports a family module."""

    def __call__(self, family: str | None = None) -> list[dict]:
        from augflow.registry import ops

        return ops(family)


sys.modules[__name__].__class__ = _OpsPackage

_FAMILIES = (
    "augflow.ops.adapters.albumentations",
    "augflow.ops.tensor",
    "augflow.ops.auto",
    "augflow.ops.random_field",
    "augflow.ops.corruptions",
    "augflow.latent.op",
    "augflow.generative.conditioning",
    "augflow.generative.mask_conditioned",
    "augflow.generative.day_to_night",
    "augflow.generative.night",
    "augflow.ops.batch.kernels",
    "augflow.ops.batch.mixing",
    "augflow.ops.batch.resizemix",
    "augflow.ops.batch.mosaic",
    "augflow.ops.batch.copy_paste",
    "augflow.negatives.noise",
    "augflow.negatives.text",
    "augflow.negatives.image",
)


def _load_families() -> None:
    for module in _FAMILIES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:   # a family that exists but fails to import is a real error
                raise


_load_families()

__all__ = ["Op", "Schema"]
