"""`augflow.json_schema()` and the loader agree: what one refuses the other refuses, on a set of
good and bad files (bounds the loader checks are carried into the schema)."""

import textwrap
import warnings

import jsonschema
import pytest

import augflow
from augflow import PipelineConfigError
from augflow.config.loader import load_yaml_text

SAMPLE = "augflow: 1\nsample:\n  - {}\n"
FILES = {
    # op line -> loader accepts?
    "rand_augment: {magnitude: 9}": True,
    "rand_augment: {magnitude: 30}": True,
    "rand_augment: {magnitude: 40}": False,
    "rand_augment: {magnitude: -1}": False,
    "random_resized_crop: {size: [224, 224], scale: [0.08, 1.0]}": True,
    "random_resized_crop: {size: [224, 224], scale: [0.08, 1.5]}": False,
    "random_resized_crop: {size: [224, 224], scale: [-0.1, 1.0]}": False,
    "random_resized_crop: {size: [40000, 224]}": False,
    "random_resized_crop: {size: [224, 224], interpolation: linear}": True,
    "resize: {height: 64, width: 64}": True,
    "resize: {height: 64000, width: 64}": False,
    "horizontal_flip: {p: 0.5}": True,
    "horizontal_flip: {p: 1.5}": False,
    "color_jitter: {brightness: 0.4}": True,
    "color_jitter: {brightnes: 0.4}": False,
    "aug_mix: {severity: 3}": True,
    "aug_mix: {severity: 11}": False,
    "no_such_op: {}": False,
}


@pytest.fixture(scope="module")
def validator():
    schema = augflow.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize("op", sorted(FILES))
def test_schema_and_loader_agree(validator, op):
    text = SAMPLE.format(op)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            augflow.Pipeline.from_yaml_text(text)
            loader_ok = True
        except PipelineConfigError:
            loader_ok = False
    assert loader_ok == FILES[op], "the expectation in FILES is wrong"
    schema_ok = validator.is_valid(_plain(load_yaml_text(text)))
    assert schema_ok == loader_ok, f"schema says {schema_ok}, loader says {loader_ok} for {op!r}"
