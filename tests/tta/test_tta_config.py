"""TTA files: variants, presets, and errors that name the op, the file, line and column."""

import pytest

from augflow.config.errors import PipelineConfigError
from augflow.tta import TTA, load_tta


def _write(tmp_path, text):
    path = tmp_path / "tta.yaml"
    path.write_text(text)
    return str(path)


def test_shipped_tta_pipelines_load_with_their_view_counts():
    assert len(load_tta("pipelines/tta_classification.yaml").variants()) == 10
    assert len(load_tta("pipelines/tta_segmentation.yaml").variants()) == 16


def test_product_and_union_combine_variants():
    items = ["horizontal_flip", "vertical_flip", {"rot90": {"k": [0, 1]}}]
    product = load_tta({"augflow": 1, "tta": items})
    union = load_tta({"augflow": 1, "combine": "union", "tta": items})
    assert len(product.variants()) == 8
    assert len(union.variants()) == 4          # original, hflip, vflip, rot90
    assert product.variants()[0] == () and union.variants()[0] == ()


def test_non_invertible_op_for_a_dense_task_is_named_with_its_position(tmp_path):
    path = _write(tmp_path, "augflow: 1\ntask: segmentation\ntta:\n"
                            "  - horizontal_flip\n  - rotate: {angles: [0, 10]}\n")
    with pytest.raises(PipelineConfigError) as err:
        load_tta(path)
    message = str(err.value)
    assert f"{path}:5:5: op 'rotate': moves pixels and has no exact inverse" in message
    assert "task 'segmentation'" in message and "horizontal_flip" in message


def test_task_given_to_tta_is_checked_against_the_file(tmp_path):
    path = _write(tmp_path, "augflow: 1\ntta:\n  - rotate: {angles: [0, 10]}\n")
    TTA(lambda x: x, path, task="classification")               # fine for a classifier
    with pytest.raises(PipelineConfigError, match=r"tta.yaml:3:5: op 'rotate'.*task 'keypoints'"):
        TTA(lambda x: x, path, task="keypoints")


def test_random_geometric_augflow_op_is_refused_for_boxes_by_name(tmp_path):
    path = _write(tmp_path, "augflow: 1\ntta:\n  - random:\n      draws: 2\n      ops:\n"
                            "        - gaussian_blur: {}\n        - affine: {rotate: [-10, 10]}\n")
    load_tta(path)   # no task: nothing to check yet
    with pytest.raises(PipelineConfigError, match=r"tta.yaml:7:11: op 'affine': moves pixels.*task 'boxes'"):
        TTA(lambda x: x, path, task="boxes")


def test_random_colour_op_is_allowed_for_segmentation(tmp_path):
    path = _write(tmp_path, "augflow: 1\ntta:\n  - random: {draws: 2, ops: [gaussian_blur]}\n")
    assert len(TTA(lambda x: x, path, task="segmentation").variants) == 3


def test_unknown_transform_suggests_the_close_name(tmp_path):
    path = _write(tmp_path, "augflow: 1\ntta:\n  - horizontal_flp\n")
    with pytest.raises(PipelineConfigError, match=r"tta.yaml:3:5: unknown TTA transform 'horizontal_flp'; "
                                                  r"did you mean 'horizontal_flip'\?"):
        load_tta(path)


def test_augflow_op_outside_random_gets_a_hint(tmp_path):
    path = _write(tmp_path, "augflow: 1\ntta:\n  - gaussian_blur\n")
    with pytest.raises(PipelineConfigError, match=r"it is an augflow op: list random ops under '- random"):
        load_tta(path)


def test_bad_parameter_points_at_the_value(tmp_path):
    path = _write(tmp_path, "augflow: 1\ntta:\n  - rot90: {k: [0, 5]}\n  - scale: {factors: [1.0, -2]}\n")
    with pytest.raises(PipelineConfigError) as err:
        load_tta(path)
    lines = str(err.value).splitlines()
    assert lines[0].startswith(f"{path}:3:16: op 'rot90': parameter 'k' ")
    assert lines[1].startswith(f"{path}:4:22: op 'scale': parameter 'factors' ") and "positive" in lines[1]


def test_unknown_preset_suggests_one():
    with pytest.raises(ValueError, match="did you mean 'multiscale'"):
        load_tta("multiscal")


def test_empty_tta_list_is_an_error(tmp_path):
    with pytest.raises(PipelineConfigError, match="needs a non-empty 'tta' list"):
        load_tta(_write(tmp_path, "augflow: 1\nname: x\ntta: []\n"))
