"""Plans and explain(): stages, backend per op, fused groups, reasons; errors that name backends."""

from __future__ import annotations

import pytest

import augflow
from augflow.compile import BackendError, make_plan
from augflow.compile.plan import AffineGroup, FusedNormalize


def test_explain_shows_stages_backends_fused_groups_and_reasons():
    pipe = augflow.Pipeline.from_yaml("pipelines/imagenet_train.yaml")
    text = pipe.explain()
    assert "stage sample  [backend albumentations" in text
    assert "stage batch   [backend kornia" in text
    assert "[affine + reduced JPEG decode] random_resized_crop" in text and "horizontal_flip(p=0.5)" in text
    assert "[fused normalize]" in text
    assert "img/s" in text                         # auto quotes its measurements
    assert "color_jitter" in text and "[albumentations]" in text


def test_default_plan_fuses_affine_moves_normalize_and_reduces_decode():
    plan = make_plan(augflow.Pipeline.from_yaml("pipelines/imagenet_train.yaml"))
    first = plan.sample.items[0]
    assert isinstance(first, AffineGroup) and first.reduced_decode
    assert [s.name for s in first.steps] == ["random_resized_crop"]     # a flip alone is not worth fusing
    assert isinstance(plan.batch.items[0], FusedNormalize)
    assert plan.decode.reduce
    assert plan.passes == ["normalize_fusion", "affine_fusion", "reduced_decode"]


def test_op_missing_on_a_backend_names_the_backends_that_have_it():
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"clahe": {"clip_limit": 2.0}}]})
    with pytest.raises(BackendError) as err:
        make_plan(pipe, backend="kornia")
    msg = str(err.value)
    assert "'clahe'" in msg and "backend 'kornia'" in msg and "backends that have it: albumentations" in msg


def test_color_jitter_on_dali_is_fine_but_clahe_names_alternatives():
    ok = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"random_resized_crop": {"size": [8, 8]}},
                                                              {"color_jitter": {}}]})
    assert make_plan(ok, backend="dali").sample.backend == "dali"
    bad = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"clahe": {}}]})
    with pytest.raises(BackendError, match="backend 'dali'.*albumentations"):
        make_plan(bad, backend="dali")


def test_mixing_op_in_the_sample_stage_is_rejected_at_compile_time():
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"mixup": {}}]})
    with pytest.raises(BackendError, match="batch stage"):
        make_plan(pipe)


def test_mixing_op_called_per_sample_says_where_it_belongs(astronaut):
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"cutmix": {}}]})
    with pytest.raises(TypeError, match="batch: ops"):
        pipe({"image": astronaut}, seed=0)


def test_batch_stage_on_albumentations_is_an_error_that_says_what_works():
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "batch": {"backend": "albumentations", "ops": [{"mixup": {}}]}})
    with pytest.raises(BackendError, match="only the kornia backend"):
        make_plan(pipe)


def test_passes_can_be_switched_off():
    plan = make_plan(augflow.Pipeline.from_yaml("pipelines/imagenet_train.yaml"), passes=())
    assert not any(isinstance(i, (AffineGroup, FusedNormalize)) for i in plan.sample.items + plan.batch.items)
    assert not plan.decode.reduce
