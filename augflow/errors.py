"""The root of augflow's errors: `except augflow.AugflowError` catches every one of them.

This module sits at the bottom of the package and imports nothing, so any module (however low
its layer) can derive its errors from `AugflowError`. Each concrete error also keeps the builtin
base it always had (ValueError, KeyError, ...), so existing `except ValueError:` clauses still work.
"""


class AugflowError(Exception):
    """Base of every error augflow raises on purpose (config, sample, data, backend, model...)."""


class BadSampleError(AugflowError, ValueError):
    """A sample the loader could not read or augment; the message names its index and source."""


class OpCallError(AugflowError, ValueError):
    """Bad arguments to `augflow.op.<name>(...)`; the message names the call."""


class AlbumentationsConversionError(AugflowError, ValueError):
    """A composition that has no augflow counterpart (or a pipeline with no albumentations one)."""


__all__ = ["AugflowError", "BadSampleError", "OpCallError", "AlbumentationsConversionError"]
