"""Built-in op families. Importing this package registers them all.

Each family is one module; adding an op means copying the shape of a neighbour in its family
module and decorating it with `@register`.
"""

import importlib

from augflow.ops.base import Op, Schema

_FAMILIES = (
    "augflow.ops.adapters.albumentations",
    "augflow.ops.tensor",
    "augflow.ops.auto",
    "augflow.ops.random_field",
    "augflow.ops.corruptions",
    "augflow.latent.op",
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
