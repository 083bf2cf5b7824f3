"""One table of which backend runs which op (augflow/op_backends.py): the catalogue (`augflow ops`,
`augflow.list_ops()`) and the compiler read the same field, and the implementations follow it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import augflow
from augflow import op_backends, registry
from augflow.compile import make_plan
from augflow.compile.backends import BackendError, require


def _accepts(name: str, backend: str, stage: str) -> bool:
    step = SimpleNamespace(op=SimpleNamespace(name=name), name=name, path="sample[0]")
    try:
        require(step, backend, stage)
    except BackendError:
        return False
    return True


def test_every_op_lists_exactly_the_backends_the_compiler_accepts():
    rows = augflow.list_ops()
    assert len(rows) > 100
    for row in rows:
        listed = set(row["backends"])
        per_sample = "albumentations" in listed
        for backend in op_backends.BACKENDS:
            # the sample stage takes an op on a backend it lists, unless it mixes images of a batch
            expected = backend in listed and per_sample
            assert _accepts(row["name"], backend, "sample") == expected, (row["name"], backend)
        # the batch stage runs on kornia only
        assert _accepts(row["name"], "kornia", "batch") == ("kornia" in listed), row["name"]


def _pipeline_of(name: str, batch: bool):
    """A pipeline of this one op with its default parameters (None for ops that need some)."""
    spec = {"augflow": 1, "name": "one", "seed": 0, "sample": [], "batch": {}}
    if batch:
        spec["batch"] = {"ops": [{name: {}}]}
    else:
        spec["sample"] = [{name: {}}]
    try:
        return augflow.Pipeline.from_dict(spec)
    except augflow.PipelineConfigError:   # required parameters (model directories, ...): covered above
        return None


def _plan_accepts(pipe, backend: str, batch: bool) -> bool:
    try:
        make_plan(pipe, backend=backend if not batch else {"batch": backend})
    except BackendError:
        return False
    return True


def test_make_plan_succeeds_exactly_on_the_listed_backends():
    checked = 0
    for row in augflow.list_ops():
        listed = set(row["backends"])
        batch = op_backends.batch_only(listed)
        pipe = _pipeline_of(row["name"], batch)
        if pipe is None:
            continue
        for backend in op_backends.BACKENDS:
            if batch and backend != "kornia":
                expected = False     # the batch stage is kornia's (a clear BackendError otherwise)
            else:
                expected = backend in listed
            assert _plan_accepts(pipe, backend, batch) == expected, (row["name"], backend)
        checked += 1
    assert checked > 100


def test_kernels_and_dali_translations_follow_the_table():
    from augflow.compile.backends.dali import _ARGS
    from augflow.ops.batch.kernels import KERNELS

    kornia = op_backends.ops_on("kornia")
    with_apply_batch = {s.name for s in registry.specs() if hasattr(s.extra.get("cls"), "apply_batch")}
    assert set(KERNELS) | with_apply_batch == kornia
    assert not set(KERNELS) & with_apply_batch
    assert set(_ARGS) == op_backends.ops_on("dali")
    for spec in registry.specs():
        assert spec.backends == op_backends.declared(spec.name, spec.extra.get("cls"))
        if spec.family == "batch":
            assert op_backends.batch_only(spec.backends), spec.name


def test_a_kernel_for_an_op_not_declared_kornia_is_refused():
    from augflow.ops.batch.kernels import KERNELS, kernel

    with pytest.raises(ValueError, match="op_backends.py"):
        kernel("albumentations.CLAHE")(lambda op, batch, params, ctx: batch)
    assert "albumentations.CLAHE" not in KERNELS


def test_a_registration_that_contradicts_the_table_is_refused():
    with pytest.raises(ValueError, match="declared in augflow/op_backends.py"):
        op_backends.declared("mixup", backends=("albumentations", "kornia"))
    with pytest.raises(ValueError, match="albumentations, kornia, dali"):
        op_backends.declared("my_op", backends=("augflow",))
    assert op_backends.declared("my_op", backends=("kornia",)) == ("kornia",)
