"""Built-in op families, one module each. Importing this package registers nothing: the
registry imports the families listed in `augflow/_builtins.py` the first time an op is looked up.

Adding an op means copying the shape of a neighbour in its family module and decorating it with
`@register`; a new family module is also added to `augflow/_builtins.py`.
"""

import sys
import types
import warnings

from augflow.ops.base import Op, Schema


class _DeprecatedCallablePackage(types.ModuleType):
    """Kept only so that the old `augflow.ops()` still answers (with a DeprecationWarning);
    `augflow.list_ops()` is the catalogue."""

    def __call__(self, family: str | None = None) -> list[dict]:
        warnings.warn("augflow.ops() is deprecated; use augflow.list_ops()", DeprecationWarning, stacklevel=2)
        from augflow.registry import ops

        return ops(family)


sys.modules[__name__].__class__ = _DeprecatedCallablePackage

__all__ = ["Op", "Schema"]
