"""Compiler passes: each a small `plan -> plan` function with its own equivalence test
(tests/compile/passes/) and benchmark (bench/compile_passes.py).

`select_backends` always runs first (it resolves `auto` and rejects ops a backend lacks), then
`select_executor` (threads or worker processes for `executor="auto"`); the optimising passes run
after them, in this order, unless `compile(..., passes=...)` says otherwise.
"""

from __future__ import annotations

from typing import Callable, Iterable

from augflow.compile.passes.affine_fusion import fuse_affine
from augflow.compile.passes.backends import select_backends
from augflow.compile.passes.executor import select_executor
from augflow.compile.passes.normalize_fusion import fuse_normalize
from augflow.compile.passes.reduced_decode import reduce_decode
from augflow.compile.plan import Plan

Pass = Callable[[Plan], Plan]
PASSES: dict[str, Pass] = {"normalize_fusion": fuse_normalize, "affine_fusion": fuse_affine,
                           "reduced_decode": reduce_decode}
DEFAULT_PASSES = tuple(PASSES)


def run_passes(plan: Plan, passes: Iterable[str | Pass] | None = None) -> Plan:
    plan = select_executor(select_backends(plan))
    for p in DEFAULT_PASSES if passes is None else passes:
        fn = PASSES.get(p) if isinstance(p, str) else p
        if fn is None:
            raise ValueError(f"unknown compiler pass {p!r} (known: {', '.join(PASSES)})")
        plan = fn(plan)
    return plan


__all__ = ["PASSES", "DEFAULT_PASSES", "run_passes", "select_backends", "select_executor", "fuse_normalize",
           "fuse_affine",
           "reduce_decode"]
