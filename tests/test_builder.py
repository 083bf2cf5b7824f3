"""The Python builder mirrors the YAML: same pipeline, same outputs, errors that name the call."""

import ast
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

import augflow
from augflow import registry
from augflow.builder import OpCallError, op_stub

YAML = """\
augflow: 1
name: pipeline
seed: 7
sample:
- random_resized_crop:
    size: [48, 48]
    scale: [0.3, 1.0]
- horizontal_flip: {p: 0.5}
- one_of:
    ops:
    - blur: {blur_limit: [3, 5]}
    - albumentations.GaussNoise: {std_range: [0.05, 0.1]}
    weights: [2.0, 1.0]
    p: 0.5
batch:
  device: cpu
  ops:
  - mixup: {alpha: 0.2}
"""


def built():
    op = augflow.op
    return augflow.Pipeline.build(
        sample=[op.random_resized_crop(size=(48, 48), scale=(0.3, 1.0)), op.horizontal_flip(p=0.5),
                op.one_of([op.blur(blur_limit=(3, 5)), op.albumentations.GaussNoise(std_range=(0.05, 0.1))],
                          weights=[2.0, 1.0], p=0.5)],
        batch={"device": "cpu", "ops": [op.mixup(alpha=0.2)]}, seed=7)


def test_built_pipeline_is_the_yaml_pipeline_and_reads_back_identically():
    pipe = built()
    assert yaml.safe_load(pipe.to_yaml()) == yaml.safe_load(YAML)
    assert pipe.to_yaml() == augflow.Pipeline.from_yaml_text(YAML).to_yaml()
    again = augflow.Pipeline.from_yaml_text(pipe.to_yaml())
    assert again.to_yaml() == pipe.to_yaml()


def test_built_pipeline_gives_the_yaml_pipelines_outputs(astronaut):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = built()({"image": astronaut}, index=3)
        b = augflow.Pipeline.from_yaml_text(YAML)({"image": astronaut}, index=3)
    np.testing.assert_array_equal(a["image"], b["image"])
    assert a.provenance.to_json() == b.provenance.to_json()


def test_views_fields_and_stages_are_written_where_the_yaml_has_them():
    op = augflow.op
    pipe = augflow.Pipeline.build(sample=[op.horizontal_flip()], views={"weak": [op.horizontal_flip(p=0.5)],
                                                                          "strong": [op.to_gray(p=1.0)]},
                                  fields={"image": "image", "boxes": {"kind": "bboxes", "format": "coco"}},
                                  name="two_views", description="weak and strong views")
    data = pipe.to_dict()
    assert list(data) == ["augflow", "name", "description", "seed", "fields", "sample", "views"]
    assert data["views"]["strong"] == [{"to_gray": {"p": 1.0}}]
    assert pipe.spec.fields["boxes"].format == "coco"


def test_views_item_splits_sample_like_the_yaml(astronaut):
    op = augflow.op
    pipe = augflow.Pipeline.build(sample=[op.center_crop(height=64, width=64), op.views(2),
                                          op.random_resized_crop(size=(32, 32))])
    assert pipe.to_dict()["sample"][1] == {"views": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = pipe({"image": astronaut}, seed=3)
    assert out["view0"]["image"].shape == out["view1"]["image"].shape == (32, 32, 3)
    assert not np.array_equal(out["view0"]["image"], out["view1"]["image"])
    with pytest.raises(OpCallError, match=r"augflow\.op\.views\(k\) in sample"):
        augflow.Pipeline.build(sample=[op.horizontal_flip()], views=2)


def test_bad_parameters_name_the_python_call_and_the_allowed_values():
    with pytest.raises(OpCallError, match=r"augflow\.op\.random_resized_crop\(scale=\(0\.08, 1\.5\)\): "):
        augflow.op.random_resized_crop(size=(8, 8), scale=(0.08, 1.5))
    with pytest.raises(OpCallError, match=r"augflow\.op\.random_resized_crop\(sclae=1\).*did you mean 'scale'"):
        augflow.op.random_resized_crop(size=(8, 8), sclae=1)
    with pytest.raises(OpCallError, match=r"augflow\.op\.horizontal_flip\(p=1\.5\): must be a probability"):
        augflow.op.horizontal_flip(p=1.5)
    with pytest.raises(OpCallError, match=r"augflow\.op\.one_of\(ops=.*weights=\[1\]\): 'weights' must be 2"):
        augflow.op.one_of([augflow.op.blur(), augflow.op.to_gray()], weights=[1])
    with pytest.raises(AttributeError, match=r"augflow\.op\.horizontal_flp: unknown op .*'horizontal_flip'"):
        augflow.op.horizontal_flp
    with pytest.raises(OpCallError, match=r"item 0 must be an augflow\.op"):
        augflow.Pipeline.build(sample=[{"horizontal_flip": {}}])


def test_import_augflow_does_not_load_the_builder():
    code = ("import sys, augflow; assert 'augflow.op' not in sys.modules and 'augflow.builder' not in sys.modules; "
            "augflow.op.horizontal_flip(p=0.5); assert 'augflow.op' in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


def test_editor_stub_matches_the_registry():
    """Every function in augflow/op.pyi is a registered op with exactly its parameters."""
    stub = (Path(augflow.__file__).parent / "op.pyi").read_text()
    funcs = {n.name: n for n in ast.parse(stub).body if isinstance(n, ast.FunctionDef)}
    assert {"random_resized_crop", "horizontal_flip", "mixup", "one_of"} <= set(funcs)
    for name, fn in funcs.items():
        if name in ("one_of", "some_of", "sequential", "views", "__getattr__"):
            continue
        params = {p["name"] for p in registry.get(name).params_info()}
        assert {a.arg for a in fn.args.kwonlyargs} == params, name
    assert "size: Sequence[int]," in stub and ast.parse(op_stub())   # required: no default; regenerates
