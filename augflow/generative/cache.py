"""The results cache of generative ops: a generated image is computed once per key.

A diffusion sample costs 100-10,000x a classical op, so every generative op looks its output up
here first. The key is a hash of (op, op config, model hash, sampled params — seed included —,
and the exact input pixels), so a rerun, a resumed `materialize` or a provenance replay makes no
model call twice, and any change to what determines the output is a different key.

Where results go: the op's `cache:` parameter, else the directory set with `use_cache_dir`, else
the `AUGFLOW_CACHE_DIR` environment variable, else a small in-memory cache of this process.
`augflow materialize` uses the directory or variable when set, else `<output>/.augflow/cache`.
Disk entries are `.npy` files written atomically (temp file + rename), so concurrent workers and
killed runs never leave a half-written entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator

import numpy as np

ENV_VAR = "AUGFLOW_CACHE_DIR"
_MEMORY_ENTRIES = 64

_default_dir: str | None = None
_memory: "OrderedDict[str, np.ndarray]" = OrderedDict()
STATS = {"hits": 0, "misses": 0}


def array_digest(arr: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes."""
    a = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def make_key(op: str, config: dict[str, Any], params: dict[str, Any], *arrays: np.ndarray) -> str:
    """The cache key of one generation (JSON-able config and params, input arrays)."""
    h = hashlib.sha256(op.encode())
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    for arr in arrays:
        h.update(array_digest(arr).encode())
    return h.hexdigest()


def set_cache_dir(path: str | os.PathLike | None) -> None:
    """Set (or with None, unset) the process-wide cache directory."""
    global _default_dir
    _default_dir = None if path is None else str(path)


@contextlib.contextmanager
def use_cache_dir(path: str | os.PathLike | None) -> Iterator[None]:
    """Within the block, generative ops without their own `cache:` store results under `path`."""
    previous = _default_dir
    set_cache_dir(path)
    try:
        yield
    finally:
        set_cache_dir(previous)


def cache_dir(explicit: str | None = None) -> Path | None:
    """The directory results go to: the op's own, the process default, the env var, or None (memory)."""
    chosen = explicit or _default_dir or os.environ.get(ENV_VAR) or None
    return Path(chosen).expanduser() if chosen else None


def get(key: str, directory: Path | None) -> np.ndarray | None:
    """The cached array for `key`, or None."""
    if directory is None:
        arr = _memory.get(key)
        if arr is not None:
            _memory.move_to_end(key)
    else:
        path = directory / key[:2] / f"{key}.npy"
        arr = np.load(path, allow_pickle=False) if path.exists() else None
    STATS["hits" if arr is not None else "misses"] += 1
    return None if arr is None else arr.copy()


def put(key: str, arr: np.ndarray, directory: Path | None) -> None:
    """Store `arr` under `key` (atomically on disk; LRU-bounded in memory)."""
    if directory is None:
        _memory[key] = arr.copy()
        _memory.move_to_end(key)
        while len(_memory) > _MEMORY_ENTRIES:
            _memory.popitem(last=False)
        return
    folder = directory / key[:2]
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".npy", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, np.ascontiguousarray(arr), allow_pickle=False)
        os.replace(tmp, folder / f"{key}.npy")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def clear_memory() -> None:
    _memory.clear()


__all__ = ["ENV_VAR", "STATS", "array_digest", "make_key", "set_cache_dir", "use_cache_dir", "cache_dir", "get",
           "put", "clear_memory"]
