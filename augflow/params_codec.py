"""Sampled parameters as JSON: numpy values become plain data, and come back exactly.

Ops apply the *canonical* (decoded) form of their parameters both on a live call and on replay,
so replay from a JSON provenance is bit-identical by construction.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

_SMALL_ARRAY = 256  # arrays up to this many elements are stored as readable lists


_PLAIN = (int, str, bool, type(None))


def to_jsonable(value: Any) -> Any:
    """Convert sampled params to JSON-native data (numpy arrays are tagged so they round-trip)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        return value if value == value else {"__float__": "nan"}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.size <= _SMALL_ARRAY and value.dtype.kind in "biuf":
            return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
        data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode("ascii")
        return {"__ndarray_b64__": data, "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return {"__float__": "nan"}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "value") and isinstance(getattr(value, "value"), (int, str)):  # enums
        return value.value
    raise TypeError(f"parameter value of type {type(value).__name__} is not serializable: {value!r}")


def from_jsonable(value: Any) -> Any:
    """Inverse of `to_jsonable`."""
    kind = type(value)
    if kind in _PLAIN or kind is float:
        return value
    if kind is list and all(type(v) in _PLAIN or type(v) is float for v in value):
        return list(value)
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
        if "__ndarray_b64__" in value:
            raw = base64.b64decode(value["__ndarray_b64__"])
            return np.frombuffer(raw, dtype=np.dtype(value["dtype"])).reshape(value["shape"]).copy()
        if "__float__" in value:
            return float(value["__float__"])
        return {k: from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value


def canonical(value: Any) -> Any:
    """The form ops apply: what a JSON round trip of the params gives back."""
    return from_jsonable(to_jsonable(value))
