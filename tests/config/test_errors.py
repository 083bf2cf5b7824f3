"""Malformed pipeline files and bad samples: each error names the file, line and column, the op,
the parameter, what was given and what is allowed, and suggests the closest name for a typo."""

import textwrap
import warnings

import numpy as np
import pytest

import augflow
from augflow import PipelineConfigError, SampleError

# name -> (YAML text, where the error points "line:col", fragments the message must contain)
BAD_YAML = {
    "op_typo": ("""
        augflow: 1
        sample:
          - horizontal_flp: {p: 0.5}
        """, "3:5", ["unknown op 'horizontal_flp'", "did you mean 'horizontal_flip'"]),
    "param_typo": ("""
        augflow: 1
        sample:
          - random_resized_crop: {size: [224, 224], scael: [0.08, 1.0]}
        """, "3:45", ["op 'random_resized_crop'", "parameter 'scael'", "did you mean 'scale'", "allowed: p, scale"]),
    "top_level_typo": ("""
        augflow: 1
        sampel:
          - horizontal_flip: {}
        """, "2:1", ["unknown top-level key 'sampel'", "did you mean 'sample'"]),
    "syntax_error": ("""
        augflow: 1
        sample:
          - horizontal_flip: {p: 0.5
          - vertical_flip: {}
        """, "4:18", ["YAML syntax error", "expected ',' or '}'"]),
    "tab_indent": ("augflow: 1\nsample:\n\t- horizontal_flip: {}\n", "3:1", ["YAML syntax error", "'\\t'"]),
    "duplicate_key": ("""
        augflow: 1
        seed: 1
        seed: 2
        """, "3:1", ["duplicate key 'seed'", "first written at line 2"]),
    "p_above_one": ("""
        augflow: 1
        sample:
          - horizontal_flip: {p: 1.5}
        """, "3:26", ["op 'horizontal_flip'", "parameter 'p'", "probability in [0, 1]", "got 1.5"]),
    "p_not_a_number": ("""
        augflow: 1
        sample:
          - to_tensor: {p: often}
        """, "3:20", ["op 'to_tensor'", "parameter 'p'", "got 'often'"]),
    "p_of_one_of": ("""
        augflow: 1
        sample:
          - one_of:
              p: -0.2
              ops: [horizontal_flip]
        """, "4:10", ["op 'one_of'", "parameter 'p'", "got -0.2"]),
    "views_zero": ("""
        augflow: 1
        sample:
          - horizontal_flip: {}
          - views: 0
        """, "4:12", ["'views' must be a positive integer", "got 0"]),
    "views_and_named_views": ("""
        augflow: 1
        sample:
          - views: 2
        views:
          weak: []
        """, "5:3", ["either a 'views: k' item in 'sample' or a top-level 'views' mapping"]),
    "views_not_a_mapping": ("""
        augflow: 1
        views: [weak, strong]
        """, "2:8", ["'views' must map view names to op lists"]),
    "field_kind_typo": ("""
        augflow: 1
        fields:
          boxes: {kind: bbox}
        """, "3:10", ["field 'boxes'", "unknown kind 'bbox'", "did you mean 'bboxes'", "allowed: image, mask"]),
    "box_format": ("""
        augflow: 1
        fields:
          boxes: {kind: bboxes, format: pascal}
        """, "3:10", ["unknown box format 'pascal'", "did you mean 'pascal_voc'", "coco, yolo, albumentations"]),
    "keypoint_format": ("""
        augflow: 1
        fields:
          keypoints: {kind: keypoints, format: xyy}
        """, "3:14", ["unknown keypoint format 'xyy'", "allowed: xy, yx"]),
    "field_key": ("""
        augflow: 1
        fields:
          boxes: {kind: bboxes, fmt: coco}
        """, "3:10", ["unknown keys ['fmt']", "allowed: kind, format, label_fields"]),
    "label_fields_string": ("""
        augflow: 1
        fields:
          bboxes: {kind: bboxes, label_fields: labels}
        """, "3:40", ["'label_fields' must be a list of field names", "got the string 'labels'"]),
    "missing_import": ("""
        augflow: 1
        imports: [my_company.augment_ops]
        """, "2:11", ["cannot import module 'my_company.augment_ops'", "ModuleNotFoundError"]),
    "imports_not_a_list": ("""
        augflow: 1
        imports: numpy
        """, "2:10", ["'imports' must be a list of Python module names"]),
    "params_not_a_mapping": ("""
        augflow: 1
        sample:
          - horizontal_flip: 0.5
        """, "3:22", ["op 'horizontal_flip'", "parameters must be a mapping like {p: 0.5}", "got float 0.5"]),
    "wrong_type": ("""
        augflow: 1
        sample:
          - random_resized_crop: {size: big}
        """, "3:33", ["parameter 'size'", "valid tuple", "got 'big'", "tuple[int, int]"]),
    "value_out_of_range": ("""
        augflow: 1
        sample:
          - random_resized_crop: {size: [224, 224], scale: [0.08, 1.5]}
        """, "3:52", ["parameter 'scale'", "must be >= 0 and <= 1", "got [0.08, 1.5]"]),
    "enum_value": ("""
        augflow: 1
        sample:
          - to_tensor: {dtype: float16}
        """, "3:24", ["op 'to_tensor'", "parameter 'dtype'", "got 'float16'", "one of 'keep', 'float32'"]),
    "named_constant_typo": ("""
        augflow: 1
        sample:
          - resize: {height: 10, width: 10, interpolation: bicubic}
        """, "3:52", ["parameter 'interpolation'", "got 'bicubic'", "nearest, linear, cubic", "did you mean 'cubic'"]),
    "required_param": ("""
        augflow: 1
        sample:
          - center_crop: {height: 10}
        """, "3:5", ["op 'center_crop'", "parameter 'width' is required", ">= 1"]),
    "cross_parameter_check": ("""
        augflow: 1
        sample:
          - crop_and_pad: {}
        """, "3:5", ["op 'crop_and_pad'", "Both px and percent parameters cannot be None"]),
    "missing_version": ("""
        name: x
        sample: []
        """, "1:1", ["missing 'augflow: 1'"]),
    "wrong_version": ("""
        augflow: 2
        """, "1:10", ["format version must be 1, got 2"]),
    "negative_seed": ("""
        augflow: 1
        seed: -3
        """, "2:7", ["'seed' must be a non-negative integer, got -3"]),
    "sample_not_a_list": ("""
        augflow: 1
        sample:
          horizontal_flip: {}
        """, "3:3", ["'sample' must be a list of ops", "got a mapping"]),
    "missing_indent": ("""
        augflow: 1
        sample:
          - horizontal_flip:
            p: 0.5
        """, "3:5", ["one-key mapping", "got keys ['horizontal_flip', 'p']", "indent missing"]),
    "one_of_key_typo": ("""
        augflow: 1
        sample:
          - one_of: {opps: [horizontal_flip]}
        """, "3:14", ["unknown key 'opps' in 'one_of'", "did you mean 'ops'"]),
    "some_of_n": ("""
        augflow: 1
        sample:
          - some_of: {n: -1, ops: [horizontal_flip]}
        """, "3:18", ["op 'some_of'", "'n' must be a non-negative integer or a range", "got -1"]),
    "one_of_weights": ("""
        augflow: 1
        sample:
          - one_of: {weights: [1], ops: [horizontal_flip, vertical_flip]}
        """, "3:23", ["'weights' must be 2 non-negative numbers", "got [1]"]),
    "not_a_mapping": ("""
        - horizontal_flip
        """, "1:1", ["a pipeline file must be a mapping", "got a list"]),
    "empty_file": ("", "1:1", ["got an empty file"]),
    "batch_key_typo": ("""
        augflow: 1
        batch:
          devise: cuda
        """, "3:3", ["unknown key 'devise' in 'batch'", "did you mean 'device'"]),
    "decode_not_a_mapping": ("""
        augflow: 1
        decode: pillow
        """, "2:9", ["'decode' must be a mapping like {backend: pillow}"]),
    "name_not_a_string": ("""
        augflow: 1
        name: [a, b]
        """, "2:7", ["'name' must be a string, got a list"]),
    "null_op": ("""
        augflow: 1
        sample:
          - null
        """, "3:5", ["one-key mapping", "got nothing"]),
    "typo_inside_nested_control": ("""
        augflow: 1
        sample:
          - one_of:
              ops:
                - sequential:
                    ops:
                      - gausian_blur: {}
        """, "7:17", ["unknown op 'gausian_blur'", "did you mean 'gaussian_blur'"]),
}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("name", sorted(BAD_YAML))
def test_malformed_yaml_gets_an_actionable_message(tmp_path, name):
    text, where, fragments = BAD_YAML[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    with pytest.raises(PipelineConfigError) as info:
        augflow.Pipeline.from_yaml(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{where}: "), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_there_are_at_least_twenty_malformed_files():
    assert len(BAD_YAML) >= 20


def test_every_issue_is_reported_at_once(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text("augflow: 1\nseed: x\nsample:\n  - horizontal_flp: {}\n  - blur: {blur_limt: 3}\n")
    with pytest.raises(PipelineConfigError) as info:
        augflow.Pipeline.from_yaml(path)
    lines = str(info.value).splitlines()
    assert len(info.value.issues) == 3 and len(lines) == 3
    assert [(i.line, i.column) for i in info.value.issues] == [(2, 7), (4, 5), (5, 12)]
    assert info.value.issues[2].op == "blur" and info.value.issues[2].param == "blur_limt"


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(PipelineConfigError, match=r"nothere\.yaml: file not found"):
        augflow.Pipeline.from_yaml(tmp_path / "nothere.yaml")


def test_a_dict_pipeline_gets_the_same_checks():
    with pytest.raises(PipelineConfigError, match=r"<dict>: unknown op 'flip_it'"):
        augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"flip_it": {}}]})


def test_yaml_cannot_construct_python_objects(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("augflow: 1\nname: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(PipelineConfigError, match=r"evil\.yaml:2:7: YAML tags are not allowed") as info:
        augflow.Pipeline.from_yaml(path)
    assert "!!python/object/apply:os.system" in str(info.value)
    assert "indentation" not in str(info.value)     # not a syntax problem


# ---- bad samples --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flip():
    fields = {"bboxes": {"kind": "bboxes", "format": "coco"}}
    return augflow.Pipeline.from_dict({"augflow": 1, "fields": fields, "sample": [{"horizontal_flip": {"p": 1.0}}]})


BAD_SAMPLES = {
    "not_a_mapping": (lambda img: [img], ["a sample must be a mapping of field names", "got list"]),
    "chw_array": (lambda img: {"image": img.transpose(2, 0, 1)},
                  ["field 'image'", "channels last", "got shape (3, 128, 128)", "transpose(1, 2, 0)"]),
    "batch_array": (lambda img: {"image": img[None]}, ["shape (1, 128, 128, 3), a batch", "one sample"]),
    "int64_image": (lambda img: {"image": img.astype(np.int64)}, ["dtype int64", "allowed: uint8, uint16, float32"]),
    "bool_image": (lambda img: {"image": img > 0}, ["dtype bool", "allowed: uint8"]),
    "empty_image": (lambda img: {"image": img[:0]}, ["field 'image' (image) is empty", "shape (0, 128, 3)"]),
    "path_instead_of_array": (lambda img: {"image": "cat.jpg"}, ["got str", "augflow.io.load_image"]),
    "boxes_with_three_columns": (lambda img: {"image": img, "bboxes": [[1, 2, 3]]},
                                 ["field 'bboxes'", "N x 4 in the coco format", "x_min, y_min, width, height",
                                  "got shape (1, 3)"]),
    "boxes_not_numbers": (lambda img: {"image": img, "bboxes": [["a", "b", "c", "d"]]},
                          ["field 'bboxes' (bboxes) must be a list of numeric rows"]),
    "keypoints_flat": (lambda img: {"image": img, "keypoints": [3, 4]}, ["field 'keypoints'", "N x 2", "got shape (2,)"]),
    "mask_as_list": (lambda img: {"image": img, "mask": [[0, 1]]}, ["field 'mask' (mask) must be a numpy array"]),
    "mask_of_other_size": (lambda img: {"image": img, "mask": np.zeros((64, 128), np.uint8)},
                           ["field 'mask' (mask) is 64x128 but image 'image' is 128x128"]),
}


@pytest.mark.parametrize("name", sorted(BAD_SAMPLES))
def test_bad_sample_gets_an_actionable_message(flip, astronaut, name):
    make, fragments = BAD_SAMPLES[name]
    with pytest.raises(SampleError) as info:
        flip(make(astronaut), seed=0)
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"
