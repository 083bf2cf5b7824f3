"""Values that used to pass validation and fail later without a position (raw OpenCV errors, NaN
draws, compile-time refusals) are refused at load time with file:line:col; documented forms load."""

import textwrap

import numpy as np
import pytest

import augflow
from augflow import PipelineConfigError

# name -> (YAML, "line:col", fragments)
REFUSED = {
    "huge_size": ("""
        augflow: 1
        sample:
          - random_resized_crop: {size: [1e11, 1e11]}
        """, "3:33", ["op 'random_resized_crop'", "parameter 'size'", "at most 32766 pixels"]),
    "huge_resize_height": ("""
        augflow: 1
        sample:
          - resize: {height: 100000, width: 64}
        """, "3:22", ["op 'resize'", "parameter 'height'", "at most 32766"]),
    "infinite_limit": ("""
        augflow: 1
        sample:
          - rotate: {limit: .inf}
        """, "3:21", ["op 'rotate'", "parameter 'limit'", "finite", "got inf"]),
    "nan_in_a_range": ("""
        augflow: 1
        sample:
          - random_resized_crop: {size: [32, 32], scale: [.nan, 1.0]}
        """, "3:50", ["parameter 'scale'", "finite"]),
    "nan_weights": ("""
        augflow: 1
        sample:
          - one_of:
              weights: [.nan, 1]
              ops: [horizontal_flip, vertical_flip]
        """, "4:16", ["op 'one_of'", "'weights' must be 2 non-negative numbers", "nan"]),
    "infinite_weights": ("""
        augflow: 1
        sample:
          - one_of:
              weights: [.inf, 1]
              ops: [horizontal_flip, vertical_flip]
        """, "4:16", ["op 'one_of'", "'weights'"]),
    "views_then_batch": ("""
        augflow: 1
        sample:
          - views: 2
          - horizontal_flip: {}
        batch:
          ops:
            - mixup: {alpha: 0.2}
        """, "5:1", ["batch ops cannot be combined with views"]),
    "named_views_then_batch": ("""
        augflow: 1
        views:
          weak: [horizontal_flip]
          strong: [vertical_flip]
        batch:
          ops: [normalize]
        """, "5:1", ["batch ops cannot be combined with views"]),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_at_load_time_with_position(name):
    text, where, fragments = REFUSED[name]
    with pytest.raises(PipelineConfigError) as info:
        augflow.Pipeline.from_yaml_text(textwrap.dedent(text).lstrip("\n"), "x.yaml")
    message = str(info.value)
    assert f"x.yaml:{where}:" in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_a_value_fitting_no_union_member_is_reported_once_per_parameter():
    with pytest.raises(PipelineConfigError) as info:
        augflow.Pipeline.from_yaml_text("augflow: 1\nsample:\n  - normalize: {mean: imagenet, std: imagenet}\n")
    issues = info.value.issues
    assert [i.param for i in issues] == ["mean", "std"], [str(i) for i in issues]


def test_exponent_numbers_read_as_numbers():
    pipe = augflow.Pipeline.from_yaml_text("augflow: 1\nsample:\n  - random_resized_crop: {size: [3.2e1, 32]}\n")
    out = pipe({"image": np.zeros((40, 40, 3), np.uint8)}, index=0)
    assert out["image"].shape[:2] == (32, 32)


def test_large_but_sane_sizes_still_load():
    pipe = augflow.Pipeline.from_yaml_text("augflow: 1\nsample:\n  - random_resized_crop: {size: [4096, 4096]}\n")
    assert tuple(pipe.op_steps()[0].op.transform.size) == (4096, 4096)
