"""from_yaml / to_yaml round trip, the JSON Schema for editors, and the `augflow.list_ops()` catalogue."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import augflow

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
# Files with a `tta:` key are test-time augmentation specs (augflow.tta) and files with a `rewriter:`
# key are text-rewriter configs (augflow.text); both are tested with their readers.
TRAINING_FILES = sorted(p for p in PIPELINES.glob("*.yaml") if not {"tta", "rewriter"} & set(yaml.safe_load(p.read_text()) or {}))

RICH = {
    "augflow": 1, "name": "rich", "description": "every construct once", "seed": 11,
    "fields": {"image": "image", "mask": "mask",
               "boxes": {"kind": "bboxes", "format": "coco", "label_fields": ["labels"]}},
    "decode": {"backend": "pillow", "reduce": "auto"},
    "sample": [
        {"random_resized_crop": {"size": [64, 64], "scale": [0.3, 1.0]}},
        {"one_of": {"p": 0.8, "weights": [2, 1], "ops": [{"color_jitter": {"brightness": 0.3}}, {"to_gray": {}}]}},
        {"some_of": {"n": [1, 2], "ops": [{"horizontal_flip": {}}, {"affine": {"border_mode": "reflect"}},
                                          {"blur": {"blur_limit": [3, 5]}}]}},
        {"sequential": {"p": 0.5, "ops": [{"gauss_noise": {}}, {"sharpen": {}}]}},
        {"albumentations.CLAHE": {"clip_limit": 2.0, "p": 0.3}},
    ],
    "batch": {"device": "cpu", "ops": []},
}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def test_rich_pipeline_round_trips_through_yaml(tmp_path, astronaut):
    pipe = augflow.Pipeline.from_dict(RICH)
    path = tmp_path / "rich.yaml"
    text = pipe.to_yaml(path)
    assert path.read_text() == text
    again = augflow.Pipeline.from_yaml(path)
    assert again.to_dict() == pipe.to_dict() == {**RICH}
    assert again.to_yaml() == text
    sample = {"image": astronaut, "mask": (astronaut[..., 0] > 100).astype(np.uint8),
              "boxes": [[10, 10, 40, 30]], "labels": [4]}
    for seed in range(5):
        a, b = pipe(sample, seed=seed), again(sample, seed=seed)
        assert _same(dict(a), dict(b)) and a.provenance.to_json() == b.provenance.to_json()


def test_views_round_trip(tmp_path):
    data = {"augflow": 1, "sample": [{"horizontal_flip": {}}],
            "views": {"weak": [{"vertical_flip": {}}], "strong": [{"color_jitter": {"p": 1.0}}]}}
    pipe = augflow.Pipeline.from_dict(data)
    again = augflow.Pipeline.from_yaml_text(pipe.to_yaml())
    assert again.to_dict() == pipe.to_dict()
    assert list(again.spec.named_views) == ["weak", "strong"]


def test_seed_override_is_written_back():
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "seed": 1, "sample": []})
    pipe.seed = 42
    assert yaml.safe_load(pipe.to_yaml())["seed"] == 42


@pytest.mark.parametrize("path", TRAINING_FILES, ids=lambda p: p.name)
def test_every_pipeline_file_round_trips(tmp_path, path):
    pipe = augflow.Pipeline.from_yaml(path)
    copy = tmp_path / path.name
    pipe.to_yaml(copy)
    assert augflow.Pipeline.from_yaml(copy).to_dict() == pipe.to_dict()
    assert pipe.to_dict() == {**yaml.safe_load(path.read_text()), "seed": pipe.seed}


# ---- JSON Schema --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def validator():
    jsonschema = pytest.importorskip("jsonschema", reason="the JSON Schema is checked with the jsonschema package")
    schema = augflow.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", TRAINING_FILES, ids=lambda p: p.name)
def test_every_pipeline_file_validates_against_the_json_schema(validator, path):
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


def test_rich_pipeline_validates_against_the_json_schema(validator):
    assert [e.message for e in validator.iter_errors(RICH)] == []


@pytest.mark.parametrize("bad", [
    {"augflow": 1, "sample": [{"horizontal_flp": {}}]},                    # unknown op
    {"augflow": 1, "sample": [{"horizontal_flip": {"q": 1}}]},             # unknown parameter
    {"augflow": 1, "sample": [{"horizontal_flip": {"p": 3}}]},             # p out of [0, 1]
    {"augflow": 1, "sample": [{"to_tensor": {"dtype": "float16"}}]},       # not one of the choices
    {"augflow": 1, "sample": [{"affine": {"border_mode": "mirror"}}]},     # not a named constant
    {"augflow": 1, "fields": {"boxes": {"kind": "bbox"}}},                 # unknown kind
    {"augflow": 1, "sampel": []},                                          # unknown top-level key
    {"augflow": 2},                                                        # wrong format version
    {"sample": []},                                                        # no version
    {"augflow": 1, "sample": [{"views": 0}]},                              # views must be >= 1
], ids=["op", "param", "p", "enum", "named_constant", "kind", "top_level", "version", "no_version", "views"])
def test_json_schema_rejects_what_the_loader_rejects(validator, bad):
    assert list(validator.iter_errors(bad)), bad
    with pytest.raises(augflow.PipelineConfigError):
        augflow.Pipeline.from_dict(bad)


# ---- catalogue ----------------------------------------------------------------------------------
def test_ops_lists_every_registered_op_with_its_parameters():
    ops = {row["name"]: row for row in augflow.list_ops()}
    assert "albumentations.RandomResizedCrop" in ops and "to_tensor" in ops
    rrc = ops["albumentations.RandomResizedCrop"]
    assert rrc["family"] == "albumentations.crops" and "random_resized_crop" in rrc["aliases"]
    assert {"image", "mask", "bboxes", "keypoints"} <= set(rrc["targets"])
    params = {p["name"]: p for p in rrc["params"]}
    assert params["scale"]["default"] == (0.08, 1.0) and params["size"]["required"]
    assert "strict" not in params   # albumentations' internal switch is not a user parameter
    assert ops["albumentations.ColorJitter"]["targets"] == ["image"]


def test_ops_filters_by_family():
    crops = augflow.list_ops("albumentations.crops")
    assert crops and all(row["family"] == "albumentations.crops" for row in crops)
    assert {"albumentations.RandomCrop", "albumentations.CenterCrop"} <= {row["name"] for row in crops}
